import { createHash } from "node:crypto";
import { GetObjectCommand, ListObjectsV2Command, type S3Client } from "@aws-sdk/client-s3";
import {
  DescribeExecutionCommand,
  type DescribeExecutionCommandOutput,
  ExecutionAlreadyExists,
  ExecutionDoesNotExist,
  type SFNClient,
  StartExecutionCommand,
} from "@aws-sdk/client-sfn";
import * as z from "zod/mini";
import {
  BadRequestError,
  ConflictError,
  HttpError,
  NotFoundError,
  ServiceUnavailableError,
  UnsupportedMediaTypeError,
} from "../lib/errors";
import { jsonResponse, type RouteImpl } from "../lib/http";
import { header, jsonBody, mediaType, requireAccess, tenant } from "../lib/request";

export interface MigrationSettings {
  stateMachineArn: string;
  lakeBucket: string;
  /** The stack's configured Bulk Data sources, by name. @default [] */
  bulkSources?: string[];
}

const inputPrefix = z
  .string({ error: "inputPrefix must be a string" })
  .check(
    z.minLength(1, "inputPrefix must not be empty"),
    z.maxLength(512, "inputPrefix must be at most 512 characters"),
    z.regex(
      /^(?!\/)(?!.*(^|\/)\.\.(\/|$))[A-Za-z0-9!_.*'()/-]+$/,
      "inputPrefix must be a relative key prefix under your landing area (no leading '/', no '..')",
    ),
  );

// Never the unknown keys themselves: a diagnostic repeats no value from the request.
const unknownKeys = (issue: { code: string }) =>
  issue.code === "unrecognized_keys"
    ? "The body may hold only source and inputPrefix (or source 'registry' alone)"
    : "The body must be an object with source and inputPrefix (or source 'registry' alone)";

/** A FHIR instant (https://hl7.org/fhir/R4/datatypes.html#instant), at least to the second. */
const INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;

/**
 * POST /migrations body. The organisation is the caller's, never the body's.
 * `legacy` and `fhir` read a prefix of the caller's landing area; `registry`
 * migrates the caller's committed registry members (a snapshot the state
 * machine takes first), so it names no prefix.
 */
const StartMigration = z.discriminatedUnion(
  "source",
  [
    z.strictObject(
      {
        source: z.enum(["legacy", "fhir"], {
          error: "source must be 'legacy', 'fhir', 'registry' or 'bulk'",
        }),
        inputPrefix,
      },
      { error: unknownKeys },
    ),
    z.strictObject({ source: z.literal("registry") }, { error: unknownKeys }),
    z.strictObject(
      {
        source: z.literal("bulk"),
        server: z
          .string({ error: "server must be the name of one of the stack's bulk sources" })
          .check(
            z.regex(
              /^[a-z][a-z0-9-]{1,30}$/,
              "server must be the name of one of the stack's bulk sources",
            ),
          ),
        since: z.optional(
          z.string({ error: "since must be a FHIR instant, e.g. 2026-01-01T00:00:00Z" }).check(
            z.regex(INSTANT, "since must be a FHIR instant, e.g. 2026-01-01T00:00:00Z"),
            z.refine(
              (v) => !Number.isNaN(Date.parse(v)),
              "since must be a FHIR instant, e.g. 2026-01-01T00:00:00Z",
            ),
          ),
        ),
      },
      {
        error: (issue) =>
          issue.code === "unrecognized_keys"
            ? "A bulk migration body may hold only source, server and since"
            : "A bulk migration body needs server (and may give since)",
      },
    ),
  ],
  {
    // Never the unknown keys themselves: a diagnostic repeats no value from the request.
    error: (issue) =>
      issue.code === "invalid_union"
        ? "source must be 'legacy', 'fhir', 'registry' or 'bulk'"
        : "The body must be an object with source and inputPrefix (or source 'registry' alone)",
  },
);

const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;
const MIGRATION_ID = /^m-[0-9a-f]{40}$/;

/**
 * The migration id, and so the execution name, is derived from the tenant and
 * the Idempotency-Key: a retried POST names the same execution, and ids leak
 * neither the key nor the organisation.
 */
export function migrationId(org: string, idempotencyKey: string): string {
  return `m-${createHash("sha256").update(`${org}\n${idempotencyKey}`).digest("hex").slice(0, 40)}`;
}

const executionArn = (stateMachineArn: string, id: string) =>
  `${stateMachineArn.replace(":stateMachine:", ":execution:")}:${id}`;

function awsFailure(error: unknown): never {
  throw new ServiceUnavailableError("The migration service is unavailable; retry later", {
    cause: error,
  });
}

/** Another tenant's run, a malformed id and an unknown one answer alike, naming no id. */
const noSuchMigration = () => new NotFoundError("The migration does not exist");

/** `uploads/<upload id>/`: a migration of one POST /uploads file. */
const UPLOAD_PREFIX = /^uploads\/(u-[0-9a-f]{32})\/$/;

/**
 * A migration of an upload must find it in the caller's own landing area: an
 * upload id that is another organisation's, unknown, or whose file has not
 * arrived is refused here (422) instead of starting a run that would fail.
 */
async function requireUpload(s3: S3Client, settings: MigrationSettings, org: string, id: string) {
  let found: number;
  try {
    const out = await s3.send(
      new ListObjectsV2Command({
        Bucket: settings.lakeBucket,
        Prefix: `landing/${org}/uploads/${id}/`,
        MaxKeys: 1,
      }),
    );
    found = out.KeyCount ?? out.Contents?.length ?? 0;
  } catch (error) {
    awsFailure(error);
  }
  if (found === 0) {
    throw new HttpError(
      422,
      "not-found",
      "No uploaded file under this inputPrefix in your landing area: upload it with the form POST /uploads returned first",
    );
  }
}

export const startMigration =
  (settings: MigrationSettings, sfn: SFNClient, s3?: S3Client): RouteImpl =>
  async ({ event }) => {
    const org = tenant(event);
    requireAccess(event, "Task", "create");
    if (mediaType(event) !== "application/json") {
      throw new UnsupportedMediaTypeError("POST /migrations takes Content-Type: application/json");
    }
    const key = header(event, "Idempotency-Key");
    if (!key || !IDEMPOTENCY_KEY.test(key)) {
      throw new BadRequestError(
        "An Idempotency-Key header (1-255 printable characters) is required",
        "required",
      );
    }
    const parsed = StartMigration.safeParse(jsonBody(event));
    if (!parsed.success) {
      throw new BadRequestError(parsed.error.issues.map((i) => i.message).join("; "));
    }
    const data = parsed.data;
    if (data.source === "bulk" && !(settings.bulkSources ?? []).includes(data.server)) {
      throw new BadRequestError("server must be the name of one of the stack's bulk sources");
    }
    const upload = "inputPrefix" in data ? UPLOAD_PREFIX.exec(data.inputPrefix) : null;
    if (upload && s3) await requireUpload(s3, settings, org, upload[1]);
    const id = migrationId(org, key);
    const input = JSON.stringify({
      runId: id,
      org,
      ...data,
      // Where the registry snapshot lands (the state machine writes it there).
      ...(data.source === "registry" ? { inputPrefix: `registry/${id}/` } : {}),
      // Where the export's output files land, and no `since` is null (the state machine needs it).
      ...(data.source === "bulk"
        ? { since: data.since ?? null, inputPrefix: `bulk/${id}/output/` }
        : {}),
    });
    let state: { status: string; startDate?: Date; stopDate?: Date };
    try {
      // A retry while the run is RUNNING is answered by Step Functions itself
      // as the first call was (StartExecution is idempotent for a running
      // Standard execution with the same name and input).
      const out = await sfn.send(
        new StartExecutionCommand({ stateMachineArn: settings.stateMachineArn, name: id, input }),
      );
      state = { status: "RUNNING", startDate: out.startDate };
    } catch (error) {
      if (!(error instanceof ExecutionAlreadyExists)) awsFailure(error);
      // A retry after the run ended: the original status code and Location,
      // with the run's current state; another body under the key is a conflict.
      const existing = await describe(sfn, settings, id);
      if (existing.input !== input) {
        throw new ConflictError(
          "This Idempotency-Key was already used for a different migration request",
        );
      }
      state = {
        status: existing.status ?? "RUNNING",
        startDate: existing.startDate,
        stopDate: existing.stopDate,
      };
    }
    return jsonResponse(
      202,
      {
        id,
        status: state.status,
        startDate: state.startDate?.toISOString() ?? null,
        ...(state.stopDate ? { stopDate: state.stopDate.toISOString() } : {}),
      },
      { Location: `/migrations/${id}` },
    );
  };

async function describe(
  sfn: SFNClient,
  settings: MigrationSettings,
  id: string,
): Promise<DescribeExecutionCommandOutput> {
  try {
    return await sfn.send(
      new DescribeExecutionCommand({ executionArn: executionArn(settings.stateMachineArn, id) }),
    );
  } catch (error) {
    if (error instanceof ExecutionDoesNotExist) throw noSuchMigration();
    awsFailure(error);
  }
}

export const getMigration =
  (settings: MigrationSettings, sfn: SFNClient, s3: S3Client): RouteImpl =>
  async ({ event, params }) => {
    const org = tenant(event);
    requireAccess(event, "Task", "read");
    const id = params.id;
    if (!MIGRATION_ID.test(id)) throw noSuchMigration();
    const execution = await describe(sfn, settings, id);
    const input = JSON.parse(execution.input ?? "{}") as {
      org?: string;
      source?: string;
      inputPrefix?: string;
    };
    // Another tenant's run is indistinguishable from a missing one.
    if (input.org !== org) throw noSuchMigration();
    const body: Record<string, unknown> = {
      id,
      status: execution.status,
      source: input.source,
      inputPrefix: input.inputPrefix,
      startDate: execution.startDate?.toISOString() ?? null,
      stopDate: execution.stopDate?.toISOString() ?? null,
    };
    if (execution.status === "SUCCEEDED") {
      const reportUri = (JSON.parse(execution.output ?? "{}") as { reportUri?: string }).reportUri;
      body.reportUri = reportUri ?? null;
      body.report = reportUri ? await readReport(s3, settings, org, reportUri) : null;
    }
    if (execution.status === "FAILED") body.error = failure(execution.error, execution.cause);
    return jsonResponse(200, body);
  };

/**
 * A failed run's cause as plain fields. Step Functions hands causes over as
 * text, often JSON inside it: a Glue job run (`ErrorMessage`, which Glue
 * prefixes with the error class, e.g. `InputNotFound: Path does not exist`)
 * or a Lambda error (`errorType`, `errorMessage`).
 */
export function failure(error: string | undefined, cause: string | undefined) {
  let parsed: Record<string, unknown> = {};
  try {
    const value = JSON.parse(cause ?? "");
    if (value && typeof value === "object" && !Array.isArray(value)) parsed = value;
  } catch {
    // a plain-text cause
  }
  const text = (parsed.ErrorMessage ?? parsed.errorMessage ?? (cause || undefined)) as
    | string
    | undefined;
  const prefixed = typeof text === "string" ? /^([A-Z][A-Za-z0-9]*): (.*)$/s.exec(text) : null;
  const code =
    (typeof parsed.errorType === "string" ? parsed.errorType : undefined) ??
    prefixed?.[1] ??
    error ??
    "Unknown";
  return {
    code,
    message: (prefixed ? prefixed[2] : text) ?? null,
    /** The Step Functions error of the failed state, e.g. States.TaskFailed. */
    state: error ?? null,
    ...(typeof parsed.JobName === "string"
      ? {
          job: {
            name: parsed.JobName,
            runId: parsed.Id ?? null,
            state: parsed.JobRunState ?? null,
          },
        }
      : {}),
  };
}

/** The run's JSON report, read only from this tenant's reports prefix. */
async function readReport(s3: S3Client, settings: MigrationSettings, org: string, uri: string) {
  const prefix = `s3://${settings.lakeBucket}/reports/${org}/`;
  if (!uri.startsWith(prefix)) return null;
  try {
    const out = await s3.send(
      new GetObjectCommand({
        Bucket: settings.lakeBucket,
        Key: uri.slice(5 + settings.lakeBucket.length + 1),
      }),
    );
    return JSON.parse((await out.Body?.transformToString()) ?? "null");
  } catch (error) {
    if ((error as Error).name === "NoSuchKey") return null;
    awsFailure(error);
  }
}
