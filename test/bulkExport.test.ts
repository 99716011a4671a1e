import * as assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync, promises as fsp, readFileSync } from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import * as fc from "fast-check";
import { MAX_POLLS, minPollWaitSeconds } from "../contracts/budgets";
import {
  checkSummary,
  type DownloadResult,
  deleteExport,
  downloadFile,
  ExportDeadlineError,
  ExportErrorFilesError,
  emptySummary,
  fetchManifestPage,
  foldDownloads,
  initiateExport,
  kickoffUrl,
  LineCountMismatchError,
  MAX_ISSUE_CODES,
  PollLimitError,
  planDownloads,
  pollExport,
  pollWaitSeconds,
  SourceProtocolError,
  type SourceServer,
  type StepContext,
} from "../handlers/lib/bulkExport";
import type { ExportManifest } from "../handlers/lib/bulkManifest";
import { fileSink } from "../handlers/lib/objectSink";
import {
  clientAssertion,
  createKmsSigner,
  JWT_BEARER,
  type JwsSigner,
  jwks,
  publicJwk,
  SmartTokenClient,
  TokenRequestError,
} from "../handlers/lib/smartBackend";
import {
  SourceHttpError,
  SourceUnauthorizedError,
  TransientSourceError,
} from "../handlers/lib/sourceHttp";
import { type BulkSource, generateNdjson, startBulkSource } from "../local/bulkSource";
import { LocalKms } from "../local/kms";

const CLIENT_ID = "hoth-test";
const FIXTURE = path.join(__dirname, "..", "..", "shared", "fixtures", "synthea-10");

