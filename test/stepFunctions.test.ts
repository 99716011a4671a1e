import * as assert from "node:assert/strict";
import {
  DescribeExecutionCommand,
  ListExecutionsCommand,
  SFNClient,
  StartExecutionCommand,
  StopExecutionCommand,
} from "@aws-sdk/client-sfn";
import type { JobRun, LocalGlue } from "../local/glue";
import { type LocalStepFunctions, startStepFunctions } from "../local/stepFunctions";
import { devDefinition as definition } from "./support/migration";

const ARN = "arn:aws:states:us-east-1:000000000000:stateMachine:hoth-dev-migration";

/**
 * A Glue stand-in: runs finish when `release()` is called, in the state
 * `outcome(job)` gives; records every StartJobRun.
 */
function fakeGlue(outcome: (job: string) => "SUCCEEDED" | "FAILED" = () => "SUCCEEDED") {
  const runs = new Map<string, JobRun>();
  const started: { job: string; args: Record<string, string> }[] = [];
  let held = true;
  let silentSince: number | undefined;
  const glue = {
    url: "",
    sparkReady: Promise.resolve({ event: "spark-ready" }),
    logFile: "",
    onEvent: () => {},
    stop: async () => {},
    pid: undefined,
    heartbeatAgeMs: () => (silentSince === undefined ? 0 : Date.now() - silentSince),
    async startJobRun(job: string, args: Record<string, string>) {
      const id = `jr_${runs.size + 1}`;
      started.push({ job, args });
      runs.set(id, { Id: id, JobName: job, JobRunState: "RUNNING", ExecutionTime: 0 });
      return id;
    },
    async getJobRun(id: string) {
      const run = runs.get(id) as JobRun;
      if (!held && run.JobRunState === "RUNNING") {
        const state = outcome(run.JobName);
        Object.assign(run, {
          JobRunState: state,
          ...(state === "FAILED" ? { ErrorMessage: "InputNotFound: Path does not exist" } : {}),
        });
      }
      return { ...run };
    },
  } satisfies LocalGlue;
  return {
    glue,
    started,
    release: () => {
      held = false;
    },
    /** The worker stops sending heartbeats (as under SIGSTOP). */
    fallSilent: () => {
      silentSince = Date.now();
    },
  };
}

