import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { SFNClient, StartExecutionCommand } from "@aws-sdk/client-sfn";
import { type LocalGlue, startGlue } from "../local/glue";
import { type LocalStepFunctions, startStepFunctions } from "../local/stepFunctions";
import { devDefinition as definition } from "./support/migration";

/**
 * The real local Glue worker process (local/python/glue_worker.py) when it
 * stops responding or dies: a SIGSTOPped worker fails its Step Functions
 * task within the heartbeat bound, a SIGKILLed one leaves no scratch data
 * behind, and a starting worker removes a dead worker's leftovers.
 */

const ARN = "arn:aws:states:us-east-1:000000000000:stateMachine:hoth-dev-migration";
const HEARTBEAT_TIMEOUT_MS = 1_500;

/** Scratch directories whose owner file names this pid. */
function scratchOf(pid: number): string[] {
  return fs
    .readdirSync(os.tmpdir())
    .filter((n) => n.startsWith("hoth-local-glue-"))
    .map((n) => path.join(os.tmpdir(), n))
    .filter((d) => {
      try {
        return fs.readFileSync(path.join(d, "owner"), "utf8").startsWith(`${pid} `);
      } catch {
        return false;
      }
    });
}

describe("local Glue worker: heartbeat and scratch data", function () {
  this.timeout(60_000);
  let glue: LocalGlue;
  let service: LocalStepFunctions;
  let dir: string;
  let leftover: string;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "hoth-glue-test-"));
    // A job that would run for a minute, were Spark ever up before the worker is stopped.
    const script = path.join(dir, "slow_job.py");
    fs.writeFileSync(script, "import time\n\ndef main(argv):\n    time.sleep(60)\n");
    // What a worker killed with SIGKILL leaves: its scratch data and an owner that is gone.
    const dead = spawnSync(process.execPath, ["-e", ""]).pid as number;
    leftover = fs.mkdtempSync(path.join(os.tmpdir(), "hoth-local-glue-"));
    fs.writeFileSync(path.join(leftover, "owner"), `${dead} 1`);
    fs.mkdirSync(path.join(leftover, "jr_1-x"));
    fs.writeFileSync(path.join(leftover, "jr_1-x", "Patient.ndjson"), '{"name":"Doe"}\n');

    const job = { script, defaultArguments: {} };
    glue = await startGlue({
      jobs: { "hoth-dev-legacy-members-to-fhir": job, "hoth-dev-ingest-fhir": job },
      awsEndpoint: "http://127.0.0.1:9",
    });
    service = await startStepFunctions({
      stateMachineArn: ARN,
      definition,
      glue,
      pollMs: 100,
      heartbeatTimeoutMs: HEARTBEAT_TIMEOUT_MS,
    });
  });

  after(async () => {
    if (glue.pid) {
      try {
        process.kill(glue.pid, "SIGCONT");
      } catch {
        // already gone
      }
    }
    await service?.stop();
    await glue?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("removes a dead worker's scratch data when it starts, and keeps its own private", () => {
    assert.equal(fs.existsSync(leftover), false);
    const own = scratchOf(glue.pid as number);
    assert.equal(own.length, 1);
    assert.equal(fs.statSync(own[0]).mode & 0o777, 0o700);
  });

  it("sends a heartbeat at least every second", async () => {
    await new Promise((r) => setTimeout(r, 1_500));
    assert.ok(glue.heartbeatAgeMs() < 1_500, `${glue.heartbeatAgeMs()} ms since the last line`);
  });

  it("fails the task of a SIGSTOPped worker with States.HeartbeatTimeout within the bound", async () => {
    const sfn = new SFNClient({
      endpoint: service.url,
      region: "us-east-1",
      credentials: { accessKeyId: "x", secretAccessKey: "x" },
    });
    const input = JSON.stringify({
      runId: "m-stop",
      org: "acme",
      source: "fhir",
      inputPrefix: "exports/a/",
    });
    const out = await sfn.send(
      new StartExecutionCommand({ stateMachineArn: ARN, name: "m-stop", input }),
    );
    // The run is under way (WAITING for Spark or RUNNING): now the worker stops responding.
    await new Promise((r) => setTimeout(r, 300));
    process.kill(glue.pid as number, "SIGSTOP");
    const stopped = Date.now();

    const settled = await service.settled(out.executionArn as string);

    const elapsed = Date.now() - stopped;
    assert.equal(settled.status, "FAILED");
    assert.deepEqual(
      service.events.map((e) => e.DetailType),
      ["MigrationFailed"],
    );
    assert.match(JSON.stringify(service.events[0].Detail), /States\.HeartbeatTimeout/);
    // Bound: heartbeat timeout + one call timeout (2 s) + one poll, from the last heartbeat.
    assert.ok(elapsed < HEARTBEAT_TIMEOUT_MS + 2_000 + 1_000, `${elapsed} ms`);
  });

  it("leaves no scratch data behind when the worker is killed with SIGKILL", async () => {
    const pid = glue.pid as number;
    assert.equal(scratchOf(pid).length, 1);
    process.kill(-pid, "SIGKILL");
    await glue.stop(); // resolves once the process has exited
    assert.deepEqual(scratchOf(pid), []);
  });
});