/** HOTH's published JWKS, served the way GET /.well-known/jwks.json will serve it. */
async function serveJwks(body: object): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { "Content-Type": "application/json" });
    res.end(JSON.stringify(body));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/.well-known/jwks.json`,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

/** What the state machine does, in order: kick-off, poll until complete, download, check, delete. */
async function runExport(
  ctx: StepContext,
  out: string,
  opts: { since?: string; deadlineSeconds?: number } = {},
) {
  let job = await initiateExport(
    { since: opts.since, deadlineSeconds: opts.deadlineSeconds ?? 60 },
    ctx,
  );
  const progress: string[] = [];
  let manifest: ExportManifest | undefined;
  while (!manifest) {
    const r = await pollExport(job, ctx);
    job = r.job;
    if (r.status === "complete") manifest = r.manifest;
    else progress.push(`${r.waitSeconds}s ${r.progress ?? ""}`);
  }
  const results: DownloadResult[] = [];
  for (const task of planDownloads(manifest, "landing/acme/bulk/m-1")) {
    results.push(await downloadFile(task, ctx, { sink: fileSink(out) }));
  }
  checkSummary(foldDownloads(emptySummary(), results));
  const deleted = await deleteExport(job, ctx);
  return { job, manifest, results, progress, deleted };
}

const sha256 = (file: string) => createHash("sha256").update(readFileSync(file)).digest("hex");

describe("Bulk Data export against the local source (loopback)", () => {
  let kms: LocalKms;
  let signer: JwsSigner;
  let published: { url: string; close(): Promise<void> };
  let generated: string;
  let source: BulkSource;
  let out: string;
  const noWait = { sleep: async () => undefined, random: () => 0 };

  before(async () => {
    kms = new LocalKms("ECC_NIST_P384");
    signer = await createKmsSigner(kms, kms.keyId);
    const key = await kms.getPublicKey({ KeyId: kms.keyId });
    published = await serveJwks(jwks([publicJwk(key.PublicKey, signer.alg)]));
    generated = await generateNdjson({ resources: 500, perPatient: 10 });
  });

  after(async () => {
    await published.close();
    await fsp.rm(generated, { recursive: true, force: true });
  });

  async function start(
    dataDir: string,
    extra: Partial<Parameters<typeof startBulkSource>[0]> = {},
  ) {
    source = await startBulkSource({
      dataDir,
      clients: [{ clientId: CLIENT_ID, jwksUrl: published.url, scopes: ["system/*.read"] }],
      groups: { cohort: ["gen-0000001", "gen-0000004"] },
      progressPolls: 2,
      ...extra,
    });
    return source;
  }

  function context(server: Partial<SourceServer> = {}): StepContext {
    const s: SourceServer = {
      name: "local",
      fhirBaseUrl: source.baseUrl,
      tokenUrl: source.tokenUrl,
      clientId: CLIENT_ID,
      scopes: ["system/*.read"],
      ...server,
    };
    return {
      server: s,
      tokens: new SmartTokenClient(
        { tokenUrl: s.tokenUrl, clientId: s.clientId, scopes: s.scopes, signer },
        noWait,
      ),
      http: noWait,
    };
  }

  beforeEach(async () => {
    out = await fsp.mkdtemp(path.join(os.tmpdir(), "hoth-bulk-out-"));
  });

  afterEach(async () => {
    await source?.stop();
    await fsp.rm(out, { recursive: true, force: true });
  });

  it("exports the Synthea fixture system-wide: every file byte for byte, counts checked, job deleted", async function () {
    if (!existsSync(FIXTURE)) {
      console.log("    (skipped: ../shared/fixtures/synthea-10 is absent)");
      return this.skip();
    }
    await start(FIXTURE);
    const ctx = context();

    const run = await runExport(ctx, out);

    const sourceFiles = (await fsp.readdir(FIXTURE)).filter(
      (f) => /^[A-Z]\w+\.000\.ndjson$/.test(f) && f !== "log.ndjson",
    );
    assert.equal(run.results.length, sourceFiles.length);
    for (const r of run.results) {
      const original = path.join(FIXTURE, `${r.type}.000.ndjson`);
      assert.equal(r.sha256, sha256(original), r.type);
      assert.equal(sha256(path.join(out, r.key)), r.sha256);
      assert.equal(r.lines, readFileSync(original, "utf8").split("\n").filter(Boolean).length);
    }
    assert.equal(run.manifest.requiresAccessToken, true);
    assert.deepEqual(run.progress, ["1s 33% of resources written", "1s 50% of resources written"]);
    assert.deepEqual(run.deleted, { statusUrl: run.job.statusUrl, result: "deleted" });
    await assert.rejects(pollExport(run.job, ctx), (e: Error) => {
      assert.ok(e instanceof SourceHttpError);
      assert.equal(e.status, 404);
      return true;
    });
    assert.deepEqual(await deleteExport(run.job, ctx), {
      statusUrl: run.job.statusUrl,
      result: "already-gone",
    });
  });

  it("exports one Group's resources of the given types changed since an instant", async () => {
    await start(generated);
    const ctx = context({ groupId: "cohort", types: ["Patient", "Observation"] });
    const since = "2024-01-04T00:00:00Z";

    const run = await runExport(ctx, out, { since });

    const expected = (type: string) =>
      readFileSync(path.join(generated, `${type}.000.ndjson`), "utf8")
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l))
        .filter((r) =>
          ["gen-0000001", "gen-0000004"].some(
            (id) => r.id === id || r.subject?.reference === `Patient/${id}`,
          ),
        )
        .filter((r) => Date.parse(r.meta.lastUpdated) > Date.parse(since));
    assert.equal(
      run.job.kickoffUrl,
      `${source.baseUrl}/Group/cohort/$export?_type=Patient%2CObservation&_since=2024-01-04T00%3A00%3A00Z`,
    );
    const byType = Object.fromEntries(run.results.map((r) => [r.type, r]));
    assert.deepEqual(Object.keys(byType).sort(), ["Observation", "Patient"]);
    for (const type of ["Patient", "Observation"]) {
      const got = readFileSync(path.join(out, byType[type].key), "utf8")
        .split("\n")
        .filter(Boolean);
      assert.deepEqual(
        got.map((l) => JSON.parse(l).id),
        expected(type).map((r) => r.id),
      );
    }
    assert.equal(byType.Patient.lines, 1);
    assert.equal(byType.Observation.lines, 16);
  });

  it("retries a 429 kick-off, a transient 503 status and a 500 download, and still gets every file", async () => {
    await start(generated);
    source.faults.kickoff429Once = true;
    source.faults.status503Once = true;
    source.faults.file500Once = true;

    const run = await runExport(context(), out);

    assert.deepEqual(
      run.results.map((r) => [r.type, r.lines]),
      [
        ["Observation", 450],
        ["Patient", 50],
      ],
    );
    assert.equal(source.stats.kickoffs, 2);
    assert.equal(source.stats.statusPolls, 4);
    assert.equal(source.stats.downloads, 3);
  });

  it("fails with ExportDeadlineError when the export outlasts its deadline, and the job can still be deleted", async () => {
    await start(generated);
    source.faults.extraPolls = 1000;
    let now = Date.now();
    const ctx = context();
    ctx.http = { ...noWait, now: () => now };
    const job = await initiateExport({ deadlineSeconds: 30 }, ctx);

    const waits: number[] = [];
    const err = await (async () => {
      for (;;) {
        const r = await pollExport(job, ctx, { defaultWaitSeconds: 10 });
        assert.equal(r.status, "in-progress");
        if (r.status === "in-progress") waits.push(r.waitSeconds);
        now += 12_000;
      }
    })().catch((e: Error) => e);

    assert.ok(err instanceof ExportDeadlineError);
    assert.deepEqual(waits, [1, 1, 1]);
    assert.deepEqual((await deleteExport(job, ctx)).result, "deleted");
  });

  it("caps the wait at the time left before the deadline", async () => {
    await start(generated, { retryAfterSeconds: 120 });
    source.faults.extraPolls = 5;
    let now = Date.now();
    const ctx = context();
    ctx.http = { ...noWait, now: () => now };
    const job = await initiateExport({ deadlineSeconds: 100 }, ctx);
    now += 70_000;

    const r = await pollExport(job, ctx);

    assert.deepEqual(r.status === "in-progress" && [r.waitSeconds, r.progress], [30, "slow"]);
  });

  it("downloads the manifest's error files and fails the run naming their issue codes", async () => {
    await start(generated);
    source.faults.errorFile = true;

    const err = await runExport(context(), out).catch((e: Error) => e);

    assert.ok(err instanceof ExportErrorFilesError);
    assert.equal(
      err.message,
      "The source reported 1 error file(s) with the export (issues: processing x1, too-costly x1)",
    );
    assert.ok(
      existsSync(path.join(out, "landing/acme/bulk/m-1/error/OperationOutcome.000.ndjson")),
    );
  });

  it("refuses a kick-off the source answers 403, without retrying it", async () => {
    await start(generated);
    source.faults.kickoffStatus = 403;

    const err = await initiateExport({ deadlineSeconds: 60 }, context()).catch((e: Error) => e);

    assert.ok(err instanceof SourceHttpError);
    assert.equal(
      err.message,
      "Export kick-off: the source answered 403 (OperationOutcome issue forbidden)",
    );
    assert.equal(source.stats.kickoffs, 1);
  });

  it("treats a 500 status with a non-transient OperationOutcome as a failed export", async () => {
    await start(generated);
    const ctx = context();
    const job = await initiateExport({ deadlineSeconds: 60 }, ctx);
    source.faults.statusFatal = true;

    const err = await pollExport(job, ctx).catch((e: Error) => e);

    assert.ok(err instanceof SourceHttpError);
    assert.equal(err.status, 500);
    assert.deepEqual(err.issueCodes, ["exception"]);
    assert.equal(source.stats.statusPolls, 1);
  });

  it("detects a file whose line count differs from the manifest and leaves nothing at the destination", async () => {
    await start(generated);
    source.faults.wrongCount = true;
    const ctx = context();

    const err = await runExport(ctx, out).catch((e: Error) => e);

    assert.ok(err instanceof LineCountMismatchError);
    assert.equal(
      err.message,
      "landing/acme/bulk/m-1/output/Observation.000.ndjson: the manifest counts 451 resources, the file holds 450",
    );
    const left = await fsp.readdir(out, { recursive: true });
    assert.deepEqual(
      left.filter((f) => f.endsWith(".ndjson") || f.includes(".partial-")),
      [],
    );
  });

  it("gets a fresh token when the source revokes the one in use, and names a token it keeps refusing", async () => {
    await start(generated);
    const ctx = context();
    const job = await initiateExport({ deadlineSeconds: 60 }, ctx);
    source.revokeTokens();

    const polled = await pollExport(job, ctx);
    assert.equal(polled.status, "in-progress");
    assert.equal(source.stats.tokens, 2);

    source.faults.expiredTokens = true;
    source.revokeTokens();
    const err = await pollExport(job, ctx).catch((e: Error) => e);
    assert.ok(err instanceof SourceUnauthorizedError);
    assert.equal(
      err.message,
      "Export status: the source refused a freshly issued access token (401)",
    );
  });

  it("answers 401 with an OperationOutcome to a kick-off without a token", async () => {
    await start(generated);

    const res = await fetch(kickoffUrl(context().server), {
      headers: { Accept: "application/fhir+json", Prefer: "respond-async" },
    });

    assert.equal(res.status, 401);
    const body = (await res.json()) as { issue: { code: string }[] };
    assert.equal(body.issue[0].code, "login");
    assert.equal(source.stats.kickoffs, 0);
  });

  describe("local source's answers to malformed kick-offs", () => {
    let token: string;
    beforeEach(async () => {
      await start(generated);
      token = await context().tokens.token();
    });

    const kick = (query: string, headers: Record<string, string> = {}, at = "$export") =>
      fetch(`${source.baseUrl}/${at}${query}`, {
        headers: {
          Authorization: `Bearer ${token}`,
          Accept: "application/fhir+json",
          Prefer: "respond-async",
          ...headers,
        },
      });

    it("answers 202 with an absolute Content-Location to a well-formed kick-off", async () => {
      const res = await kick("?_type=Patient");
      assert.equal(res.status, 202);
      assert.match(
        res.headers.get("content-location") ?? "",
        /^http:\/\/127\.0\.0\.1:\d+\/fhir\/\$export-status\/[0-9a-f]{24}$/,
      );
    });

    for (const [label, query, headers, status, code, at] of [
      ["no Prefer: respond-async", "", { Prefer: "" }, 400, "invalid", "$export"],
      ["an Accept other than FHIR JSON", "", { Accept: "text/html" }, 400, "invalid", "$export"],
      ["an unknown parameter", "?_typeFilter=x", {}, 400, "not-supported", "$export"],
      [
        "a non-NDJSON _outputFormat",
        "?_outputFormat=text/csv",
        {},
        400,
        "not-supported",
        "$export",
      ],
      ["a _since that is not an instant", "?_since=2024-01-01", {}, 400, "invalid", "$export"],
      ["a malformed _type", "?_type=patient", {}, 400, "invalid", "$export"],
      ["an unknown Group", "", {}, 404, "not-found", "Group/nobody/$export"],
    ] as const) {
      it(`answers ${status} ${code} to ${label}`, async () => {
        const res = await kick(query, headers, at);
        const body = (await res.json()) as { resourceType: string; issue: { code: string }[] };
        assert.deepEqual(
          [res.status, body.resourceType, body.issue[0].code],
          [status, "OperationOutcome", code],
        );
        assert.equal(res.headers.get("content-type"), "application/fhir+json");
      });
    }

    it("answers 403 when the token's scopes do not cover a requested type", async () => {
      await source.stop();
      source = await startBulkSource({
        dataDir: generated,
        clients: [{ clientId: CLIENT_ID, jwksUrl: published.url, scopes: ["system/Patient.rs"] }],
      });
      const narrow = context({ scopes: ["system/Patient.rs"] });
      token = await narrow.tokens.token();

      const ok = await kick("?_type=Patient");
      const refused = await kick("?_type=Patient,Observation");

      assert.equal(ok.status, 202);
      assert.equal(refused.status, 403);
    });
  });

  describe("token endpoint", () => {
    const post = (form: Record<string, string>) =>
      fetch(source.tokenUrl, {
        method: "POST",
        headers: { "Content-Type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams(form).toString(),
      });
    const form = (assertion: string) => ({
      grant_type: "client_credentials",
      scope: "system/*.read",
      client_assertion_type: JWT_BEARER,
      client_assertion: assertion,
    });

    beforeEach(() => start(generated));

    it("issues a token to an RS384 client registered with inline keys", async () => {
      const rsa = new LocalKms("RSA_2048");
      const rsaSigner = await createKmsSigner(rsa, rsa.keyId);
      const key = await rsa.getPublicKey({ KeyId: rsa.keyId });
      await source.stop();
      source = await startBulkSource({
        dataDir: generated,
        clients: [
          {
            clientId: "rsa-client",
            jwks: jwks([publicJwk(key.PublicKey, "RS384")]),
            scopes: ["system/*.read"],
          },
        ],
      });
      const client = new SmartTokenClient(
        {
          tokenUrl: source.tokenUrl,
          clientId: "rsa-client",
          scopes: ["system/*.read"],
          signer: rsaSigner,
        },
        noWait,
      );

      assert.match(await client.token(), /^[A-Za-z0-9_-]{32}$/);
      assert.equal(source.stats.tokens, 1);
    });

    it("refuses a replayed assertion (same jti) with invalid_client", async () => {
      const assertion = await clientAssertion({
        clientId: CLIENT_ID,
        tokenUrl: source.tokenUrl,
        signer,
      });

      const first = await post(form(assertion));
      const replay = await post(form(assertion));

      assert.equal(first.status, 200);
      assert.equal(((await first.json()) as { token_type: string }).token_type, "bearer");
      assert.equal(replay.status, 400);
      assert.deepEqual(await replay.json(), { error: "invalid_client" });
    });

    it("refuses an expired assertion", async () => {
      const assertion = await clientAssertion({
        clientId: CLIENT_ID,
        tokenUrl: source.tokenUrl,
        signer,
        now: () => Date.now() - 400_000,
      });

      const res = await post(form(assertion));

      assert.equal(res.status, 400);
      assert.deepEqual(await res.json(), { error: "invalid_client" });
    });

    it("refuses an assertion that expires more than five minutes ahead", async () => {
      const assertion = await clientAssertion({
        clientId: CLIENT_ID,
        tokenUrl: source.tokenUrl,
        signer,
        now: () => Date.now() + 60_000,
      });

      const res = await post(form(assertion));

      assert.deepEqual([res.status, await res.json()], [400, { error: "invalid_client" }]);
    });

    it("refuses an assertion for another audience, from another key, or with iss != sub", async () => {
      const other = new LocalKms("ECC_NIST_P384");
      const otherSigner = await createKmsSigner(other, other.keyId);
      const wrongAud = await clientAssertion({
        clientId: CLIENT_ID,
        tokenUrl: `${source.tokenUrl}/other`,
        signer,
      });
      const wrongKey = await clientAssertion({
        clientId: CLIENT_ID,
        tokenUrl: source.tokenUrl,
        signer: otherSigner,
      });
      const [h, p] = (
        await clientAssertion({ clientId: CLIENT_ID, tokenUrl: source.tokenUrl, signer })
      ).split(".");
      const claims = { ...JSON.parse(Buffer.from(p, "base64url").toString()), sub: "someone-else" };
      const input = `${h}.${Buffer.from(JSON.stringify(claims)).toString("base64url")}`;
      const wrongSub = `${input}.${Buffer.from(await signer.sign(Buffer.from(input))).toString("base64url")}`;

      for (const assertion of [wrongAud, wrongKey, wrongSub]) {
        const res = await post(form(assertion));
        assert.deepEqual([res.status, await res.json()], [400, { error: "invalid_client" }]);
      }
      assert.equal(source.stats.tokens, 0);
    });

    it("refuses scopes beyond the client's registration (TokenRequestError in the client)", async () => {
      const client = new SmartTokenClient(
        { tokenUrl: source.tokenUrl, clientId: CLIENT_ID, scopes: ["system/*.write"], signer },
        noWait,
      );

      const err = await client.token().catch((e: Error) => e);

      assert.ok(err instanceof TokenRequestError);
      assert.equal(err.message, "Token request refused with 400 invalid_scope");
    });
  });
});

describe("planDownloads", () => {
  it("numbers files per type and kind under the run's prefix, carrying count and the token requirement", () => {
    const manifest: ExportManifest = {
      transactionTime: "2026-01-01T00:00:00Z",
      request: "https://ehr.example.org/fhir/$export",
      requiresAccessToken: true,
      output: [
        { type: "Patient", url: "https://ehr.example.org/f/1", count: 2 },
        { type: "Patient", url: "https://ehr.example.org/f/2" },
        { type: "Observation", url: "https://ehr.example.org/f/3", count: 0 },
      ],
      error: [{ type: "OperationOutcome", url: "https://ehr.example.org/f/4" }],
      deleted: [],
    };

    const tasks = planDownloads(manifest, "landing/acme/bulk/m-1/");

    assert.deepEqual(tasks, [
      {
        type: "Patient",
        kind: "output",
        url: "https://ehr.example.org/f/1",
        count: 2,
        requiresAccessToken: true,
        key: "landing/acme/bulk/m-1/output/Patient.000.ndjson",
      },
      {
        type: "Patient",
        kind: "output",
        url: "https://ehr.example.org/f/2",
        requiresAccessToken: true,
        key: "landing/acme/bulk/m-1/output/Patient.001.ndjson",
      },
      {
        type: "Observation",
        kind: "output",
        url: "https://ehr.example.org/f/3",
        count: 0,
        requiresAccessToken: true,
        key: "landing/acme/bulk/m-1/output/Observation.000.ndjson",
      },
      {
        type: "OperationOutcome",
        kind: "error",
        url: "https://ehr.example.org/f/4",
        requiresAccessToken: true,
        key: "landing/acme/bulk/m-1/error/OperationOutcome.000.ndjson",
      },
    ]);
  });
});

/** A source for the stubbed tests, and a token client that always has a token. */
const server: SourceServer = {
  name: "stub",
  fhirBaseUrl: "https://ehr.example.org/fhir",
  tokenUrl: "https://ehr.example.org/token",
  clientId: "c",
  scopes: ["system/*.read"],
};
const tokens = { token: async () => "tok", invalidate: () => undefined };

describe("downloadFile (a stubbed source)", () => {
  /** A sink that keeps what it gets, and whether it was committed or aborted. */
  function memorySink() {
    const state = { bytes: 0, committed: false, aborted: false };
    return {
      state,
      factory: async () => ({
        write: async (c: Uint8Array) => {
          state.bytes += c.length;
        },
        commit: async () => {
          state.committed = true;
          return { location: "mem" };
        },
        abort: async () => {
          state.aborted = true;
        },
      }),
    };
  }

  const bodyOf = (chunks: Uint8Array[], stallAfter = false) =>
    new ReadableStream<Uint8Array>({
      async pull(controller) {
        const next = chunks.shift();
        if (next) controller.enqueue(next);
        else if (!stallAfter) controller.close();
        else await new Promise(() => undefined);
      },
    });

  it("counts NDJSON records the same however the body is split (CRLF, no final newline, blank lines)", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.string({ unit: fc.constantFrom("a", "é", "{", "}", " ") }), { maxLength: 30 }),
        fc.constantFrom("\n", "\r\n"),
        fc.boolean(),
        fc.array(fc.nat({ max: 40 }), { maxLength: 20 }),
        async (records, eol, finalNewline, cuts) => {
          const lines = records.map((r) => `{"x":"${r}"}`);
          const text = lines.join(eol) + (finalNewline && lines.length ? eol : "");
          const withBlank = lines.length ? `${eol}${text}${eol}` : text;
          const bytes = Buffer.from(withBlank);
          const chunks: Uint8Array[] = [];
          let at = 0;
          for (const c of cuts) {
            if (at >= bytes.length) break;
            chunks.push(bytes.subarray(at, Math.min(bytes.length, at + c + 1)));
            at += c + 1;
          }
          if (at < bytes.length) chunks.push(bytes.subarray(at));
          const sink = memorySink();
          const fetch = async () => new Response(bodyOf(chunks), { status: 200 });

          const r = await downloadFile(
            {
              type: "Patient",
              kind: "output",
              url: "https://ehr.example.org/f/1",
              count: lines.length,
              requiresAccessToken: true,
              key: "k",
            },
            { server, tokens, http: { fetch } },
            { sink: sink.factory },
          );

          assert.equal(r.lines, lines.length);
          assert.equal(r.bytes, bytes.length);
          assert.equal(sink.state.committed, true);
        },
      ),
      { numRuns: 200 },
    );
  });

  it("abandons a body that stalls, aborting the sink (TransientSourceError, so the step can be retried)", async () => {
    const sink = memorySink();
    const fetch = async () =>
      new Response(bodyOf([Buffer.from('{"resourceType":"Patient"}\n')], true), { status: 200 });

    const err = await downloadFile(
      {
        type: "Patient",
        kind: "output",
        url: "https://ehr.example.org/f/1",
        requiresAccessToken: true,
        key: "k",
      },
      { server, tokens, http: { fetch } },
      { sink: sink.factory, idleTimeoutMs: 50 },
    ).catch((e: Error) => e);

    assert.ok(err instanceof TransientSourceError);
    assert.equal(err.message, "Download of output file k: the body broke off after 27 bytes");
    assert.deepEqual(sink.state, { bytes: 27, committed: false, aborted: true });
  });

  it("sends no token to a file when the manifest does not require one, and refuses one off-origin when it does", async () => {
    const seen: (string | undefined)[] = [];
    const fetch = async (_url: string, init: RequestInit) => {
      seen.push((init.headers as Record<string, string>).Authorization);
      return new Response("", { status: 200 });
    };
    const task = {
      type: "Patient",
      kind: "output" as const,
      url: "https://files.example.net/signed?x=1",
      key: "k",
    };

    await downloadFile(
      { ...task, requiresAccessToken: false },
      { server, tokens, http: { fetch } },
      { sink: memorySink().factory },
    );
    const err = await downloadFile(
      { ...task, requiresAccessToken: true },
      { server, tokens, http: { fetch } },
      { sink: memorySink().factory },
    ).catch((e: Error) => e);

    assert.deepEqual(seen, [undefined]);
    assert.ok(err instanceof SourceProtocolError);
  });

  it("refuses a bad _since or deadline before calling the source", async () => {
    let calls = 0;
    const fetch = async () => {
      calls++;
      return new Response("", { status: 202 });
    };
    const ctx = { server, tokens, http: { fetch } };

    await assert.rejects(
      initiateExport({ since: "yesterday", deadlineSeconds: 60 }, ctx),
      /since must be a FHIR instant/,
    );
    await assert.rejects(
      initiateExport({ deadlineSeconds: 0 }, ctx),
      /deadlineSeconds must be a positive whole number/,
    );
    assert.equal(calls, 0);
  });

  it("refuses job state that names another source or a status URL off the allowed origins", async () => {
    const job = {
      server: "stub",
      statusUrl: "https://ehr.example.org/fhir/status/1",
      kickoffUrl: "https://ehr.example.org/fhir/$export",
      kickedOffAt: "2026-01-01T00:00:00Z",
      deadline: "2999-01-01T00:00:00Z",
      polls: 0,
    };
    const fetch = async () => new Response("", { status: 202 });

    await assert.rejects(
      pollExport({ ...job, server: "other" }, { server, tokens, http: { fetch } }),
      /belongs to source 'other'/,
    );
    await assert.rejects(
      deleteExport(
        { ...job, statusUrl: "https://evil.example.net/status/1" },
        { server, tokens, http: { fetch } },
      ),
      SourceProtocolError,
    );
  });

  it("fetches the next page of a paged manifest with the token, from the allowed origin only", async () => {
    const auth: (string | undefined)[] = [];
    const fetch = async (_url: string, init: RequestInit) => {
      auth.push((init.headers as Record<string, string>).Authorization);
      return Response.json({
        transactionTime: "2026-01-01T00:00:00Z",
        request: "https://ehr.example.org/fhir/$export",
        requiresAccessToken: true,
        output: [{ type: "Patient", url: "https://ehr.example.org/f/9", count: 1 }],
        error: [],
      });
    };
    const ctx = { server, tokens, http: { fetch } };

    const page = await fetchManifestPage("https://ehr.example.org/fhir/status/1?page=2", ctx);

    assert.deepEqual(page.output, [
      { type: "Patient", url: "https://ehr.example.org/f/9", count: 1 },
    ]);
    assert.deepEqual(auth, ["Bearer tok"]);
    assert.equal(planDownloads(page, "p", 2)[0].key, "p/output/Patient.p2.000.ndjson");
    await assert.rejects(
      fetchManifestPage("https://evil.example.net/page2", ctx),
      SourceProtocolError,
    );
    assert.equal(auth.length, 1);
  });
});

describe("polling within the execution history's reserve (MAX_POLLS)", () => {
  const KICKOFF = Date.parse("2026-01-01T00:00:00Z");
  const jobOf = (deadlineSeconds: number, polls = 0) => ({
    server: "stub",
    statusUrl: "https://ehr.example.org/fhir/status/1",
    kickoffUrl: "https://ehr.example.org/fhir/$export",
    kickedOffAt: new Date(KICKOFF).toISOString(),
    deadline: new Date(KICKOFF + deadlineSeconds * 1000).toISOString(),
    polls,
  });
  /** A source that answers every status request 202 with the next of `retryAfter` (null: no header). */
  const stillRunning = (retryAfter: (string | null)[]) => {
    let calls = 0;
    const fetch = async () => {
      const value = retryAfter[calls++ % retryAfter.length];
      return new Response(null, {
        status: 202,
        headers: value === null ? {} : { "Retry-After": value },
      });
    };
    return { fetch, calls: () => calls };
  };

  it("waits at least deadline / (MAX_POLLS - 1), honours a longer Retry-After, and never waits past the deadline", () => {
    const sixHours = 21_600;

    const waits = [
      pollWaitSeconds(0, sixHours, sixHours),
      pollWaitSeconds(undefined, sixHours, sixHours),
      pollWaitSeconds(120, sixHours, sixHours),
      pollWaitSeconds(3600, sixHours, sixHours),
      pollWaitSeconds(120, sixHours, 30),
      pollWaitSeconds(0, 7 * 86_400, 7 * 86_400),
      pollWaitSeconds(0, 60, 60),
    ];

    assert.equal(minPollWaitSeconds(sixHours), Math.ceil(sixHours / (MAX_POLLS - 1)));
    assert.deepEqual(waits, [
      minPollWaitSeconds(sixHours),
      minPollWaitSeconds(sixHours),
      120,
      300,
      30,
      minPollWaitSeconds(7 * 86_400),
      1,
    ]);
  });

  it("reaches the deadline within MAX_POLLS polls whatever the source's Retry-After (property)", async () => {
    const retryAfter = fc.oneof(
      fc.constant(null),
      fc.constant("0"),
      fc.integer({ min: 0, max: 100_000 }).map(String),
      fc.constant("not a number"),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 60, max: 7 * 86_400 }),
        fc.array(retryAfter, { minLength: 1, maxLength: 20 }),
        fc.array(fc.integer({ min: 0, max: 5_000 }), { minLength: 1, maxLength: 20 }),
        async (deadlineSeconds, answers, latenciesMs) => {
          const source = stillRunning(answers);
          let now = KICKOFF;
          const ctx = { server, tokens, http: { fetch: source.fetch, now: () => now } };
          let job = jobOf(deadlineSeconds);
          let polls = 0;

          const err = await (async () => {
            for (;;) {
              now += latenciesMs[polls % latenciesMs.length];
              polls++;
              const r = await pollExport(job, ctx);
              assert.equal(r.status, "in-progress");
              if (r.status !== "in-progress") return undefined;
              assert.ok(r.waitSeconds >= 1 && Number.isInteger(r.waitSeconds));
              job = r.job;
              now += r.waitSeconds * 1000;
            }
          })().catch((e: Error) => e);

          assert.ok(polls <= MAX_POLLS, `${polls} polls`);
          assert.ok(source.calls() <= MAX_POLLS - 1);
          // The deadline comes before the limit: the limit is only a backstop.
          assert.ok(err instanceof ExportDeadlineError, String(err));
        },
      ),
      { numRuns: 200 },
    );
  });

  it("counts each poll in the job it hands back, and fails with PollLimitError rather than allow poll MAX_POLLS + 1", async () => {
    const source = stillRunning(["0"]);
    const ctx = { server, tokens, http: { fetch: source.fetch, now: () => KICKOFF } };

    const first = await pollExport(jobOf(600), ctx);
    const last = await pollExport(jobOf(600, MAX_POLLS - 1), ctx).catch((e: Error) => e);
    const beyond = await pollExport(jobOf(600, MAX_POLLS), ctx).catch((e: Error) => e);
    const bad = await pollExport({ ...jobOf(600), polls: -1 }, ctx).catch((e: Error) => e);

    assert.equal(first.job.polls, 1);
    assert.ok(last instanceof PollLimitError);
    assert.equal(
      last.message,
      `The export did not complete in ${MAX_POLLS} polls, the most one run's execution history holds (deadline 2026-01-01T00:10:00.000Z)`,
    );
    assert.ok(beyond instanceof PollLimitError);
    assert.match(String(bad), /poll count must be a whole number/);
    // The poll at the limit asked the source; the ones beyond it did not.
    assert.equal(source.calls(), 2);
  });
});

