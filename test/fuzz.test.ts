import * as assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { ROUTES } from "../contracts/routes";
import { fetchToken, LOCAL_CLIENTS } from "../local/okta";
import { localStack } from "./support/localStack";

const ROOT = path.join(__dirname, "..");
/** Bounded: the whole run stops at MAX_TIME seconds, each operation at EXAMPLES cases per phase. */
const MAX_TIME = Number(process.env.HOTH_FUZZ_SECONDS ?? 60);
const EXAMPLES = 25;
const SEED = process.env.HOTH_FUZZ_SEED ?? "20261123";

/**
 * schemathesis fuzzes every operation of docs/openapi.json against the local
 * stack with a token granting every route: no 5xx, and every response
 * conforms to the description (status code, content type, schema).
 */
describe("OpenAPI fuzzing (schemathesis) against the local stack", function () {
  this.timeout((MAX_TIME + 120) * 1000);

  it("finds no server error and no response that breaks the OpenAPI description", async () => {
    // Prepare
    const stack = await localStack();
    const [client] = LOCAL_CLIENTS;
    const token = await fetchToken(
      stack.tokenUrl,
      client,
      "system/Patient.cruds system/Coverage.cruds system/Task.cruds system/Binary.c",
    );
    const args = [
      "run",
      path.join(ROOT, "docs", "openapi.json"),
      "--url",
      stack.apiUrl,
      "-H",
      `Authorization: Bearer ${token}`,
      "-H",
      `X-Client-Id: ${client.clientId}`,
      "--checks",
      "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
      "--phases",
      "examples,coverage,fuzzing",
      "--max-examples",
      String(EXAMPLES),
      "--max-time",
      String(MAX_TIME),
      "--seed",
      SEED,
      // One worker: with two, Python 3.11's ast module fails inside
      // schemathesis' coverage phase ("AST constructor recursion depth mismatch").
      "--workers",
      "1",
      "--request-timeout",
      "30",
      "--no-color",
    ];

    // Act: output goes through as it comes (schemathesis masks the Authorization header)
    const { code, output } = await new Promise<{ code: number | null; output: string }>(
      (resolve) => {
        // Its cache (.schemathesis/) goes to a scratch directory, not the work tree.
        const cwd = fs.mkdtempSync(path.join(os.tmpdir(), "hoth-fuzz-"));
        const proc = spawn(path.join(ROOT, ".venv", "bin", "schemathesis"), args, { cwd });
        let output = "";
        proc.stdout.on("data", (c: Buffer) => {
          output += c;
        });
        proc.stderr.on("data", (c: Buffer) => {
          output += c;
        });
        proc.on("close", (c) => resolve({ code: c, output }));
      },
    );

    // Assess
    const cases = /(\d+) generated/.exec(output)?.[1];
    console.log(
      `      schemathesis: ${cases} cases generated in at most ${MAX_TIME} s, seed ${SEED}`,
    );
    assert.ok(!output.includes(token), "the token appears in schemathesis' output");
    assert.equal(code, 0, output.slice(-6000));
    // Every operation of the description, one per route.
    const n = ROUTES.length;
    assert.match(output, new RegExp(`Selected: ${n}/${n}\\s+Tested: ${n}\\b`));
    assert.doesNotMatch(output, /ST1\d\d/);
  });
});
