import { KMSClient, SignCommand } from "@aws-sdk/client-kms";
import { S3Client } from "@aws-sdk/client-s3";
import type { Context } from "aws-lambda";
import { maxExportFiles } from "../contracts/budgets";
import { clientOptions } from "./lib/aws";
import {
  checkSummary,
  type DownloadResult,
  type DownloadSummary,
  deleteExport,
  downloadFile,
  type ExportJob,
  emptySummary,
  fetchManifestPage,
  foldDownloads,
  initiateExport,
  planDownloads,
  pollExport,
  SourceProtocolError,
  type SourceServer,
  type StepContext,
} from "./lib/bulkExport";
import { readTaskList, type TaskList, type TaskListStore, writeTaskList } from "./lib/bulkTaskList";
import { requireEnv } from "./lib/env";
import { createLogger } from "./lib/logger";
import { s3Sink } from "./lib/objectSink";
import { type KmsApi, kmsSigner, SmartTokenClient } from "./lib/smartBackend";

/**
 * The bulk-source tasks of the migration state machine, one bundle deployed
 * as five functions (BULK_STEP picks the step, so each function's role holds
 * only what its step needs): initiate, poll, download, check, delete.
 * A source is named in the state's input but resolved only from this
 * function's own BULK_SOURCES setting; URLs, keys and prefixes coming back
 * through the state machine are checked before use.
 */

export type BulkStep = "initiate" | "poll" | "download" | "check" | "delete";
const STEPS: BulkStep[] = ["initiate", "poll", "download", "check", "delete"];

/** Manifest pages followed in one poll. */
export const MAX_MANIFEST_PAGES = 100;

/** Output types one export may list (FHIR R5 has 157 resource types): the run's summary holds one count each. */
export const MAX_EXPORT_TYPES = 200;

/** `hoth:bulk.downloadConcurrency`'s range (contracts/config.ts). */
const MAX_BATCH_FILES = 40;

/** A run's landing prefix: only the bulk area of one organisation's landing zone. */
export const BULK_PREFIX = /^landing\/[a-z0-9-]{1,64}\/bulk\/[A-Za-z0-9_-]{1,80}$/;

/** A bad state input: a programming or wiring error, never retried. */
export class InvalidBulkInput extends Error {
  constructor(message: string) {
    super(message);
    this.name = "InvalidBulkInput";
  }
}

const logger = createLogger("hoth-bulk");
const step = requireEnv("BULK_STEP") as BulkStep;
if (!STEPS.includes(step)) throw new Error(`BULK_STEP must be one of ${STEPS.join(", ")}`);

function parseSources(raw: string): SourceServer[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new Error("Environment variable BULK_SOURCES must be a JSON list of sources");
  }
  if (!Array.isArray(parsed)) throw new Error("BULK_SOURCES must be a JSON list of sources");
  return parsed as SourceServer[];
}

// Settings, clients, the signer and the token clients at module scope: one per container.
const sources = step === "check" ? [] : parseSources(requireEnv("BULK_SOURCES"));
const kms = new KMSClient(clientOptions());
const kmsApi: Pick<KmsApi, "sign"> = {
  sign: (input) => kms.send(new SignCommand(input)) as ReturnType<KmsApi["sign"]>,
};
const signer =
  step === "check"
    ? undefined
    : kmsSigner(kmsApi, requireEnv("SIGNING_KEY_ARN"), {
        PublicKey: new Uint8Array(Buffer.from(requireEnv("SIGNING_PUBLIC_KEY"), "base64")),
        KeySpec: requireEnv("SIGNING_KEY_SPEC"),
        KeyUsage: "SIGN_VERIFY",
      });
// The poll writes the run's task list, the download reads it and writes the files.
const store: TaskListStore | undefined =
  step === "poll" || step === "download"
    ? {
        s3: new S3Client({
          ...clientOptions(),
          forcePathStyle: process.env.AWS_ENDPOINT_URL !== undefined,
        }),
        bucket: requireEnv("LAKE_BUCKET"),
        kmsKeyArn: requireEnv("LAKE_KEY_ARN"),
      }
    : undefined;
