import * as assert from "node:assert/strict";

import aslValidator = require("asl-validator");

import { StateMachine } from "aws-local-stepfunctions";
import { EVENT_SOURCE } from "../contracts/migrationDefinition";
import { devDefinition as definition } from "./support/migration";

/** The UTC day now; aws-local-stepfunctions always sets $$.Execution.StartTime to the real start. */
const today = () => new Date().toISOString().slice(0, 10);

type Input = Record<string, unknown>;
type Entry = {
  Source: string;
  DetailType: string;
  EventBusName: string;
  Detail: Record<string, string>;
};

/** Errors a local Glue stand-in throws, named as the Step Functions Glue integration names them. */
class GlueError extends Error {
  constructor(name: string, message: string) {
    super(message);
    this.name = name;
  }
}

/**
 * Runs the definition in the local ASL interpreter with the Glue and
 * EventBridge tasks replaced by local handlers; records the states entered,
 * the Glue runs started (with their arguments) and the events published.
 */
async function execute(input: Input, glue: (job: string, attempt: number) => void = () => {}) {
  const machine = new StateMachine(definition as never);
  const days = [today()];
  const runs: { job: string; args: Record<string, string> }[] = [];
  const events: Entry[] = [];
  const attempts = new Map<string, number>();
  const glueTask = async (params: { JobName: string; Arguments: Record<string, string> }) => {
    const n = (attempts.get(params.JobName) ?? 0) + 1;
    attempts.set(params.JobName, n);
    runs.push({ job: params.JobName, args: params.Arguments });
    glue(params.JobName, n);
    return { Id: `jr_${params.JobName}_${n}`, JobRunState: "SUCCEEDED" };
  };
  const putEvents = async (params: { Entries: Entry[] }) => {
    events.push(...params.Entries);
    return { Entries: [{ EventId: String(events.length) }], FailedEntryCount: 0 };
  };
  const execution = machine.run(input as never, {
    context: {
      Execution: {
        Id: "arn:aws:states:us-east-1:123456789012:execution:m:e1",
        Input: input as never,
      },
    },
    overrides: {
      taskResourceLocalHandlers: {
        LegacyToFhir: glueTask as never,
        IngestFhir: glueTask as never,
        PublishSucceeded: putEvents as never,
        PublishFailed: putEvents as never,
        PublishInvalidInput: putEvents as never,
      },
      retryIntervalOverrides: { LegacyToFhir: 0, IngestFhir: 0 },
    },
  });
  const states: string[] = [];
  const collect = (async () => {
    for await (const e of execution.eventLogs) {
      const ev = e as { type: string; state?: { name: string } };
      if (ev.type === "StateEntered" && ev.state) states.push(ev.state.name);
    }
  })();
  let result: unknown;
  let error: Error | undefined;
  try {
    result = await execution.result;
  } catch (e) {
    error = e as Error;
  }
  await collect;
  days.push(today());
  return { result, error, states, runs, events, days };
}

const legacyInput = {
  runId: "run-1",
  org: "acme",
  source: "legacy",
  inputPrefix: "extracts/members.csv",
};
const fhirInput = {
  runId: "run-2",
  org: "acme",
  source: "fhir",
  inputPrefix: "exports/2026-11-22/",
};

