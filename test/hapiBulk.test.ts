import * as assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { promises as fsp, readFileSync } from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import {
  checkSummary,
  type DownloadResult,
  deleteExport,
  downloadFile,
  emptySummary,
  foldDownloads,
  initiateExport,
  planDownloads,
  pollExport,
  type StepContext,
} from "../handlers/lib/bulkExport";
import type { ExportManifest } from "../handlers/lib/bulkManifest";
import { fileSink } from "../handlers/lib/objectSink";

/**
 * HOTH's Bulk Data steps against a server this project did not write: HAPI
 * FHIR 8.8.0's JPA server (local/hapi-bulk-server). Opt-in (HOTH_HAPI=1): it
 * downloads about 340 MB from Maven Central the first time and HAPI takes
 * 2-3 minutes to run an export (its job scheduler).
 */
const ENABLED = process.env.HOTH_HAPI === "1";
const APP = path.join(__dirname, "..", "local", "hapi-bulk-server");

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((r) => server.close(r));
  return port;
}

describe("Bulk Data export against HAPI FHIR 8.8.0 (HOTH_HAPI=1)", function () {
  this.timeout(15 * 60_000);
  let hapi: ChildProcess | undefined;
  let base: string;

  before(async function () {
    if (!ENABLED) {
      console.log("    (skipped: set HOTH_HAPI=1 to build and run local/hapi-bulk-server)");
      return this.skip();
    }
    const build = spawnSync("mvn", ["-B", "-q", "package", "-DskipTests"], { cwd: APP });
    assert.equal(build.status, 0, String(build.stdout) + String(build.stderr));
    const port = await freePort();
    base = `http://127.0.0.1:${port}/fhir`;
    const proc = spawn(
      "java",
      [
        "-jar",
        "target/hapi-bulk-probe-0.1.jar",
        `--server.port=${port}`,
        "--server.address=127.0.0.1",
      ],
      { cwd: APP, stdio: ["ignore", "pipe", "pipe"] },
    );
    hapi = proc;
    await new Promise<void>((resolve, reject) => {
      let log = "";
      const timer = setTimeout(() => reject(new Error(`HAPI did not start:\n${log}`)), 240_000);
      proc.stdout?.on("data", (d: Buffer) => {
        log = (log + d.toString()).slice(-20_000);
        if (log.includes("Started ProbeApplication")) {
          clearTimeout(timer);
          resolve();
        }
      });
      proc.on("exit", (code) => reject(new Error(`HAPI exited (${code}):\n${log}`)));
    });
    const loaded = await fetch(base, {
      method: "POST",
      headers: { "Content-Type": "application/fhir+json" },
      body: readFileSync(path.join(APP, "bundle.json")),
    });
    assert.equal(loaded.status, 200, await loaded.text());
  });

  after(() => {
    hapi?.kill("SIGKILL");
  });

  it("kicks off, polls to completion, downloads every file with its lines and deletes the job, as the state machine's steps do", async () => {
    // Prepare: HAPI has no authentication; the token is sent (its manifest says
    // requiresAccessToken) and ignored.
    const ctx: StepContext = {
      server: {
        name: "hapi",
        fhirBaseUrl: base,
        tokenUrl: `${base}/token`,
        clientId: "hoth",
        scopes: ["system/*.read"],
      },
      tokens: { token: async () => "not-checked", invalidate: () => undefined },
    };
    const out = await fsp.mkdtemp(path.join(os.tmpdir(), "hoth-hapi-"));

    // Act
    let job = await initiateExport({ deadlineSeconds: 600 }, ctx);
    let manifest: ExportManifest | undefined;
    let polls = 0;
    while (!manifest) {
      const r = await pollExport(job, ctx);
      job = r.job;
      polls++;
      if (r.status === "complete") manifest = r.manifest;
      else await new Promise((w) => setTimeout(w, 3000)); // not HAPI's Retry-After: 120
    }
    const results: DownloadResult[] = [];
    for (const task of planDownloads(manifest, "landing/acme/bulk/m-1")) {
      results.push(await downloadFile(task, ctx, { sink: fileSink(out) }));
    }
    const summary = foldDownloads(emptySummary(), results);
    checkSummary(summary);
    const deleted = await deleteExport(job, ctx);

    // Assess: the bundle's 3 Patients, 1 Observation and 1 Group, each line its type.
    const lines: Record<string, number> = {};
    for (const r of results) {
      const text = await fsp.readFile(path.join(out, r.key), "utf8");
      for (const line of text.split("\n").filter((l) => l.trim())) {
        assert.equal(JSON.parse(line).resourceType, r.type);
        lines[r.type] = (lines[r.type] ?? 0) + 1;
      }
    }
    assert.deepEqual(lines, { Group: 1, Observation: 1, Patient: 3 });
    assert.deepEqual(
      results.map((r) => [r.type, r.lines]),
      [
        ["Group", 1],
        ["Observation", 1],
        ["Patient", 3],
      ],
    );
    assert.ok(polls <= 120, `${polls} polls`);
    // HAPI answers DELETE of a completed job 404 (the spec asks for 202); the step
    // takes a job already gone as deleted, so the run does not fail on it.
    assert.equal(deleted.result, "already-gone");
  });
});
