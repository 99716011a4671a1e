import * as assert from "node:assert/strict";
import { promises as fsp } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

import aslValidator = require("asl-validator");

import { CreateKeyCommand, GetPublicKeyCommand, KMSClient } from "@aws-sdk/client-kms";
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import { StateMachine } from "aws-local-stepfunctions";
import { MAX_DOWNLOAD_BATCHES, MAX_POLLS, minPollWaitSeconds } from "../contracts/budgets";
import { type BulkDefinitionArgs, migrationDefinition } from "../contracts/migrationDefinition";
import { TransientAwsError } from "../handlers/lib/aws";
import { jwks, publicJwk } from "../handlers/lib/smartBackend";
import { type BulkSource, generateNdjson, startBulkSource } from "../local/bulkSource";
import { loadHandler } from "./support/handlers";
import { startMoto } from "./support/moto";

type Json = Record<string, unknown>;
type Step = "initiate" | "poll" | "download" | "check" | "delete";
type BulkHandler = (event: unknown) => Promise<unknown>;

const LAKE = `hoth-test-bulk-${Date.now()}`;
const STEPS: Step[] = ["initiate", "poll", "download", "check", "delete"];
const arn = (s: string) => `arn:aws:lambda:us-east-1:123456789012:function:hoth-test-bulk-${s}`;

function definition(deadlineSeconds = 60, bulk = true, downloadConcurrency = 4) {
  const args: BulkDefinitionArgs = {
    functionArns: Object.fromEntries(STEPS.map((s) => [s, arn(s)])) as Record<Step, string>,
    deadlineSeconds,
    downloadConcurrency,
    stepTimeoutSeconds: 60,
    downloadTimeoutSeconds: 900,
  };
  return migrationDefinition({
    legacyJobName: "hoth-test-legacy",
    ingestJobName: "hoth-test-ingest",
    registryExportFunctionArn: arn("registry-export"),
    registryExportTimeoutSeconds: 300,
    lakeBucket: LAKE,
    eventBusName: "hoth-test-migrations",
    legacyTimeoutSeconds: 60,
    ingestTimeoutSeconds: 60,
    ...(bulk ? { bulk: args } : {}),
  });
}

/**
 * The bulk branch of the migration definition, run by aws-local-stepfunctions
 * along every path (success, retry, deadline, error file, source 4xx,
 * line-count mismatch, invalid input) with the real bulk Lambda handler
 * (handlers/bulk.ts, one module per step as deployed) signing with a P-384
 * key in moto's KMS and streaming into moto's S3, against the local source.
 */
