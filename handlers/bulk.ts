import { KMSClient, SignCommand } from "@aws-sdk/client-kms";
import { S3Client } from "@aws-sdk/client-s3";
import type { Context } from "aws-lambda";
import { clientOptions } from "./lib/aws";
import {
  checkDownloads,
  type DownloadResult,
  type DownloadTask,
  deleteExport,
  downloadFile,
  type ExportJob,
  fetchManifestPage,
  initiateExport,
  planDownloads,
  pollExport,
  SourceProtocolError,
  type SourceServer,
  type StepContext,
} from "./lib/bulkExport";
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

/** Manifest pages followed in one poll (the task list must fit the state's 256 KiB anyway). */
export const MAX_MANIFEST_PAGES = 100;

/**
 * Files one run downloads: each file's task and result travel in the
 * execution's state (about 600 bytes together), which Step Functions caps
 * at 256 KiB. A larger export is refused up front with this reason rather
 * than failing later with States.DataLimitExceeded.
 */
export const MAX_EXPORT_FILES = 400;

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
const sink =
  step === "download"
    ? s3Sink(
        new S3Client({
          ...clientOptions(),
          forcePathStyle: process.env.AWS_ENDPOINT_URL !== undefined,
        }),
        { bucket: requireEnv("LAKE_BUCKET"), kmsKeyArn: requireEnv("LAKE_KEY_ARN") },
      )
    : undefined;
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
}
export interface DownloadEvent {
  server: string;
  prefix: string;
  task: DownloadTask;
}
export interface CheckEvent {
  downloads: DownloadResult[];
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
      const ctx = context(i.job?.server);
      const r = await pollExport(i.job, ctx);
      if (r.status !== "complete") return r;
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
      if (tasks.length > MAX_EXPORT_FILES) {
        throw new SourceProtocolError(
          `The export lists ${tasks.length} files; one run takes at most ${MAX_EXPORT_FILES}: narrow it with the source's types, since or a Group`,
        );
      }
      logger.info("export complete", { source: r.job.server, files: tasks.length });
      return { status: r.status, transactionTime: r.manifest.transactionTime, tasks };
    }
    case "download": {
      const i = e as unknown as DownloadEvent;
      const prefix = prefixOf(i.prefix);
      if (typeof i.task?.key !== "string" || !i.task.key.startsWith(`${prefix}/`)) {
        throw new InvalidBulkInput("The file's key is outside the run's landing prefix");
      }
      const result = await downloadFile(i.task, context(i.server), {
        sink: sink as NonNullable<typeof sink>,
      });
      logger.info("file downloaded", {
        kind: result.kind,
        bytes: result.bytes,
        lines: result.lines,
      });
      return result;
    }
    case "check": {
      const downloads = (e as unknown as CheckEvent).downloads;
      if (!Array.isArray(downloads)) throw new InvalidBulkInput("downloads must be a list");
      checkDownloads(downloads);
      const byType: Record<string, number> = {};
      for (const d of downloads) {
        if (d.kind === "output") byType[d.type] = (byType[d.type] ?? 0) + d.lines;
      }
      return {
        files: downloads.filter((d) => d.kind === "output").length,
        resources: Object.values(byType).reduce((a, b) => a + b, 0),
        byType,
      };
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
