import * as assert from "node:assert/strict";
import { promises as fsp } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

import aslValidator = require("asl-validator");

import { StateMachine } from "aws-local-stepfunctions";
import {
  checkDownloads,
  type DownloadResult,
  type DownloadTask,
  deleteExport,
  downloadFile,
  type ExportJob,
  initiateExport,
  planDownloads,
  pollExport,
  type SourceServer,
  type StepContext,
} from "../handlers/lib/bulkExport";
import { fileSink } from "../handlers/lib/objectSink";
import {
  createKmsSigner,
  type JwsSigner,
  jwks,
  publicJwk,
  SmartTokenClient,
} from "../handlers/lib/smartBackend";
import { type BulkSource, generateNdjson, startBulkSource } from "../local/bulkSource";
import { LocalKms } from "../local/kms";
import { bulkExportDefinition } from "./support/bulkExportDefinition";

/**
 * The step functions as the Lambdas of the proposed bulk states, run by
 * aws-local-stepfunctions against the local source: each path of the
 * definition (success, Step Functions retry, deadline, error file, source
 * 4xx, line-count mismatch) with the real HTTP, signing and files.
 */
describe("bulk export states (aws-local-stepfunctions, local source)", () => {
  let signer: JwsSigner;
  let keys: ReturnType<typeof jwks>;
  let data: string;
  let source: BulkSource;
  let out: string;

  before(async () => {
    const kms = new LocalKms("ECC_NIST_P384");
    signer = await createKmsSigner(kms, kms.keyId);
    const key = await kms.getPublicKey({ KeyId: kms.keyId });
    keys = jwks([publicJwk(key.PublicKey, signer.alg)]);
    data = await generateNdjson({ resources: 300, perPatient: 10 });
  });
  after(() => fsp.rm(data, { recursive: true, force: true }));

  beforeEach(async () => {
    out = await fsp.mkdtemp(path.join(os.tmpdir(), "hoth-bulk-sfn-"));
    source = await startBulkSource({
      dataDir: data,
      clients: [{ clientId: "hoth", jwks: keys, scopes: ["system/*.read"] }],
      progressPolls: 2,
    });
  });
  afterEach(async () => {
    await source.stop();
    await fsp.rm(out, { recursive: true, force: true });
  });

  /** What each Lambda does: resolve the named server from its own settings, call one step. */
  function lambdas() {
    const servers: Record<string, SourceServer> = {
      ehr: {
        name: "ehr",
        fhirBaseUrl: source.baseUrl,
        tokenUrl: source.tokenUrl,
        clientId: "hoth",
        scopes: ["system/*.read"],
      },
    };
    // One in-process attempt: transient failures surface to the state machine's Retry.
    const http = { retry: { attempts: 1 } };
    const contexts = new Map<string, StepContext>();
    const ctx = (name: string): StepContext => {
      const server = servers[name];
      if (!server) throw new Error(`unknown source ${name}`);
      if (!contexts.has(name)) {
        contexts.set(name, {
          server,
          tokens: new SmartTokenClient({ ...server, signer }, http),
          http,
        });
      }
      return contexts.get(name) as StepContext;
    };
    return {
      InitiateExport: (i: { server: string; since: string | null; deadlineSeconds: number }) =>
        initiateExport(
          { deadlineSeconds: i.deadlineSeconds, ...(i.since ? { since: i.since } : {}) },
          ctx(i.server),
        ),
      PollExport: async (i: { job: ExportJob; prefix: string }) => {
        const r = await pollExport(i.job, ctx(i.job.server));
        return r.status === "complete"
          ? {
              status: r.status,
              transactionTime: r.manifest.transactionTime,
              tasks: planDownloads(r.manifest, i.prefix),
            }
          : r;
      },
      DownloadFile: (i: { server: string; task: DownloadTask }) =>
        downloadFile(i.task, ctx(i.server), { sink: fileSink(out) }),
      CheckDownloads: async (i: { downloads: DownloadResult[] }) => {
        checkDownloads(i.downloads);
        return {
          files: i.downloads.length,
          resources: i.downloads.reduce((n, d) => n + d.lines, 0),
        };
      },
      DeleteExport: (i: { job: ExportJob }) => deleteExport(i.job, ctx(i.job.server)),
      DeleteAfterFailure: (i: { job?: ExportJob }) =>
        i.job ? deleteExport(i.job, ctx(i.job.server)) : Promise.resolve({ result: "no-job" }),
    };
  }

  async function execute(input: Record<string, unknown>, waitMs = 0) {
    const machine = new StateMachine(bulkExportDefinition as never);
    const execution = machine.run(input as never, {
      overrides: {
        taskResourceLocalHandlers: lambdas() as never,
        waitTimeOverrides: { WaitForExport: waitMs },
        retryIntervalOverrides: {
          InitiateExport: 0,
          PollExport: 0,
          DownloadFile: 0,
          DeleteExport: 0,
          DeleteAfterFailure: 0,
        },
      },
    });
    const states: string[] = [];
    const collect = (async () => {
      for await (const e of execution.eventLogs) {
        const ev = e as { type: string; state?: { name: string } };
        if (ev.type === "StateEntered" && ev.state) states.push(ev.state.name);
      }
    })();
    let result: Record<string, unknown> | undefined;
    // The Fail state's error and cause, as DescribeExecution would give them.
    let error: { name: string; cause: string } | undefined;
    try {
      result = (await execution.result) as Record<string, unknown>;
    } catch (e) {
      const failure = (e as Error & { cause?: Error }).cause ?? (e as Error);
      error = { name: failure.name, cause: failure.message };
    }
    await collect;
    return { result, error, states };
  }

  const input = (extra: Record<string, unknown> = {}) => ({
    server: "ehr",
    since: null,
    deadlineSeconds: 60,
    landingPrefix: "landing/acme/bulk/m-1",
    ...extra,
  });

  it("is valid Amazon States Language (asl-validator)", () => {
    const { isValid, errorsText } = aslValidator(bulkExportDefinition);
    assert.ok(isValid, errorsText());
  });

  it("success: kick-off, two in-progress polls, every file down and counted, job deleted", async () => {
    const { result, error, states } = await execute(input());

    assert.equal(error, undefined);
    assert.deepEqual(
      states.filter((s) => s !== "DownloadFile"),
      [
        "InitiateExport",
        "PollExport",
        "ExportComplete",
        "WaitForExport",
        "PollExport",
        "ExportComplete",
        "WaitForExport",
        "PollExport",
        "ExportComplete",
        "DownloadFiles",
        "CheckDownloads",
        "DeleteExport",
        "Succeeded",
      ],
    );
    assert.deepEqual(result?.report, { files: 2, resources: 300 });
    assert.deepEqual((result?.deleted as { result: string }).result, "deleted");
    const files = (await fsp.readdir(path.join(out, "landing/acme/bulk/m-1/output"))).sort();
    assert.deepEqual(files, ["Observation.000.ndjson", "Patient.000.ndjson"]);
  });

  it("retry: the state machine retries a 429 kick-off, a 503 status and a 500 download", async () => {
    source.faults.kickoff429Once = true;
    source.faults.status503Once = true;
    source.faults.file500Once = true;

    const { error, states } = await execute(input());

    assert.equal(error, undefined);
    assert.equal(states.filter((s) => s === "InitiateExport").length, 1);
    assert.equal(source.stats.kickoffs, 2);
    assert.equal(source.stats.statusPolls, 4);
    assert.equal(source.stats.downloads, 3);
    assert.equal(states.at(-1), "Succeeded");
  });

  it("deadline: fails with ExportDeadlineError and deletes the job", async () => {
    source.faults.extraPolls = 10_000;

    const { error, states } = await execute(input({ deadlineSeconds: 1 }), 200);

    assert.equal(error?.name, "ExportDeadlineError");
    assert.match(String(error?.cause), /did not complete before its deadline/);
    assert.deepEqual(states.slice(-2), ["DeleteAfterFailure", "ExportFailed"]);
    assert.equal(source.stats.deletes, 1);
  });

  it("error file: downloads it, fails with ExportErrorFilesError naming the issue codes, deletes the job", async () => {
    source.faults.errorFile = true;

    const { error, states } = await execute(input());

    assert.equal(error?.name, "ExportErrorFilesError");
    assert.match(String(error?.cause), /1 error file\(s\).*processing x1, too-costly x1/);
    assert.deepEqual(states.slice(-3), ["CheckDownloads", "DeleteAfterFailure", "ExportFailed"]);
    assert.equal(source.stats.deletes, 1);
  });

  it("source 4xx: a refused kick-off fails at once (no retry, no job to delete)", async () => {
    source.faults.kickoffStatus = 403;

    const { error, states } = await execute(input());

    assert.equal(error?.name, "SourceHttpError");
    assert.match(String(error?.cause), /Export kick-off: the source answered 403/);
    assert.deepEqual(states, ["InitiateExport", "ExportFailed"]);
    assert.equal(source.stats.kickoffs, 1);
  });

  it("line-count mismatch: the file is not kept, the run fails naming it, the job is deleted", async () => {
    source.faults.wrongCount = true;

    const { error, states } = await execute(input());

    assert.equal(error?.name, "LineCountMismatchError");
    assert.deepEqual(states.slice(-2), ["DeleteAfterFailure", "ExportFailed"]);
    const left = await fsp.readdir(out, { recursive: true });
    assert.ok(!left.some((f) => String(f).includes("Observation")), String(left));
  });
});