describe("bulk branch of the migration state machine (real handlers, moto, local source)", function () {
  this.timeout(60_000);
  let s3: S3Client;
  let data: string;
  let source: BulkSource;
  let handlers: Record<Step, BulkHandler>;
  let env: Record<string, string>;

  before(async () => {
    await startMoto();
    s3 = new S3Client({ forcePathStyle: true });
    await s3.send(new CreateBucketCommand({ Bucket: LAKE }));
    const kms = new KMSClient({});
    const key = await kms.send(
      new CreateKeyCommand({ KeyUsage: "SIGN_VERIFY", KeySpec: "ECC_NIST_P384" }),
    );
    const lakeKey = await kms.send(new CreateKeyCommand({}));
    const publicKey = (
      await kms.send(new GetPublicKeyCommand({ KeyId: key.KeyMetadata?.Arn as string }))
    ).PublicKey as Uint8Array;
    env = {
      SIGNING_KEY_ARN: key.KeyMetadata?.Arn as string,
      SIGNING_PUBLIC_KEY: Buffer.from(publicKey).toString("base64"),
      SIGNING_KEY_SPEC: "ECC_NIST_P384",
      LAKE_BUCKET: LAKE,
      LAKE_KEY_ARN: lakeKey.KeyMetadata?.Arn as string,
      // The registered JWKS: what GET /.well-known/jwks.json serves.
      JWKS: JSON.stringify(jwks([publicJwk(publicKey, "ES384")])),
    };
    data = await generateNdjson({ resources: 300, perPatient: 10 });
  });
  after(() => fsp.rm(data, { recursive: true, force: true }));

  /** (Re)starts the local source and loads the five handlers pointing at it. */
  async function startSource(extra: Partial<Parameters<typeof startBulkSource>[0]> = {}) {
    source = await startBulkSource({
      dataDir: data,
      clients: [{ clientId: "hoth", jwks: JSON.parse(env.JWKS), scopes: ["system/*.read"] }],
      progressPolls: 2,
      ...extra,
    });
    const sources = JSON.stringify([
      {
        name: "ehr",
        fhirBaseUrl: source.baseUrl,
        tokenUrl: source.tokenUrl,
        clientId: "hoth",
        scopes: ["system/*.read"],
      },
    ]);
    handlers = Object.fromEntries(
      STEPS.map((step) => [
        step,
        loadHandler<{ handler: BulkHandler }>("handlers/bulk.ts", {
          ...env,
          BULK_STEP: step,
          BULK_SOURCES: sources,
        }).handler,
      ]),
    ) as Record<Step, BulkHandler>;
  }
  beforeEach(() => startSource());
  afterEach(() => {
    afterInvoke = () => undefined;
    invocations = { initiate: 0, poll: 0, download: 0, check: 0, delete: 0 };
    return source.stop();
  });

  /**
   * Called after a step's function answered, before the state machine sees
   * the answer: throwing here stands in for a Lambda fault (the function ran,
   * its answer was lost).
   */
  let afterInvoke: (step: Step, payload: Json) => void | Promise<void> = () => undefined;
  /** Each step's invocations, retries included. */
  let invocations: Record<Step, number> = {
    initiate: 0,
    poll: 0,
    download: 0,
    check: 0,
    delete: 0,
  };

  /** The Lambda integration (lambda:invoke) as AWS answers it: Payload, or the error type as the error. */
  const invoke = (step: Step) => async (params: { FunctionName: string; Payload: unknown }) => {
    assert.equal(params.FunctionName, arn(step));
    invocations[step]++;
    try {
      const Payload = await handlers[step](params.Payload);
      await afterInvoke(step, params.Payload as Json);
      return { StatusCode: 200, Payload };
    } catch (e) {
      const err = e as Error;
      throw Object.assign(
        new Error(JSON.stringify({ errorType: err.name, errorMessage: err.message })),
        { name: err.name },
      );
    }
  };

  /** Runs the definition; WaitForExport waits `waitMs` (0: not at all) whatever the poll asked. */
  async function execute(input: Json, def = definition(), waitMs = 0) {
    const ingests: Json[] = [];
    const events: { DetailType: string; Detail: Record<string, string> }[] = [];
    const machine = new StateMachine(def as never);
    const execution = machine.run(input as never, {
      context: { Execution: { Id: "arn:aws:states:::execution:m:e1", Input: input as never } },
      overrides: {
        taskResourceLocalHandlers: {
          InitiateExport: invoke("initiate"),
          PollExport: invoke("poll"),
          DownloadBatch: invoke("download"),
          CheckDownloads: invoke("check"),
          DeleteExport: invoke("delete"),
          DeleteAfterFailure: invoke("delete"),
          IngestFhir: async (p: { Arguments: Json }) => {
            ingests.push(p.Arguments);
            return { Id: "jr_1", JobRunState: "SUCCEEDED" };
          },
          PublishSucceeded: async (p: { Entries: never[] }) => {
            events.push(...p.Entries);
            return {};
          },
          PublishFailed: async (p: { Entries: never[] }) => {
            events.push(...p.Entries);
            return {};
          },
          PublishInvalidInput: async (p: { Entries: never[] }) => {
            events.push(...p.Entries);
            return {};
          },
        } as never,
        waitTimeOverrides: { WaitForExport: waitMs },
        retryIntervalOverrides: Object.fromEntries(
          [
            "InitiateExport",
            "PollExport",
            "DownloadBatch",
            "CheckDownloads",
            "DeleteExport",
            "DeleteAfterFailure",
          ].map((s) => [s, 0]),
        ),
      },
    });
    const states: string[] = [];
    /** Each state's last output, and the largest state (input or output) in bytes. */
    const outputs: Record<string, Json> = {};
    let largestState = 0;
    const collect = (async () => {
      for await (const e of execution.eventLogs) {
        const ev = e as { type: string; state?: { name: string; input: Json; output?: Json } };
        if (!ev.state) continue;
        if (ev.type === "StateEntered") states.push(ev.state.name);
        if (ev.type === "StateExited" && ev.state.output) outputs[ev.state.name] = ev.state.output;
        for (const payload of [ev.state.input, ev.state.output]) {
          largestState = Math.max(largestState, Buffer.byteLength(JSON.stringify(payload ?? null)));
        }
      }
    })();
    let error: { name: string; cause: string } | undefined;
    try {
      await execution.result;
    } catch (e) {
      const failure = (e as Error & { cause?: Error }).cause ?? (e as Error);
      error = { name: failure.name, cause: failure.message };
    }
    await collect;
    return { error, states, ingests, events, outputs, largestState };
  }

  const input = (runId = `m-${Date.now()}`) => ({
    runId,
    org: "acme",
    source: "bulk",
    server: "ehr",
    since: null,
    inputPrefix: `bulk/${runId}/output/`,
  });
  const keys = async (prefix: string) =>
    ((await s3.send(new ListObjectsV2Command({ Bucket: LAKE, Prefix: prefix }))).Contents ?? [])
      .map((o) => o.Key as string)
      .sort();
  const head = ["ValidateInput", "Prepare", "RouteBySource", "PrepareBulk", "InitiateExport"];
  /** The states of a source that answers the third poll, then `batches` download batches. */
  const through = (batches: number) => [
    ...head,
    "PollExport",
    "ExportComplete",
    "WaitForExport",
    "PollExport",
    "ExportComplete",
    "WaitForExport",
    "PollExport",
    "ExportComplete",
    "StartDownloads",
    ...Array.from({ length: batches }, () => ["DownloadBatch", "MoreToDownload"]).flat(),
  ];
  /** The states after the last download batch of a run that succeeds. */
  const succeeded = [
    "CheckDownloads",
    "DeleteExport",
    "UseInputAsFhir",
    "IngestFhir",
    "PublishSucceeded",
    "Succeeded",
  ];
  /** A data directory of `<Type>.<nnn>.ndjson` files holding the given numbers of Patients or Conditions. */
  async function dataOf(files: [type: "Patient" | "Condition", lines: number][]) {
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), "hoth-bulk-files-"));
    for (const [i, [type, lines]] of files.entries()) {
      const body = Array.from(
        { length: lines },
        (_, l) => `${JSON.stringify({ resourceType: type, id: `${type}-${i}-${l}` })}\n`,
      );
      await fsp.writeFile(
        path.join(dir, `${type}.${String(i).padStart(4, "0")}.ndjson`),
        body.join(""),
      );
    }
    return dir;
  }
  const errorType = (cause: string) => JSON.parse(cause).errorType;

  it("is valid Amazon States Language (asl-validator), with and without bulk sources", () => {
    for (const def of [definition(), definition(60, false)]) {
      const { isValid, errorsText } = aslValidator(def);
      assert.ok(isValid, errorsText());
    }
  });

  it("success: kick-off, polls, every file streamed into the run's prefix and counted, job deleted, output ingested", async () => {
    const run = input();

    const { error, states, ingests, events } = await execute(run);

    assert.equal(error, undefined);
    assert.deepEqual(states, [...through(1), ...succeeded]);
    const prefix = `landing/acme/bulk/${run.runId}/output/`;
    assert.equal(ingests[0]["--input_path"], `s3://${LAKE}/${prefix}`);
    assert.deepEqual(await keys(`landing/acme/bulk/${run.runId}/`), [
      `${prefix}Observation.000.ndjson`,
      `${prefix}Patient.000.ndjson`,
      `landing/acme/bulk/${run.runId}/tasks.json`,
    ]);
    const lines = async (k: string) =>
      (
        (await (
          await s3.send(new GetObjectCommand({ Bucket: LAKE, Key: k }))
        ).Body?.transformToString()) ?? ""
      )
        .split("\n")
        .filter(Boolean).length;
    assert.equal(
      (await lines(`${prefix}Observation.000.ndjson`)) +
        (await lines(`${prefix}Patient.000.ndjson`)),
      300,
    );
    assert.deepEqual([source.stats.kickoffs, source.stats.deletes], [1, 1]);
    assert.deepEqual(
      events.map((e) => e.DetailType),
      ["MigrationSucceeded"],
    );
    // The task list beside the output, under the stack key like the files
    const list = await s3.send(
      new GetObjectCommand({ Bucket: LAKE, Key: `landing/acme/bulk/${run.runId}/tasks.json` }),
    );
    assert.deepEqual([list.ServerSideEncryption, list.SSEKMSKeyId], ["aws:kms", env.LAKE_KEY_ARN]);
    const { tasks } = JSON.parse((await list.Body?.transformToString()) ?? "{}");
    assert.deepEqual(
      tasks.map((t: { key: string }) => t.key),
      [`${prefix}Observation.000.ndjson`, `${prefix}Patient.000.ndjson`],
    );
  });

  it("paged manifest (Bulk Data 3.0 link next): every page's files are downloaded, none skipped", async () => {
    await source.stop();
    await startSource({ manifestPageSize: 1 });
    const run = input();

    const { error, states } = await execute(run);

    assert.equal(error, undefined);
    assert.equal(states.at(-1), "Succeeded");
    const prefix = `landing/acme/bulk/${run.runId}/output/`;
    assert.deepEqual(await keys(`landing/acme/bulk/${run.runId}/`), [
      `${prefix}Observation.000.ndjson`,
      `${prefix}Patient.p1.000.ndjson`,
      `landing/acme/bulk/${run.runId}/tasks.json`,
    ]);
    assert.equal(source.stats.downloads, 2);
  });

  it("downloads in batches: 10 files in 3 batches of 4, 4 and 2, with the exact summary in the run's report", async () => {
    const dir = await dataOf([
      ["Patient", 1],
      ["Patient", 2],
      ["Patient", 3],
      ["Patient", 4],
      ["Patient", 5],
      ["Patient", 6],
      ["Condition", 7],
      ["Condition", 8],
      ["Condition", 9],
      ["Condition", 10],
    ]);
    try {
      await source.stop();
      await startSource({ dataDir: dir });
      const run = input();

      const { error, states, outputs } = await execute(run);

      assert.equal(error, undefined);
      assert.deepEqual(states, [...through(3), ...succeeded]);
      assert.deepEqual(outputs.CheckDownloads.bulkReport, {
        files: 10,
        resources: 55,
        byType: { Condition: 34, Patient: 21 },
      });
      assert.deepEqual(outputs.CheckDownloads.download, {
        cursor: 10,
        done: true,
        summary: {
          files: 10,
          resources: 55,
          byType: { Condition: 34, Patient: 21 },
          errorFiles: 0,
          issueCodes: {},
        },
      });
      const poll = (outputs.ExportComplete.export as { poll: Json }).poll;
      assert.deepEqual(poll, {
        status: "complete",
        transactionTime: poll.transactionTime,
        files: 10,
      });
      assert.match(String(poll.transactionTime), /^\d{4}-\d{2}-\d{2}T/);
      assert.equal((await keys(`landing/acme/bulk/${run.runId}/output/`)).length, 10);
      assert.equal(source.stats.downloads, 10);
    } finally {
      await fsp.rm(dir, { recursive: true, force: true });
    }
  });

  it("retries a batch whose answer was lost: the same files are downloaded again, counted once", async () => {
    const dir = await dataOf(
      Array.from({ length: 10 }, () => ["Patient", 2] as ["Patient", number]),
    );
    try {
      await source.stop();
      await startSource({ dataDir: dir });
      let failures = 0;
      afterInvoke = (step, payload) => {
        if (step === "download" && payload.cursor === 4 && failures++ === 0) {
          throw Object.assign(new Error("Rate exceeded"), {
            name: "Lambda.TooManyRequestsException",
          });
        }
      };

      const { error, states, outputs } = await execute(input());

      assert.equal(error, undefined);
      // A retry stays in its state: entered once, left once.
      assert.deepEqual(states.slice(0, -6), through(3));
      assert.deepEqual(outputs.CheckDownloads.bulkReport, {
        files: 10,
        resources: 20,
        byType: { Patient: 20 },
      });
      assert.deepEqual([failures, source.stats.downloads], [2, 14]);
    } finally {
      await fsp.rm(dir, { recursive: true, force: true });
    }
  });

  it("retries a batch that found S3 or KMS throttled (TransientAwsError) and the run succeeds", async () => {
    // moto cannot throttle: the batch's first answer is replaced by what the
    // function throws when S3 or KMS stays throttled past the SDK's attempts.
    let failures = 0;
    afterInvoke = (step, payload) => {
      if (step === "download" && payload.cursor === 0 && failures++ === 0) {
        throw new TransientAwsError("Could not read tasks.json (SlowDown, HTTP 503)");
      }
    };

    const { error, states } = await execute(input());

    assert.equal(error, undefined);
    assert.deepEqual(states.slice(0, -6), through(1));
    assert.deepEqual([failures, invocations.download], [2, 2]);
  });

  it("fails at once, naming the key, when the batch finds no task list (NoSuchKey is not retried)", async () => {
    const run = input();
    const key = `landing/acme/bulk/${run.runId}/tasks.json`;
    afterInvoke = async (step) => {
      if (step === "poll") await s3.send(new DeleteObjectCommand({ Bucket: LAKE, Key: key }));
    };

    const { error, states } = await execute(run);

    assert.equal(error?.name, "TaskListError");
    assert.equal(
      JSON.parse(String(error?.cause)).errorMessage,
      `Could not read ${key} (NoSuchKey, HTTP 404): the poll writes it once the export is complete`,
    );
    assert.deepEqual(states.slice(-5), [
      "StartDownloads",
      "DownloadBatch",
      "DeleteAfterFailure",
      "PublishFailed",
      "Failed",
    ]);
    assert.deepEqual(
      [invocations.download, source.stats.downloads, source.stats.deletes],
      [1, 0, 1],
    );
  });

  it("fails the run when an error file comes in the second batch, naming it and its issue codes", async () => {
    const dir = await dataOf(
      Array.from({ length: 5 }, () => ["Patient", 1] as ["Patient", number]),
    );
    try {
      await source.stop();
      await startSource({ dataDir: dir });
      source.faults.errorFile = true;

      const { error, states, ingests } = await execute(input());

      assert.equal(error?.name, "ExportErrorFilesError");
      assert.equal(
        JSON.parse(String(error?.cause)).errorMessage,
        "The source reported 1 error file(s) with the export (issues: processing x1, too-costly x1)",
      );
      assert.deepEqual(states, [
        ...through(2),
        "CheckDownloads",
        "DeleteAfterFailure",
        "PublishFailed",
        "Failed",
      ]);
      assert.deepEqual(ingests, []);
      assert.deepEqual([source.stats.downloads, source.stats.deletes], [6, 1]);
    } finally {
      await fsp.rm(dir, { recursive: true, force: true });
    }
  });

  it("migrates an export of 450 files (more than the 400 the state once held) in 113 batches, the state staying under 2 KiB", async function () {
    this.timeout(240_000);
    const dir = await dataOf(
      Array.from({ length: 450 }, () => ["Patient", 1] as ["Patient", number]),
    );
    try {
      await source.stop();
      await startSource({ dataDir: dir });
      const run = input();

      const { error, states, outputs, largestState } = await execute(run);

      assert.equal(error, undefined);
      assert.deepEqual(states.slice(0, -6), through(113));
      assert.deepEqual(outputs.CheckDownloads.bulkReport, {
        files: 450,
        resources: 450,
        byType: { Patient: 450 },
      });
      assert.equal((await keys(`landing/acme/bulk/${run.runId}/output/`)).length, 450);
      assert.ok(largestState < 2048, `the largest state is ${largestState} bytes`);
    } finally {
      await fsp.rm(dir, { recursive: true, force: true });
    }
  });

  it("too many files for one run's history: refused at the poll with the reason, job deleted, nothing downloaded", async function () {
    this.timeout(120_000);
    // One file a batch: the limit is MAX_DOWNLOAD_BATCHES files.
    const max = MAX_DOWNLOAD_BATCHES;
    const dir = await dataOf(
      Array.from({ length: max + 1 }, () => ["Patient", 1] as ["Patient", number]),
    );
    try {
      await source.stop();
      await startSource({ dataDir: dir });

      const { error, states } = await execute(input(), definition(60, true, 1));

      assert.equal(error?.name, "SourceProtocolError");
      assert.equal(
        JSON.parse(String(error?.cause)).errorMessage,
        `The export lists ${max + 1} files; one run takes at most ${max}: narrow it with the source's types, since or a Group`,
      );
      assert.deepEqual(states.slice(-3), ["DeleteAfterFailure", "PublishFailed", "Failed"]);
      assert.deepEqual([source.stats.downloads, source.stats.deletes], [0, 1]);
    } finally {
      await fsp.rm(dir, { recursive: true, force: true });
    }
  });

  it("retry: a 429 kick-off, a 503 status and a 500 download are retried and the run succeeds", async () => {
    source.faults.kickoff429Once = true;
    source.faults.status503Once = true;
    source.faults.file500Once = true;

    const { error, states } = await execute(input());

    assert.equal(error, undefined);
    assert.deepEqual(
      [source.stats.kickoffs, source.stats.statusPolls, source.stats.downloads],
      [2, 4, 3],
    );
    assert.equal(states.at(-1), "Succeeded");
  });

  it("deadline: fails with ExportDeadlineError, deletes the job, publishes MigrationFailed", async () => {
    source.faults.extraPolls = 10_000;

    // Waits of 1 s, as asked: the second poll is past the 1 s deadline.
    const { error, states, events } = await execute(input(), definition(1), 1000);

    assert.equal(error?.name, "ExportDeadlineError");
    assert.match(
      JSON.parse(String(error?.cause)).errorMessage,
      /did not complete before its deadline/,
    );
    assert.deepEqual(states.slice(-3), ["DeleteAfterFailure", "PublishFailed", "Failed"]);
    assert.equal(source.stats.deletes, 1);
    assert.deepEqual(
      events.map((e) => [e.DetailType, e.Detail.error]),
      [["MigrationFailed", "ExportDeadlineError"]],
    );
  });

  it("a source that always answers 202 with Retry-After: 1 is polled MAX_POLLS times, then the run fails naming the limit and the job is deleted", async function () {
    this.timeout(120_000);
    source.faults.extraPolls = 10 * MAX_POLLS;
    const counts = new Set<number>();
    afterInvoke = (step, payload) => {
      if (step === "poll") counts.add((payload.job as Json).polls as number);
    };

    // The waits are skipped here, so the clock never reaches the 6-hour
    // deadline: only the count in the job stops the polls.
    const { error, states, events, outputs } = await execute(input(), definition(21_600));

    assert.equal(error?.name, "PollLimitError");
    assert.equal(
      JSON.parse(String(error?.cause)).errorMessage,
      `The export did not complete in ${MAX_POLLS} polls, the most one run's execution history holds (deadline ${((outputs.PollExport.export as Json).job as Json).deadline})`,
    );
    assert.equal(states.filter((s) => s === "PollExport").length, MAX_POLLS);
    assert.deepEqual(states.slice(-4), [
      "PollExport",
      "DeleteAfterFailure",
      "PublishFailed",
      "Failed",
    ]);
    assert.deepEqual([source.stats.statusPolls, source.stats.deletes], [MAX_POLLS, 1]);
    // Each poll got the count of the ones before it.
    assert.equal(counts.size, MAX_POLLS - 1);
    // Retry-After: 1 is raised to the run's least wait (6 h over MAX_POLLS - 1 polls).
    assert.equal(
      ((outputs.ExportComplete.export as Json).poll as Json).waitSeconds,
      minPollWaitSeconds(21_600),
    );
    assert.deepEqual(
      events.map((e) => [e.DetailType, e.Detail.error]),
      [["MigrationFailed", "PollLimitError"]],
    );
  });

  it("error file: fails with ExportErrorFilesError naming the issue codes, deletes the job, ingests nothing", async () => {
    source.faults.errorFile = true;

    const { error, states, ingests } = await execute(input());

    assert.equal(error?.name, "ExportErrorFilesError");
    assert.match(
      JSON.parse(String(error?.cause)).errorMessage,
      /1 error file\(s\).*processing x1, too-costly x1/,
    );
    assert.deepEqual(states.slice(-5), [
      "MoreToDownload",
      "CheckDownloads",
      "DeleteAfterFailure",
      "PublishFailed",
      "Failed",
    ]);
    assert.deepEqual(ingests, []);
    assert.equal(source.stats.deletes, 1);
  });

  it("source 4xx: a refused kick-off fails at once (no retry, no job to delete)", async () => {
    source.faults.kickoffStatus = 403;

    const { error, states } = await execute(input());

    assert.equal(error?.name, "SourceHttpError");
    assert.match(
      JSON.parse(String(error?.cause)).errorMessage,
      /Export kick-off: the source answered 403/,
    );
    assert.deepEqual(states, [...head, "PublishFailed", "Failed"]);
    assert.deepEqual([source.stats.kickoffs, source.stats.deletes], [1, 0]);
  });

  it("line-count mismatch: the file is not kept, the run fails naming the error, the job is deleted", async () => {
    source.faults.wrongCount = true;
    const run = input();

    const { error, states } = await execute(run);

    assert.equal(error?.name, "LineCountMismatchError");
    assert.equal(errorType(String(error?.cause)), "LineCountMismatchError");
    assert.deepEqual(states.slice(-3), ["DeleteAfterFailure", "PublishFailed", "Failed"]);
    assert.ok(
      !(await keys(`landing/acme/bulk/${run.runId}/`)).some((k) => k.includes("Observation")),
    );
  });

  it("invalid input: a bulk run without server or since, or on a stack without bulk sources, is InvalidInput", async () => {
    const { server: _s, ...noServer } = input();
    const { since: _t, ...noSince } = input();
    for (const [run, def] of [
      [noServer, definition()],
      [noSince, definition()],
      [{ ...input(), since: 5 }, definition()],
      [input(), definition(60, false)],
    ] as const) {
      const { error, states } = await execute(run, def);
      assert.equal(error?.name, "InvalidInput");
      assert.deepEqual(states, ["ValidateInput", "PublishInvalidInput", "InvalidInput"]);
    }
    assert.equal(source.stats.kickoffs, 0);
  });

  it("the functions take the source only from their own settings, and write only under the run's prefix", async () => {
    await assert.rejects(
      handlers.initiate({ server: "elsewhere", since: null, deadlineSeconds: 60 }),
      { name: "InvalidBulkInput" },
    );
    const task = {
      type: "Patient",
      kind: "output",
      url: `${source.baseUrl}/x`,
      requiresAccessToken: true,
      key: "landing/globex/bulk/m-1/output/Patient.000.ndjson",
    };
    await s3.send(
      new PutObjectCommand({
        Bucket: LAKE,
        Key: "landing/acme/bulk/m-1/tasks.json",
        Body: JSON.stringify({ transactionTime: "2026-01-01T00:00:00Z", tasks: [task] }),
      }),
    );
    const batch = { server: "ehr", prefix: "landing/acme/bulk/m-1", cursor: 0, batchFiles: 4 };
    await assert.rejects(handlers.download(batch), {
      name: "InvalidBulkInput",
      message: "The file's key is outside the run's landing prefix",
    });
    for (const [bad, message] of [
      [{ cursor: 2 }, "cursor must be a position in the run's task list"],
      [{ cursor: -1 }, "cursor must be a position in the run's task list"],
      [{ batchFiles: 0 }, "batchFiles must be a whole number from 1 to 40"],
      [{ batchFiles: 41 }, "batchFiles must be a whole number from 1 to 40"],
      [{ summary: { files: "many" } }, "summary must be a download summary"],
    ] as const) {
      await assert.rejects(handlers.download({ ...batch, ...bad }), {
        name: "InvalidBulkInput",
        message,
      });
    }
    await assert.rejects(
      handlers.poll({ job: {}, prefix: "landing/acme/../globex/bulk/m-1", batchFiles: 4 }),
      {
        name: "InvalidBulkInput",
      },
    );
    assert.equal(source.stats.downloads, 0);
  });
});