describe("local Step Functions service (the app's SFNClient against it)", () => {
  let service: LocalStepFunctions;
  let sfn: SFNClient;
  let glue: ReturnType<typeof fakeGlue>;
  let outcome: (job: string) => "SUCCEEDED" | "FAILED";
  const input = (source: string, runId = "m-1") =>
    JSON.stringify({ runId, org: "acme", source, inputPrefix: "extracts/members.csv" });

  beforeEach(async () => {
    outcome = () => "SUCCEEDED";
    glue = fakeGlue((job) => outcome(job));
    service = await startStepFunctions({
      stateMachineArn: ARN,
      definition,
      glue: glue.glue,
      pollMs: 5,
    });
    sfn = new SFNClient({
      endpoint: service.url,
      region: "us-east-1",
      credentials: { accessKeyId: "x", secretAccessKey: "x" },
    });
  });

  afterEach(async () => {
    await service.stop();
  });

  it("runs the legacy path through both Glue jobs and publishes MigrationSucceeded", async () => {
    const out = await sfn.send(
      new StartExecutionCommand({ stateMachineArn: ARN, name: "m-1", input: input("legacy") }),
    );
    glue.release();
    await service.settled(out.executionArn as string);

    const described = await sfn.send(
      new DescribeExecutionCommand({ executionArn: out.executionArn }),
    );
    assert.equal(out.executionArn, `${ARN.replace(":stateMachine:", ":execution:")}:m-1`);
    assert.equal(described.status, "SUCCEEDED");
    assert.deepEqual(JSON.parse(described.output as string), {
      runId: "m-1",
      org: "acme",
      reportUri: "s3://hoth-dev-lake/reports/acme/m-1/report.json",
    });
    assert.ok(described.stopDate instanceof Date);
    assert.deepEqual(
      glue.started.map((r) => [r.job, r.args["--input_path"]]),
      [
        ["hoth-dev-legacy-members-to-fhir", "s3://hoth-dev-lake/landing/acme/extracts/members.csv"],
        ["hoth-dev-ingest-fhir", "s3://hoth-dev-lake/landing/acme/converted/m-1/"],
      ],
    );
    assert.deepEqual(
      service.events.map((e) => [e.DetailType, e.EventBusName, e.Detail.runId]),
      [["MigrationSucceeded", "hoth-dev-migrations", "m-1"]],
    );
  });

  it("answers a repeated start with the same name and input as the first while it runs, and refuses anything else", async () => {
    const first = await sfn.send(
      new StartExecutionCommand({ stateMachineArn: ARN, name: "m-1", input: input("fhir") }),
    );
    const again = await sfn.send(
      new StartExecutionCommand({ stateMachineArn: ARN, name: "m-1", input: input("fhir") }),
    );
    assert.deepEqual(
      [again.executionArn, again.startDate?.getTime()],
      [first.executionArn, first.startDate?.getTime()],
    );
    await assert.rejects(
      sfn.send(
        new StartExecutionCommand({ stateMachineArn: ARN, name: "m-1", input: input("legacy") }),
      ),
      { name: "ExecutionAlreadyExists" },
    );
    glue.release();
    await service.settled(first.executionArn as string);
    await assert.rejects(
      sfn.send(
        new StartExecutionCommand({ stateMachineArn: ARN, name: "m-1", input: input("fhir") }),
      ),
      { name: "ExecutionAlreadyExists" },
    );
    assert.equal(glue.started.length, 1);
  });

  it("fails a Glue task whose worker fell silent with States.HeartbeatTimeout, and publishes MigrationFailed", async () => {
    const quick = await startStepFunctions({
      stateMachineArn: ARN,
      definition,
      glue: glue.glue,
      pollMs: 5,
      heartbeatTimeoutMs: 100,
    });
    try {
      const client = new SFNClient({
        endpoint: quick.url,
        region: "us-east-1",
        credentials: { accessKeyId: "x", secretAccessKey: "x" },
      });
      const out = await client.send(
        new StartExecutionCommand({
          stateMachineArn: ARN,
          name: "m-9",
          input: input("fhir", "m-9"),
        }),
      );
      glue.fallSilent(); // the run stays RUNNING: only the heartbeat can end the task
      const settled = await quick.settled(out.executionArn as string);
      assert.equal(settled.status, "FAILED");
      const [failed] = quick.events;
      assert.equal(failed.DetailType, "MigrationFailed");
      assert.match(JSON.stringify(failed.Detail), /States\.HeartbeatTimeout/);
      assert.match(JSON.stringify(failed.Detail), /no heartbeat for 0.1 s/);
    } finally {
      await quick.stop();
    }
  });

  it("fails the execution with States.TaskFailed and the job run as cause when a Glue run fails", async () => {
    outcome = (job) => (job.endsWith("ingest-fhir") ? "FAILED" : "SUCCEEDED");
    const out = await sfn.send(
      new StartExecutionCommand({ stateMachineArn: ARN, name: "m-2", input: input("fhir", "m-2") }),
    );
    glue.release();
    await service.settled(out.executionArn as string);

    const described = await sfn.send(
      new DescribeExecutionCommand({ executionArn: out.executionArn }),
    );
    assert.equal(described.status, "FAILED");
    assert.equal(described.error, "States.TaskFailed");
    assert.deepEqual(JSON.parse(described.cause as string), {
      Id: "jr_1",
      JobName: "hoth-dev-ingest-fhir",
      JobRunState: "FAILED",
      ExecutionTime: 0,
      ErrorMessage: "InputNotFound: Path does not exist",
    });
    assert.deepEqual(
      service.events.map((e) => [e.DetailType, e.Detail.error]),
      [["MigrationFailed", "States.TaskFailed"]],
    );
  });

  it("stops a running execution (ABORTED) and lists executions by status", async () => {
    const out = await sfn.send(
      new StartExecutionCommand({ stateMachineArn: ARN, name: "m-3", input: input("fhir", "m-3") }),
    );
    await sfn.send(new StopExecutionCommand({ executionArn: out.executionArn, error: "Stopped" }));

    const described = await sfn.send(
      new DescribeExecutionCommand({ executionArn: out.executionArn }),
    );
    assert.deepEqual([described.status, described.error], ["ABORTED", "Stopped"]);
    const aborted = await sfn.send(
      new ListExecutionsCommand({ stateMachineArn: ARN, statusFilter: "ABORTED" }),
    );
    assert.deepEqual(
      aborted.executions?.map((e) => e.name),
      ["m-3"],
    );
    const running = await sfn.send(
      new ListExecutionsCommand({ stateMachineArn: ARN, statusFilter: "RUNNING" }),
    );
    assert.deepEqual(running.executions, []);
  });

  it("answers what AWS answers for an unknown execution, state machine, bad input or name", async () => {
    await assert.rejects(sfn.send(new DescribeExecutionCommand({ executionArn: `${ARN}:nope` })), {
      name: "ExecutionDoesNotExist",
    });
    await assert.rejects(
      sfn.send(new StartExecutionCommand({ stateMachineArn: `${ARN}-other`, input: "{}" })),
      { name: "StateMachineDoesNotExist" },
    );
    await assert.rejects(
      sfn.send(new StartExecutionCommand({ stateMachineArn: ARN, input: "{not json" })),
      { name: "InvalidExecutionInput" },
    );
    await assert.rejects(
      sfn.send(new StartExecutionCommand({ stateMachineArn: ARN, name: "a b", input: "{}" })),
      { name: "InvalidName" },
    );
  });
});
