import * as assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import * as net from "node:net";
import * as path from "node:path";
import { freePort } from "../local/moto";
import { LOCAL_CLIENTS } from "../local/okta";
import { alive, tree } from "../local/processTree";

const ROOT = path.join(__dirname, "..");
const TSX_CLI = path.join(ROOT, "node_modules", "tsx", "dist", "cli.mjs");

/** `npm start` (local/start.ts) as a person runs it: ready line, Ctrl-C, clear refusals. */
describe("npm start", function () {
  this.timeout(120_000);

  function start(env: Record<string, string>) {
    const proc = spawn(process.execPath, [TSX_CLI, "local/start.ts"], {
      cwd: ROOT,
      env: { ...process.env, ...env },
    });
    let stdout = "";
    let stderr = "";
    proc.stdout.on("data", (c: Buffer) => {
      stdout += c;
    });
    proc.stderr.on("data", (c: Buffer) => {
      stderr += c;
    });
    const exited = new Promise<number | null>((r) => proc.on("exit", (code) => r(code)));
    return { proc, exited, out: () => stdout, err: () => stderr };
  }

  async function until(what: () => boolean, proc: ChildProcess, ms: number) {
    const deadline = Date.now() + ms;
    while (!what()) {
      if (proc.exitCode !== null) throw new Error(`exited with ${proc.exitCode}`);
      if (Date.now() > deadline) throw new Error("timed out");
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  it("prints the URLs and a token command when ready, and stops everything on Ctrl-C", async () => {
    const [api, okta, aws, bulk] = [
      await freePort(),
      await freePort(),
      await freePort(),
      await freePort(),
    ];
    const run = start({
      HOTH_API_PORT: String(api),
      HOTH_OKTA_PORT: String(okta),
      HOTH_AWS_PORT: String(aws),
      HOTH_BULK_PORT: String(bulk),
    });
    await until(() => run.out().includes("Ctrl-C stops everything."), run.proc, 90_000);
    const children = tree(run.proc.pid as number);
    children.delete(run.proc.pid as number);

    assert.match(run.out(), /HOTH local stack ready in \d+\.\d s \(stack dev\)/);
    assert.ok(run.out().includes(`API            http://127.0.0.1:${api}/local`));
    assert.ok(run.out().includes(`AWS (moto)     http://127.0.0.1:${aws}`));
    assert.ok(run.out().includes("TOKEN=$(npm run --silent token)"));
    for (const c of LOCAL_CLIENTS)
      assert.ok(run.out().includes(`${c.clientId} (organisation ${c.org}): ${c.secret}`));
    assert.ok(run.out().includes(`Bulk source    http://127.0.0.1:${bulk}/fhir`));
    assert.ok(children.size >= 3, `expected moto, the Glue worker and its JVM: ${[...children]}`);
    const health = await fetch(`http://127.0.0.1:${api}/local/health`, { method: "POST" });
    assert.equal(health.status, 401);

    run.proc.kill("SIGINT");
    assert.equal(await run.exited, 0);
    await new Promise((r) => setTimeout(r, 500));
    assert.deepEqual(alive(children), []);
    await assert.rejects(fetch(`http://127.0.0.1:${api}/local/health`, { method: "POST" }));
  });

  it("refuses a taken port, naming it and the variable that moves it", async () => {
    const taken = net.createServer();
    await new Promise<void>((r) => taken.listen(0, "127.0.0.1", r));
    const port = (taken.address() as net.AddressInfo).port;
    try {
      const run = start({ HOTH_API_PORT: String(port), HOTH_OKTA_PORT: String(await freePort()) });
      assert.equal(await run.exited, 1);
      assert.equal(
        run.err().trim(),
        `hoth: port ${port} is taken (another npm start?); free it or set HOTH_API_PORT=<port>`,
      );
    } finally {
      taken.close();
    }
  });

  it("says what to install when Java is missing", async () => {
    const run = start({ PATH: "/nonexistent" });
    assert.equal(await run.exited, 1);
    assert.equal(
      run.err().trim(),
      "hoth: java is required: install Java 17 (local Spark runs the Glue jobs)",
    );
  });
});