describe("migration state machine definition", () => {
  it("is valid Amazon States Language (asl-validator)", () => {
    const { isValid, errorsText } = aslValidator(definition);
    assert.ok(isValid, errorsText());
  });

  it("legacy path: converts, ingests the converted NDJSON, publishes MigrationSucceeded", async () => {
    const { result, states, runs, events, days } = await execute(legacyInput);
    // The ingest date is the UTC day the execution started (either side of a midnight).
    const day = runs[0]?.args["--ingest_date"];
    assert.ok(days.includes(day), `ingest date ${day} is not the day of the run (${days})`);
    assert.deepEqual(states, [
      "ValidateInput",
      "Prepare",
      "RouteBySource",
      "LegacyToFhir",
      "UseConvertedAsFhir",
      "IngestFhir",
      "PublishSucceeded",
      "Succeeded",
    ]);
    assert.deepEqual(runs, [
      {
        job: "hoth-dev-legacy-members-to-fhir",
        args: {
          "--run_id": "run-1",
          "--org": "acme",
          "--ingest_date": day,
          "--quarantine_path": "s3://hoth-dev-lake/quarantine/acme/run-1/",
          "--report_path": "s3://hoth-dev-lake/reports/acme/run-1/",
          "--input_path": "s3://hoth-dev-lake/landing/acme/extracts/members.csv",
          "--landing_path": "s3://hoth-dev-lake/landing/acme/converted/run-1/",
        },
      },
      {
        job: "hoth-dev-ingest-fhir",
        args: {
          "--run_id": "run-1",
          "--org": "acme",
          "--ingest_date": day,
          "--quarantine_path": "s3://hoth-dev-lake/quarantine/acme/run-1/",
          "--report_path": "s3://hoth-dev-lake/reports/acme/run-1/",
          "--input_path": "s3://hoth-dev-lake/landing/acme/converted/run-1/",
          "--curated_path": "s3://hoth-dev-lake/curated/",
        },
      },
    ]);
    assert.deepEqual(events, [
      {
        Source: EVENT_SOURCE,
        DetailType: "MigrationSucceeded",
        EventBusName: "hoth-dev-migrations",
        Detail: {
          runId: "run-1",
          org: "acme",
          source: "legacy",
          reportUri: "s3://hoth-dev-lake/reports/acme/run-1/report.json",
        },
      },
    ]);
    assert.deepEqual(result, {
      runId: "run-1",
      org: "acme",
      reportUri: "s3://hoth-dev-lake/reports/acme/run-1/report.json",
    });
  });

  it("fhir path: ingests the given landing prefix directly", async () => {
    const { states, runs, events } = await execute(fhirInput);
    assert.deepEqual(states, [
      "ValidateInput",
      "Prepare",
      "RouteBySource",
      "UseInputAsFhir",
      "IngestFhir",
      "PublishSucceeded",
      "Succeeded",
    ]);
    assert.deepEqual(
      runs.map((r) => [r.job, r.args["--input_path"]]),
      [["hoth-dev-ingest-fhir", "s3://hoth-dev-lake/landing/acme/exports/2026-11-22/"]],
    );
    assert.deepEqual(
      events.map((e) => e.DetailType),
      ["MigrationSucceeded"],
    );
  });

  it("retries a Glue concurrency limit and then succeeds", async () => {
    const { states, runs, events } = await execute(fhirInput, (_job, attempt) => {
      if (attempt < 3) throw new GlueError("Glue.ConcurrentRunsExceededException", "too many runs");
    });
    assert.equal(runs.length, 3);
    assert.deepEqual(states.slice(-2), ["PublishSucceeded", "Succeeded"]);
    assert.deepEqual(
      events.map((e) => e.DetailType),
      ["MigrationSucceeded"],
    );
  });

  it("catches a Glue job failure, publishes MigrationFailed with the cause and ends in Fail", async () => {
    const { error, states, runs, events } = await execute(legacyInput, (job: string) => {
      if (job.endsWith("ingest-fhir"))
        throw new GlueError("States.TaskFailed", "Job run failed: OutOfMemory");
    });
    assert.deepEqual(states, [
      "ValidateInput",
      "Prepare",
      "RouteBySource",
      "LegacyToFhir",
      "UseConvertedAsFhir",
      "IngestFhir",
      "PublishFailed",
      "Failed",
    ]);
    assert.equal(runs.length, 2, "a non-retryable failure is not retried");
    assert.deepEqual(events, [
      {
        Source: EVENT_SOURCE,
        DetailType: "MigrationFailed",
        EventBusName: "hoth-dev-migrations",
        Detail: {
          runId: "run-1",
          org: "acme",
          source: "legacy",
          error: "States.TaskFailed",
          cause: "Job run failed: OutOfMemory",
        },
      },
    ]);
    assert.ok(error);
    assert.match(String(error), /States\.TaskFailed|Job run failed/);
  });

  it("gives up after five attempts at a persistent concurrency limit and reports the failure", async () => {
    const { runs, events, states } = await execute(fhirInput, () => {
      throw new GlueError("Glue.ConcurrentRunsExceededException", "still too many");
    });
    assert.equal(runs.length, 6, "one run and five retries");
    assert.deepEqual(states.slice(-2), ["PublishFailed", "Failed"]);
    assert.equal(events[0].Detail.error, "Glue.ConcurrentRunsExceededException");
  });

  for (const [what, input] of [
    ["no runId", { org: "acme", source: "fhir", inputPrefix: "x/" }],
    ["a numeric org", { runId: "r", org: 7, source: "fhir", inputPrefix: "x/" }],
    ["an unknown source", { runId: "r", org: "acme", source: "csv", inputPrefix: "x/" }],
    ["no inputPrefix", { runId: "r", org: "acme", source: "fhir" }],
  ] as const) {
    it(`refuses input with ${what}: no Glue run, a MigrationFailed event, Fail`, async () => {
      const { error, states, runs, events } = await execute(input as Input);
      assert.deepEqual(states, ["ValidateInput", "PublishInvalidInput", "InvalidInput"]);
      assert.deepEqual(runs, []);
      assert.deepEqual(
        events.map((e) => [e.DetailType, e.Detail.error]),
        [["MigrationFailed", "InvalidInput"]],
      );
      const cause = (error as Error & { cause?: { name?: string; message?: string } }).cause;
      assert.deepEqual(
        [cause?.name, cause?.message],
        [
          "InvalidInput",
          "Input needs runId, org and inputPrefix (strings) and source 'legacy', 'fhir' or 'registry'",
        ],
      );
    });
  }
});