describe("the download summary (folded batch by batch into the execution's state)", () => {
  const result = (
    kind: DownloadResult["kind"],
    type: string,
    lines: number,
    issueCodes?: Record<string, number>,
  ): DownloadResult => ({
    key: `landing/acme/bulk/m-1/${kind}/${type}.000.ndjson`,
    type,
    kind,
    location: "s3://lake/k",
    bytes: lines * 100,
    lines,
    sha256: "0".repeat(64),
    ...(issueCodes ? { issueCodes } : {}),
  });

  it("adds up output files and their resources per type across batches, leaving each input as it was", () => {
    const first = foldDownloads(emptySummary(), [
      result("output", "Patient", 3),
      result("output", "Condition", 5),
    ]);

    const second = foldDownloads(first, [
      result("output", "Patient", 2),
      result("deleted", "Bundle", 7),
      result("error", "OperationOutcome", 0),
    ]);

    assert.deepEqual(first, {
      files: 2,
      resources: 8,
      byType: { Patient: 3, Condition: 5 },
      errorFiles: 0,
      issueCodes: {},
    });
    assert.deepEqual(second, {
      files: 3,
      resources: 10,
      byType: { Patient: 5, Condition: 5 },
      errorFiles: 0,
      issueCodes: {},
    });
    assert.doesNotThrow(() => checkSummary(second));
  });

  it("fails the check with every error file of every batch and their issue codes", () => {
    const summary = foldDownloads(
      foldDownloads(emptySummary(), [result("error", "OperationOutcome", 1, { processing: 1 })]),
      [result("error", "OperationOutcome", 2, { processing: 1, "too-costly": 1 })],
    );

    assert.throws(() => checkSummary(summary), {
      name: "ExportErrorFilesError",
      message:
        "The source reported 2 error file(s) with the export (issues: processing x2, too-costly x1)",
    });
  });

  it("keeps at most MAX_ISSUE_CODES distinct issue codes, counting the rest as other", () => {
    const codes = Object.fromEntries(
      Array.from({ length: MAX_ISSUE_CODES + 5 }, (_, i) => [
        `code-${String(i).padStart(2, "0")}`,
        1,
      ]),
    );

    const summary = foldDownloads(emptySummary(), [result("error", "OperationOutcome", 45, codes)]);

    assert.equal(Object.keys(summary.issueCodes).length, MAX_ISSUE_CODES + 1);
    assert.equal(summary.issueCodes.other, 5);
  });
});