const sink =
  step === "download" && store
    ? s3Sink(store.s3, { bucket: store.bucket, kmsKeyArn: store.kmsKeyArn })
    : undefined;
/** The last run's task list: the batches of one run read it once per container. */
let taskList: { prefix: string; list: TaskList } | undefined;
const contexts = new Map<string, StepContext>();

function context(name: unknown): StepContext {
  const server = sources.find((s) => s.name === name);
  if (!server) throw new InvalidBulkInput("The source is not one of this stack's bulk sources");
  let ctx = contexts.get(server.name);
  if (!ctx) {
    ctx = {
      server,
      tokens: new SmartTokenClient({ ...server, signer: signer as NonNullable<typeof signer> }),
    };
    contexts.set(server.name, ctx);
  }
  return ctx;
}

function batchFilesOf(value: unknown): number {
  if (!Number.isInteger(value) || (value as number) < 1 || (value as number) > MAX_BATCH_FILES) {
    throw new InvalidBulkInput(`batchFiles must be a whole number from 1 to ${MAX_BATCH_FILES}`);
  }
  return value as number;
}

function summaryOf(value: unknown): DownloadSummary {
  if (value === undefined || value === null) return emptySummary();
  const s = value as DownloadSummary;
  if (
    !Number.isInteger(s.files) ||
    !Number.isInteger(s.resources) ||
    !Number.isInteger(s.errorFiles) ||
    typeof s.byType !== "object" ||
    typeof s.issueCodes !== "object"
  ) {
    throw new InvalidBulkInput("summary must be a download summary");
  }
  return s;
}

async function tasksOf(prefix: string): Promise<TaskList> {
  if (taskList?.prefix !== prefix) {
    taskList = { prefix, list: await readTaskList(store as TaskListStore, prefix) };
  }
  return taskList.list;
}

function prefixOf(value: unknown): string {
  if (typeof value !== "string" || !BULK_PREFIX.test(value)) {
    throw new InvalidBulkInput("prefix must be landing/<org>/bulk/<run>");
  }
  return value;
}

export interface InitiateEvent {
  server: string;
  since?: string | null;
  deadlineSeconds: number;
}
export interface PollEvent {
  job: ExportJob;
  prefix: string;
  /** Files per download batch; bounds the files one run takes (maxExportFiles). */
  batchFiles: number;
}
/**
 * What the poll answers: the job with this poll counted (the next poll's
 * input) and, apart, what the state machine branches on.
 */
export interface PollAnswer {
  job: ExportJob;
  poll:
    | { status: "in-progress"; waitSeconds: number; progress?: string }
    | { status: "complete"; transactionTime: string; files: number };
}
/** One batch: the tasks `cursor` .. `cursor + batchFiles - 1` of `<prefix>/tasks.json`. */
export interface DownloadEvent {
  server: string;
  prefix: string;
  cursor: number;
  batchFiles: number;
  /** What the batches before this one added up to. @default emptySummary() */
  summary?: DownloadSummary;
}
export interface DownloadBatchResult {
  cursor: number;
  done: boolean;
  summary: DownloadSummary;
}
export interface CheckEvent {
  summary: DownloadSummary;
}
export interface DeleteEvent {
  job?: ExportJob | null;
}

