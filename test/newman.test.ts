import * as assert from "node:assert/strict";
import * as path from "node:path";
import newman, { type NewmanRunSummary } from "newman";
import { LOCAL_CLIENTS } from "../local/okta";
import type { LocalStack } from "../local/stack";
import { collection } from "../scripts/api-docs";
import { localStack } from "./support/localStack";

const ROOT = path.join(__dirname, "..");

/** newman runs the committed Postman collection with the `local` environment against the local stack. */
describe("Postman collection (newman) against the local stack", function () {
  this.timeout(120_000);
  let stack: LocalStack;

  before(async () => {
    stack = await localStack();
  });

  interface Run {
    summary: NewmanRunSummary;
    /** Every HTTP request sent (API calls and the collection's token requests). */
    sent: { item: string; url: string; code?: number }[];
  }

  function run(clientSecret: string): Promise<Run> {
    const sent: Run["sent"] = [];
    return new Promise((resolve, reject) =>
      newman
        .run(
          {
            collection: path.join(ROOT, "postman", "hoth.postman_collection.json"),
            environment: path.join(
              ROOT,
              "postman",
              "environments",
              "local.postman_environment.json",
            ),
            envVar: [
              { key: "baseUrl", value: stack.apiUrl },
              { key: "tokenUrl", value: stack.tokenUrl },
              { key: "clientSecret", value: clientSecret },
            ],
            reporters: [],
            timeoutRequest: 30_000,
          },
          (error, summary) => (error ? reject(error) : resolve({ summary, sent })),
        )
        .on("request", (_error, args) =>
          sent.push({
            item: args.item.name,
            url: args.request.url.toString(),
            code: args.response?.code,
          }),
        ),
    );
  }

  /** The API calls of a run (not the token requests the collection's script makes); polls of one request count once. */
  const apiCalls = ({ sent }: Run) =>
    sent
      .filter((s) => s.url.startsWith(stack.apiUrl))
      .map((s) => [s.item, s.code])
      .filter((c, i, all) => i === 0 || c[0] !== all[i - 1][0] || c[1] !== all[i - 1][1]);
  const tokenCalls = ({ sent }: Run) => sent.filter((s) => s.url === stack.tokenUrl).length;

  it("passes every request's tests, getting its own token once", async () => {
    const result = await run(LOCAL_CLIENTS[0].secret);
    const { summary } = result;

    const failures = summary.run.failures.map((f) => `${f.source?.name}: ${f.error.message}`);
    assert.deepEqual(failures, []);
    assert.deepEqual(apiCalls(result), [
      ["Health", 200],
      ["Register a Patient", 201],
      ["Register the same member conditionally (If-None-Exist)", 200],
      ["Refuse a second member with the same identifier", 409],
      ["Register a Patient and Coverage (transaction)", 200],
      ["Refuse an incomplete Patient", 422],
      ["Search members by identifier", 200],
      ["Get a member", 200],
      ["Member history", 200],
      ["Read a member's first version", 200],
      ["HOTH's public JWKS (no token)", 200],
      ["Get an upload form for an extract", 201],
      ["Start a migration", 202],
      ["Follow a migration", 200],
    ]);
    assert.equal(tokenCalls(result), 1);
    // each request's own assertions, plus "has an access token" per request
    // (and per poll of the migration, which ends with SUCCEEDED and its counts)
    assert.equal(summary.run.stats.assertions.failed, 0);
    const total = summary.run.stats.assertions.total ?? 0;
    assert.ok(total >= 33, String(total));
    const names = summary.run.executions.flatMap((e) =>
      (e.assertions ?? []).map((a) => a.assertion),
    );
    assert.ok(names.includes("the migration SUCCEEDED"));
    assert.ok(names.includes("it migrated the members this collection registered"));
  });

  it("fails every request with the token endpoint's answer when the client secret is wrong, without showing it", async () => {
    const result = await run("not-the-secret");
    const { summary } = result;

    // The public JWKS needs no token; every other route refuses.
    assert.deepEqual(
      apiCalls(result).map(([, code]) => code),
      collection().item.map((i) =>
        (i as { auth?: { type: string } }).auth?.type === "noauth" ? 200 : 401,
      ),
    );
    assert.equal(tokenCalls(result), collection().item.length);
    const tokenFailures = summary.run.failures
      .map((f) => f.error.message)
      .filter((m) => m.includes("no token from"));
    assert.equal(tokenFailures.length, collection().item.length);
    assert.match(tokenFailures[0], /^no token from http:\/\/.+\/token: 401/);
    assert.ok(!JSON.stringify(summary.run.failures).includes("not-the-secret"));
  });
});
