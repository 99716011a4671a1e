import * as assert from "node:assert/strict";
import {
  type FetchLike,
  isTransient,
  outcomeIssueCodes,
  parseRetryAfter,
  SourceHttpError,
  send,
  TransientSourceError,
} from "../handlers/lib/sourceHttp";

const NOW = Date.parse("2026-11-24T10:00:00Z");

/** Answers in order; records the waits asked of `sleep`. */
function scripted(answers: (() => Response | Promise<Response>)[]) {
  const waits: number[] = [];
  let calls = 0;
  const fetch: FetchLike = async () => {
    calls++;
    const next = answers.shift();
    if (!next) throw new Error("no more answers");
    return next();
  };
  return {
    deps: {
      fetch,
      now: () => NOW,
      random: () => 0.5,
      sleep: async (ms: number) => {
        waits.push(ms);
      },
    },
    waits,
    calls: () => calls,
  };
}

const attempt = (extra: Partial<Parameters<typeof send>[0]> = {}) => ({
  operation: "Export status",
  url: "https://ehr.example.org/status/1",
  ok: (s: number) => s === 200,
  init: () => ({ method: "GET" }),
  ...extra,
});

describe("source HTTP", () => {
  it("reads Retry-After as delay-seconds or an HTTP-date, and ignores anything else", () => {
    assert.equal(parseRetryAfter("120", NOW), 120);
    assert.equal(parseRetryAfter("Tue, 24 Nov 2026 10:00:30 GMT", NOW), 30);
    assert.equal(parseRetryAfter("Tue, 24 Nov 2026 09:00:00 GMT", NOW), 0);
    assert.equal(parseRetryAfter("-1", NOW), undefined);
    assert.equal(parseRetryAfter("soon", NOW), undefined);
    assert.equal(parseRetryAfter(null, NOW), undefined);
  });

  it("tells transient answers from final ones as the Bulk Data spec's transient issue code does", () => {
    assert.equal(isTransient(429, []), true);
    assert.equal(isTransient(503, ["exception"]), true);
    assert.equal(isTransient(500, []), true);
    assert.equal(isTransient(500, ["transient"]), true);
    assert.equal(isTransient(500, ["exception"]), false);
    assert.equal(isTransient(500, ["transient", "exception"]), false);
    assert.equal(isTransient(404, []), false);
    assert.equal(isTransient(401, []), false);
  });

  it("keeps only well-formed issue codes of an OperationOutcome (no diagnostics)", () => {
    const body = JSON.stringify({
      resourceType: "OperationOutcome",
      issue: [
        { severity: "error", code: "processing", diagnostics: "Patient 123-45-6789 failed" },
        { severity: "error", code: "<script>" },
      ],
    });
    assert.deepEqual(outcomeIssueCodes(body), ["processing"]);
    assert.deepEqual(outcomeIssueCodes("not json"), []);
    assert.deepEqual(outcomeIssueCodes('{"resourceType":"Patient"}'), []);
  });

  it("waits the longer of the backoff and Retry-After between attempts", async () => {
    const s = scripted([
      () => new Response("", { status: 429, headers: { "Retry-After": "3" } }),
      () => new Response("", { status: 503 }),
      () => new Response("done", { status: 200 }),
    ]);

    const { response } = await send(attempt(), s.deps);

    assert.equal(await response.text(), "done");
    // Backoff with random 0.5: 250 ms then 500 ms; the first is raised to Retry-After's 3 s.
    assert.deepEqual(s.waits, [3000, 500]);
  });

  it("gives up at once when Retry-After would pass the deadline or the longest wait", async () => {
    const late = scripted([
      () => new Response("", { status: 503, headers: { "Retry-After": "20" } }),
    ]);
    const err = await send(attempt({ deadline: NOW + 10_000 }), late.deps).catch((e: Error) => e);
    assert.ok(err instanceof TransientSourceError);
    assert.equal(err.message, "Export status: the source answered 503");
    assert.equal(err.retryAfterSeconds, 20);
    assert.deepEqual(late.waits, []);

    const long = scripted([
      () => new Response("", { status: 429, headers: { "Retry-After": "3600" } }),
    ]);
    await assert.rejects(send(attempt(), long.deps), TransientSourceError);
    assert.equal(long.calls(), 1);
  });

  it("does not retry a final answer and names the status and issue codes only", async () => {
    const s = scripted([
      () =>
        Response.json(
          {
            resourceType: "OperationOutcome",
            issue: [{ severity: "error", code: "not-found", diagnostics: "Patient/abc secret" }],
          },
          { status: 404 },
        ),
    ]);

    const err = await send(attempt(), s.deps).catch((e: Error) => e);

    assert.ok(err instanceof SourceHttpError);
    assert.equal(
      err.message,
      "Export status: the source answered 404 (OperationOutcome issue not-found)",
    );
    assert.equal(s.calls(), 1);
  });

  it("times out an attempt that sends no headers, then retries it", async () => {
    let n = 0;
    const fetch: FetchLike = (_url, init) => {
      n++;
      if (n === 1) {
        return new Promise((_, reject) =>
          init.signal?.addEventListener("abort", () => reject(init.signal?.reason)),
        );
      }
      return Promise.resolve(new Response("ok", { status: 200 }));
    };

    const { response } = await send(attempt(), {
      fetch,
      sleep: async () => undefined,
      retry: { timeoutMs: 20 },
    });

    assert.equal(response.status, 200);
    assert.equal(n, 2);
  });

  it("names a network failure that outlasts the retries", async () => {
    const fetch: FetchLike = async () => {
      throw new TypeError("fetch failed");
    };

    const err = await send(attempt(), { fetch, sleep: async () => undefined }).catch(
      (e: Error) => e,
    );

    assert.ok(err instanceof TransientSourceError);
    assert.equal(err.message, "Export status: the connection failed");
  });
});