async function run(event: unknown): Promise<unknown> {
  const e = (event ?? {}) as Record<string, unknown>;
  switch (step) {
    case "initiate": {
      const i = e as unknown as InitiateEvent;
      const job = await initiateExport(
        { deadlineSeconds: i.deadlineSeconds, ...(i.since ? { since: i.since } : {}) },
        context(i.server),
      );
      logger.info("export started", { source: job.server });
      return job;
    }
    case "poll": {
      const i = e as unknown as PollEvent;
      const prefix = prefixOf(i.prefix);
      const batchFiles = batchFilesOf(i.batchFiles);
      const ctx = context(i.job?.server);
      const r = await pollExport(i.job, ctx);
      if (r.status !== "complete") {
        const { job, ...poll } = r;
        return { job, poll } satisfies PollAnswer;
      }
      // Every page of a paged manifest (Bulk Data 3.0 `link` next): a page
      // left unread would be data silently lost.
      const tasks = planDownloads(r.manifest, prefix);
      let next = r.manifest.next;
      for (let page = 1; next; page++) {
        if (page > MAX_MANIFEST_PAGES) {
          throw new SourceProtocolError(
            `Export status: the manifest has more than ${MAX_MANIFEST_PAGES} pages`,
          );
        }
        const more = await fetchManifestPage(next, ctx);
        tasks.push(...planDownloads(more, prefix, page));
        next = more.next;
      }
      const max = maxExportFiles(batchFiles);
      if (tasks.length > max) {
        throw new SourceProtocolError(
          `The export lists ${tasks.length} files; one run takes at most ${max}: narrow it with the source's types, since or a Group`,
        );
      }
      const types = new Set(tasks.map((t) => t.type)).size;
      if (types > MAX_EXPORT_TYPES) {
        throw new SourceProtocolError(
          `The export lists ${types} resource types; FHIR has fewer than ${MAX_EXPORT_TYPES}`,
        );
      }
      const transactionTime = r.manifest.transactionTime;
      await writeTaskList(store as TaskListStore, prefix, { transactionTime, tasks });
      logger.info("export complete", { source: r.job.server, files: tasks.length });
      return {
        job: r.job,
        poll: { status: r.status, transactionTime, files: tasks.length },
      } satisfies PollAnswer;
    }
    case "download": {
      const i = e as unknown as DownloadEvent;
      const prefix = prefixOf(i.prefix);
      const batchFiles = batchFilesOf(i.batchFiles);
      const summary = summaryOf(i.summary);
      const { tasks } = await tasksOf(prefix);
      if (!Number.isInteger(i.cursor) || i.cursor < 0 || i.cursor > tasks.length) {
        throw new InvalidBulkInput("cursor must be a position in the run's task list");
      }
      const batch = tasks.slice(i.cursor, i.cursor + batchFiles);
      for (const task of batch) {
        if (typeof task?.key !== "string" || !task.key.startsWith(`${prefix}/`)) {
          throw new InvalidBulkInput("The file's key is outside the run's landing prefix");
        }
      }
      const ctx = context(i.server);
      // Every file of the batch at once, each streamed (one part in memory).
      // All settle before the step answers: a failed batch leaves no upload
      // running, and its retry downloads the same keys again (an overwrite).
      const settled = await Promise.allSettled(
        batch.map((task) => downloadFile(task, ctx, { sink: sink as NonNullable<typeof sink> })),
      );
      const failed = settled.find((r) => r.status === "rejected");
      if (failed) throw (failed as PromiseRejectedResult).reason;
      const results = settled.map((r) => (r as PromiseFulfilledResult<DownloadResult>).value);
      const cursor = i.cursor + batch.length;
      logger.info("batch downloaded", {
        files: results.length,
        bytes: results.reduce((a, r) => a + r.bytes, 0),
        cursor,
        of: tasks.length,
      });
      return {
        cursor,
        done: cursor >= tasks.length,
        summary: foldDownloads(summary, results),
      } satisfies DownloadBatchResult;
    }
    case "check": {
      const summary = summaryOf((e as unknown as CheckEvent).summary);
      checkSummary(summary);
      return { files: summary.files, resources: summary.resources, byType: summary.byType };
    }
    case "delete": {
      const job = (e as unknown as DeleteEvent).job;
      if (!job) return { result: "no-job" };
      return deleteExport(job, context(job.server));
    }
  }
}

export const handler = async (event: unknown, context?: Context): Promise<unknown> => {
  if (context) logger.addContext(context);
  try {
    return await run(event);
  } catch (error) {
    // The class only: messages are the run report's cause and name no patient.
    logger.warn("bulk step failed", { step, errorClass: (error as Error).name });
    throw error;
  }
};
