import * as assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import type { LocalStack } from "../local/stack";
import { localStack } from "./support/localStack";

const ROOT = path.join(__dirname, "..");

/** The README's walk-through block, exactly as a reader pastes it. */
function walkthrough(): string {
  const readme = fs.readFileSync(path.join(ROOT, "README.md"), "utf8");
  const m = /<!-- walkthrough:start -->\n```sh\n([\s\S]*?)```\n<!-- walkthrough:end -->/.exec(
    readme,
  );
  if (!m) throw new Error("README.md has no walkthrough block");
  return m[1];
}

describe("the README's walk-through", function () {
  this.timeout(600_000);
  let stack: LocalStack;

  before(async () => {
    stack = await localStack();
  });

  it("runs as pasted, in order, in a fresh shell, against a local stack", async () => {
    // Prepare: the ports npm start would use, here those of the test's stack
    const port = (url: string) => new URL(url).port;
    const env = {
      PATH: process.env.PATH ?? "",
      HOME: process.env.HOME ?? "/tmp",
      HOTH_API_PORT: port(stack.apiUrl),
      HOTH_OKTA_PORT: port(stack.tokenUrl),
      HOTH_AWS_PORT: port(stack.motoUrl),
    };
    assert.equal(stack.apiUrl, `http://127.0.0.1:${env.HOTH_API_PORT}/local`);
    // Act: bash, stopping at the first failing command (asynchronously: the
    // stack serves from this process)
    const run = await new Promise<{ status: number | null; stdout: string; stderr: string }>(
      (resolve) => {
        const child = spawn("bash", ["-eo", "pipefail", "-c", walkthrough()], { cwd: ROOT, env });
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (d) => {
          stdout += d;
        });
        child.stderr.on("data", (d) => {
          stderr += d;
        });
        const timer = setTimeout(() => child.kill("SIGKILL"), 540_000);
        child.on("close", (status) => {
          clearTimeout(timer);
          resolve({ status, stdout, stderr });
        });
      },
    );
    // Assess
    assert.equal(run.status, 0, `${run.stdout}\n${run.stderr}`);
    const lines = run.stdout.trim().split("\n");
    assert.match(lines[0], /^\{"status":"ok"/);
    assert.match(lines[1], /^\{"resourceType":"Patient"/);
    // the search's total, the generator's row count, then the figures each step prints, in order
    assert.deepEqual(
      lines.filter((l) => /^(\d+|[A-Z]+)$/.test(l)),
      ["1", "100", "SUCCEEDED", "100", "204", "SUCCEEDED", "1", "SUCCEEDED", "SUCCEEDED"],
    );
    assert.match(lines.at(-1) ?? "", /curated\/patient\/org=acme\/ingest_date=/);
  });
});
