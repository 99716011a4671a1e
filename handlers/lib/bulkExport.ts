import { createHash } from "node:crypto";
import { MAX_POLLS, minPollWaitSeconds } from "../../contracts/budgets";
import { type ExportManifest, type ManifestFile, parseManifest } from "./bulkManifest";
import type { SinkFactory } from "./objectSink";
import type { TokenSource } from "./smartBackend";
import {
  type Attempt,
  type HttpDeps,
  parseRetryAfter,
  type Sent,
  SourceUnauthorizedError,
  send,
  TransientSourceError,
} from "./sourceHttp";

/**
 * A FHIR Bulk Data `$export` client (https://hl7.org/fhir/uv/bulkdata/export.html)
 * as four steps a state machine runs as separate tasks: initiate, poll once,
 * download one file, delete the job. Each takes and returns plain JSON (what
 * Step Functions passes between states); the source's settings and the
 * token come from the step's context, never from the state's input.
 */

/** A configured source server (plain settings; no secret: the signing key is in KMS). */
export interface SourceServer {
  name: string;
  /** FHIR base URL, e.g. `https://ehr.example.org/fhir` (no trailing slash needed). */
  fhirBaseUrl: string;
  tokenUrl: string;
  clientId: string;
  scopes: string[];
  /** Group-level export when set, system-level otherwise. */
  groupId?: string;
  /** `_type`; every type the server has when empty or absent. */
  types?: string[];
  /**
   * Origins that may receive the access token besides the FHIR base URL's
   * (a separate file server of the same EHR, for instance).
   * @default []
   */
  extraTokenOrigins?: string[];
}

export interface StepContext {
  server: SourceServer;
  tokens: TokenSource;
  http?: HttpDeps;
}

/** A named failure whose message is the run report's cause. */
export class ExportError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ExportError";
  }
}

/** The export did not complete before its deadline. */
export class ExportDeadlineError extends ExportError {
  constructor(deadline: string) {
    super(`The export did not complete before its deadline (${deadline})`);
    this.name = "ExportDeadlineError";
  }
}

/**
 * The export was polled MAX_POLLS times without completing: the most one
 * run's execution history holds (contracts/budgets.ts). Stops the run before
 * a poll past that, whatever the clocks say.
 */
export class PollLimitError extends ExportError {
  constructor(deadline: string) {
    super(
      `The export did not complete in ${MAX_POLLS} polls, the most one run's execution history holds (deadline ${deadline})`,
    );
    this.name = "PollLimitError";
  }
}

/** The source answered something the Bulk Data spec does not allow. */
export class SourceProtocolError extends ExportError {
  constructor(message: string) {
    super(message);
    this.name = "SourceProtocolError";
  }
}

/** A file's line count differs from the manifest's `count`. */
export class LineCountMismatchError extends ExportError {
  constructor(
    readonly key: string,
    readonly expected: number,
    readonly actual: number,
  ) {
    super(`${key}: the manifest counts ${expected} resources, the file holds ${actual}`);
    this.name = "LineCountMismatchError";
  }
}

/** The manifest lists error files: the source could not export everything asked for. */
export class ExportErrorFilesError extends ExportError {
  constructor(
    readonly files: number,
    readonly issueCodes: Record<string, number>,
  ) {
    const codes = Object.entries(issueCodes)
      .map(([c, n]) => `${c} x${n}`)
      .join(", ");
    super(
      `The source reported ${files} error file(s) with the export${codes ? ` (issues: ${codes})` : ""}`,
    );
    this.name = "ExportErrorFilesError";
  }
}

/** The state a run carries from kick-off to delete. */
export interface ExportJob {
  server: string;
  statusUrl: string;
  kickoffUrl: string;
  kickedOffAt: string;
  /** No poll after this instant; the export fails with ExportDeadlineError. */
  deadline: string;
  /** Status requests made so far; never more than MAX_POLLS (PollLimitError). */
  polls: number;
}

export interface InitiateInput {
  /** `_since`, a FHIR instant. */
  since?: string;
  /** Total time allowed from kick-off to a complete manifest, in seconds. */
  deadlineSeconds: number;
}

export type PollResult =
  | { status: "in-progress"; job: ExportJob; waitSeconds: number; progress?: string }
  | { status: "complete"; job: ExportJob; manifest: ExportManifest };

export interface PollOptions {
  /** Wait when the source gives no Retry-After. @default 10 */
  defaultWaitSeconds?: number;
  /**
   * Floor and ceiling applied to the source's Retry-After. Both are raised to
   * the run's least wait, minPollWaitSeconds(deadline - kick-off), so a run
   * never polls more than MAX_POLLS times. @default 1, 300
   */
  minWaitSeconds?: number;
  maxWaitSeconds?: number;
  /** A larger manifest is refused. @default 16 MiB */
  maxManifestBytes?: number;
}

export interface DownloadTask {
  type: string;
  kind: "output" | "error" | "deleted";
  url: string;
  /** The manifest's `count`, checked against the lines received. */
  count?: number;
  requiresAccessToken: boolean;
  /** Destination key, e.g. `landing/acme/bulk/<run>/output/Patient.000.ndjson`. */
  key: string;
}

export interface DownloadResult {
  key: string;
  type: string;
  kind: DownloadTask["kind"];
  location: string;
  bytes: number;
  lines: number;
  sha256: string;
  /** For error files: OperationOutcome issue codes and how often each occurs (no text). */
  issueCodes?: Record<string, number>;
}

export interface DownloadOptions {
  sink: SinkFactory;
  /** A body that sends nothing for this long is abandoned. @default 60000 */
  idleTimeoutMs?: number;
}

const trimSlash = (u: string) => u.replace(/\/+$/, "");
/** A FHIR instant: to the second at least, with a time zone. */
const INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;

/** The job state comes back through the state machine: it must still be this server's. */
function checkJob(job: ExportJob, server: SourceServer): void {
  if (job.server !== server.name) {
    throw new ExportError(`The export job belongs to source '${job.server}', not '${server.name}'`);
  }
  requireTokenOrigin(job.statusUrl, server, "The export status URL");
}

/** Origins that may receive the source's access token. */
export function tokenOrigins(server: SourceServer): string[] {
  return [new URL(server.fhirBaseUrl).origin, ...(server.extraTokenOrigins ?? [])];
}

function requireTokenOrigin(url: string, server: SourceServer, what: string): void {
  if (!tokenOrigins(server).includes(new URL(url).origin)) {
    throw new SourceProtocolError(
      `${what} is not on an origin allowed to receive the access token (${tokenOrigins(server).join(", ")})`,
    );
  }
}

/** The kick-off URL: `[base]/$export` or `[base]/Group/[id]/$export`, with `_type` and `_since`. */
export function kickoffUrl(server: SourceServer, since?: string): string {
  const base = trimSlash(server.fhirBaseUrl);
  const url = new URL(
    server.groupId
      ? `${base}/Group/${encodeURIComponent(server.groupId)}/$export`
      : `${base}/$export`,
  );
  if (server.types?.length) url.searchParams.set("_type", server.types.join(","));
  if (since !== undefined) url.searchParams.set("_since", since);
  return url.toString().replace("%24export", "$export");
}

/**
 * Sends a request with the source's access token. A 401 means the token
 * expired or was revoked: it is dropped, a fresh one fetched and the request
 * sent once more; a second 401 is SourceUnauthorizedError.
 */
async function withToken(
  ctx: StepContext,
  attempt: Omit<Attempt, "init" | "ok"> & {
    method: string;
    headers: Record<string, string>;
    ok: (status: number) => boolean;
  },
): Promise<Sent> {
  for (let round = 0; round < 2; round++) {
    const token = await ctx.tokens.token();
    const sent = await send(
      {
        ...attempt,
        ok: (s) => s === 401 || attempt.ok(s),
        init: () => ({
          method: attempt.method,
          headers: { ...attempt.headers, Authorization: `Bearer ${token}` },
        }),
      },
      ctx.http,
    );
    if (sent.response.status !== 401) return sent;
    await sent.response.body?.cancel();
    ctx.tokens.invalidate(token);
  }
  throw new SourceUnauthorizedError(attempt.operation);
}

/** Kick-off: asks the source to start an export; answers the job to poll. */
export async function initiateExport(input: InitiateInput, ctx: StepContext): Promise<ExportJob> {
  const now = ctx.http?.now ?? Date.now;
  if (
    input.since !== undefined &&
    !(INSTANT.test(input.since) && !Number.isNaN(Date.parse(input.since)))
  ) {
    throw new ExportError("since must be a FHIR instant, e.g. 2026-01-01T00:00:00Z");
  }
  if (!Number.isInteger(input.deadlineSeconds) || input.deadlineSeconds <= 0) {
    throw new ExportError("deadlineSeconds must be a positive whole number");
  }
  const url = kickoffUrl(ctx.server, input.since);
  const { response } = await withToken(ctx, {
    operation: "Export kick-off",
    url,
    method: "GET",
    headers: { Accept: "application/fhir+json", Prefer: "respond-async" },
    ok: (s) => s === 202,
  });
  await response.body?.cancel();
  const location = response.headers.get("content-location");
  if (!location) {
    throw new SourceProtocolError("Export kick-off: 202 without a Content-Location header");
  }
  const statusUrl = new URL(location, url).toString();
  requireTokenOrigin(statusUrl, ctx.server, "The export status URL");
  const at = now();
  return {
    server: ctx.server.name,
    statusUrl,
    kickoffUrl: url,
    kickedOffAt: new Date(at).toISOString(),
    deadline: new Date(at + input.deadlineSeconds * 1000).toISOString(),
    polls: 0,
  };
}

/** X-Progress, kept only when short and printable (it is shown in the run's status). */
const progressText = (v: string | null) => (v && /^[\x20-\x7e]{1,100}$/.test(v) ? v : undefined);

/**
 * The wait (s) before the next poll: what the source asked (`asked`, its
 * Retry-After; `defaultWaitSeconds` without one) within the options' floor
 * and ceiling, both raised to minPollWaitSeconds(runSeconds), and never past
 * the `leftSeconds` before the deadline. Polls at least that far apart, from
 * kick-off, reach the deadline by poll MAX_POLLS: (MAX_POLLS - 1) waits of
 * at least runSeconds / (MAX_POLLS - 1) each.
 */
export function pollWaitSeconds(
  asked: number | undefined,
  runSeconds: number,
  leftSeconds: number,
  options: PollOptions = {},
): number {
  const { defaultWaitSeconds = 10, minWaitSeconds = 1, maxWaitSeconds = 300 } = options;
  const floor = Math.max(minWaitSeconds, minPollWaitSeconds(runSeconds));
  const ceiling = Math.max(maxWaitSeconds, floor);
  return Math.min(Math.max(asked ?? defaultWaitSeconds, floor), ceiling, leftSeconds);
}

/**
 * One status request. In progress: how long to wait before the next one
 * (pollWaitSeconds). Complete: the checked manifest. Both hand back the job
 * with this poll counted. Past the deadline: ExportDeadlineError; in
 * progress at poll MAX_POLLS: PollLimitError (no poll after it would fit in
 * the run's history).
 */
export async function pollExport(
  job: ExportJob,
  ctx: StepContext,
  options: PollOptions = {},
): Promise<PollResult> {
  const now = ctx.http?.now ?? Date.now;
  checkJob(job, ctx.server);
  if (!Number.isInteger(job.polls) || job.polls < 0) {
    throw new ExportError("The export job's poll count must be a whole number");
  }
  if (job.polls >= MAX_POLLS) throw new PollLimitError(job.deadline);
  const deadline = Date.parse(job.deadline);
  const runSeconds = (deadline - Date.parse(job.kickedOffAt)) / 1000;
  if (!(runSeconds > 0))
    throw new ExportError("The export job's deadline must follow its kick-off");
  if (now() >= deadline) throw new ExportDeadlineError(job.deadline);
  const { response } = await withToken(ctx, {
    operation: "Export status",
    url: job.statusUrl,
    method: "GET",
    headers: { Accept: "application/json" },
    ok: (s) => s === 200 || s === 202,
    deadline,
  });
  const polled = { ...job, polls: job.polls + 1 };
  if (response.status === 202) {
    await response.body?.cancel();
    if (polled.polls >= MAX_POLLS) throw new PollLimitError(job.deadline);
    const asked = parseRetryAfter(response.headers.get("retry-after"), now());
    const left = Math.ceil((deadline - now()) / 1000);
    if (left <= 0) throw new ExportDeadlineError(job.deadline);
    const waitSeconds = pollWaitSeconds(asked, runSeconds, left, options);
    const progress = progressText(response.headers.get("x-progress"));
    return { status: "in-progress", job: polled, waitSeconds, ...(progress ? { progress } : {}) };
  }
  return { status: "complete", job: polled, manifest: await manifestFrom(response, ctx, options) };
}

async function readLimited(response: Response, limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of response.body ?? []) {
    size += chunk.length;
    if (size > limit) {
      await response.body?.cancel();
      throw new SourceProtocolError(`Export status: the manifest exceeds ${limit} bytes`);
    }
    chunks.push(Buffer.from(chunk));
  }
  return Buffer.concat(chunks).toString("utf8");
}

/**
 * The next page of a paged manifest (Bulk Data 3.0 `link` relation `next`):
 * fetched with the token, from an allowed origin only, and checked like the first.
 */
export async function fetchManifestPage(
  url: string,
  ctx: StepContext,
  options: PollOptions = {},
): Promise<ExportManifest> {
  requireTokenOrigin(url, ctx.server, "The next manifest page URL");
  const { response } = await withToken(ctx, {
    operation: "Export manifest page",
    url,
    method: "GET",
    headers: { Accept: "application/json" },
    ok: (s) => s === 200,
  });
  return manifestFrom(response, ctx, options);
}

async function manifestFrom(
  response: Response,
  ctx: StepContext,
  options: PollOptions,
): Promise<ExportManifest> {
  const text = await readLimited(response, options.maxManifestBytes ?? 16 * 1024 * 1024);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new SourceProtocolError("Export status: the complete manifest is not JSON");
  }
  return parseManifest(json, { tokenOrigins: tokenOrigins(ctx.server) });
}

/**
 * The files to fetch, with their destination keys under `prefix`
 * (`<prefix>/<kind>/<Type>.<nnn>.ndjson`, numbered per type in manifest order;
 * `<Type>.p<page>.<nnn>.ndjson` for the pages after the first of a paged manifest).
 */
export function planDownloads(manifest: ExportManifest, prefix: string, page = 0) {
  const tasks: DownloadTask[] = [];
  const lists: [DownloadTask["kind"], ManifestFile[]][] = [
    ["output", manifest.output],
    ["error", manifest.error],
    ["deleted", manifest.deleted],
  ];
  for (const [kind, files] of lists) {
    const seen = new Map<string, number>();
    for (const f of files) {
      const n = seen.get(f.type) ?? 0;
      seen.set(f.type, n + 1);
      tasks.push({
        type: f.type,
        kind,
        url: f.url,
        ...(f.count !== undefined ? { count: f.count } : {}),
        requiresAccessToken: manifest.requiresAccessToken,
        key: `${trimSlash(prefix)}/${kind}/${f.type}${page ? `.p${page}` : ""}.${String(n).padStart(3, "0")}.ndjson`,
      });
    }
  }
  return tasks;
}

/**
 * Counts NDJSON records (non-empty lines, a last line without its newline
 * included) across chunk boundaries; for error files, also tallies the
 * OperationOutcome issue codes (only codes: diagnostics may name a patient).
 */
class LineCounter {
  lines = 0;
  private open = false;
  private partial: Buffer[] = [];
  private partialBytes = 0;
  readonly codes: Record<string, number> = {};

  constructor(private readonly keepLines: boolean) {}

  push(chunk: Buffer): void {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(10, start);
      const end = nl === -1 ? chunk.length : nl;
      if (end > start && !(end - start === 1 && chunk[start] === 13)) this.open = true;
      if (this.keepLines) this.keep(chunk.subarray(start, end));
      if (nl === -1) return;
      this.closeLine();
      start = nl + 1;
    }
  }

  end(): void {
    this.closeLine();
  }

  private keep(part: Buffer): void {
    if (this.partialBytes + part.length > 1024 * 1024) return;
    this.partial.push(part);
    this.partialBytes += part.length;
  }

  private closeLine(): void {
    if (this.open) {
      this.lines++;
      if (this.keepLines) this.tally(Buffer.concat(this.partial).toString("utf8"));
    }
    this.open = false;
    this.partial = [];
    this.partialBytes = 0;
  }

  private tally(line: string): void {
    try {
      const o = JSON.parse(line) as { issue?: { code?: unknown }[] };
      for (const issue of o.issue ?? []) {
        const code =
          typeof issue?.code === "string" && /^[a-z-]{1,40}$/.test(issue.code)
            ? issue.code
            : "unknown";
        this.codes[code] = (this.codes[code] ?? 0) + 1;
      }
    } catch {
      this.codes.unparseable = (this.codes.unparseable ?? 0) + 1;
    }
  }
}

/**
 * Streams one manifest file to the sink: never more than a chunk (and the
 * sink's one part) in memory. The sink is committed only when the body
 * arrived whole and its line count matches the manifest's `count`;
 * otherwise it is aborted and the error says why.
 */
export async function downloadFile(
  task: DownloadTask,
  ctx: StepContext,
  options: DownloadOptions,
): Promise<DownloadResult> {
  const request = {
    operation: `Download of ${task.kind} file ${task.key}`,
    url: task.url,
    method: "GET",
    headers: { Accept: "application/fhir+ndjson" },
    ok: (s: number) => s === 200,
  };
  let sent: Sent;
  if (task.requiresAccessToken) {
    requireTokenOrigin(task.url, ctx.server, `The ${task.kind} file URL`);
    sent = await withToken(ctx, request);
  } else {
    // Without requiresAccessToken the file may be on another host (a signed
    // URL): it must not get our token.
    sent = await send(
      { ...request, init: () => ({ method: "GET", headers: request.headers }) },
      ctx.http,
    );
  }
  const sink = await options.sink(task.key);
  const hash = createHash("sha256");
  const counter = new LineCounter(task.kind === "error");
  let bytes = 0;
  const idleMs = options.idleTimeoutMs ?? 60_000;
  // One watchdog per download (not a timer per chunk) that counts only the
  // time spent waiting for the source, not the sink's writes (an S3 part
  // upload may take longer than the source's silence allows). A stalled read
  // is cancelled, which settles it as done: `stalled` keeps that from
  // passing for the end of the file.
  const reader = sent.response.body?.getReader();
  let stalled = false;
  let waitingSince: number | undefined;
  const watchdog = setInterval(
    () => {
      if (waitingSince === undefined || Date.now() - waitingSince < idleMs) return;
      const err = new Error(`no data for ${idleMs} ms`);
      stalled = true;
      sent.abort(err);
      reader?.cancel(err).catch(() => undefined);
    },
    Math.max(10, Math.floor(idleMs / 4)),
  );
  try {
    try {
      for (;;) {
        waitingSince = Date.now();
        const next = reader ? await reader.read() : { done: true as const, value: undefined };
        waitingSince = undefined;
        if (stalled) throw new Error(`no data for ${idleMs} ms`);
        if (next.done) break;
        const chunk = next.value;
        const buf = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
        bytes += buf.length;
        hash.update(buf);
        counter.push(buf);
        await sink.write(buf);
      }
    } catch (cause) {
      throw new TransientSourceError(
        request.operation,
        `the body broke off after ${bytes} bytes`,
        undefined,
        { cause },
      );
    } finally {
      clearInterval(watchdog);
    }
    counter.end();
    if (task.count !== undefined && counter.lines !== task.count) {
      throw new LineCountMismatchError(task.key, task.count, counter.lines);
    }
    const { location } = await sink.commit();
    return {
      key: task.key,
      type: task.type,
      kind: task.kind,
      location,
      bytes,
      lines: counter.lines,
      sha256: hash.digest("hex"),
      ...(task.kind === "error" ? { issueCodes: counter.codes } : {}),
    };
  } catch (e) {
    await sink.abort().catch(() => undefined);
    throw e;
  }
}

/**
 * Cancels the job at the source (DELETE on the status URL, 202 per spec) so
 * it can free the files. A job already gone (404/410) counts as deleted, so
 * the step can be retried safely.
 */
export async function deleteExport(
  job: ExportJob,
  ctx: StepContext,
): Promise<{ statusUrl: string; result: "deleted" | "already-gone" }> {
  checkJob(job, ctx.server);
  const { response } = await withToken(ctx, {
    operation: "Export delete",
    url: job.statusUrl,
    method: "DELETE",
    headers: { Accept: "application/fhir+json" },
    ok: (s) => s === 202 || s === 200 || s === 204 || s === 404 || s === 410,
  });
  await response.body?.cancel();
  const gone = response.status === 404 || response.status === 410;
  return { statusUrl: job.statusUrl, result: gone ? "already-gone" : "deleted" };
}

/**
 * What the downloads of a run add up to, carried from batch to batch in the
 * execution's state: its size depends on the resource types and issue codes
 * seen (both bounded), never on the number of files.
 */
export interface DownloadSummary {
  /** Output files downloaded. */
  files: number;
  /** Their lines (resources), in all and per type. */
  resources: number;
  byType: Record<string, number>;
  /** Error files holding at least one OperationOutcome. */
  errorFiles: number;
  /** Their issue codes and how often each occurs (at most MAX_ISSUE_CODES, the rest as `other`). */
  issueCodes: Record<string, number>;
}

/** Distinct issue codes a summary keeps (FHIR R4's IssueType has 31). */
export const MAX_ISSUE_CODES = 40;

export const emptySummary = (): DownloadSummary => ({
  files: 0,
  resources: 0,
  byType: {},
  errorFiles: 0,
  issueCodes: {},
});

/** The summary with a batch's results added (a new object; `summary` is left as it was). */
export function foldDownloads(
  summary: DownloadSummary,
  results: DownloadResult[],
): DownloadSummary {
  const next: DownloadSummary = {
    ...summary,
    byType: { ...summary.byType },
    issueCodes: { ...summary.issueCodes },
  };
  for (const r of results) {
    if (r.kind === "output") {
      next.files++;
      next.resources += r.lines;
      next.byType[r.type] = (next.byType[r.type] ?? 0) + r.lines;
    } else if (r.kind === "error" && r.lines > 0) {
      next.errorFiles++;
      for (const [c, n] of Object.entries(r.issueCodes ?? {})) {
        const code =
          c in next.issueCodes || Object.keys(next.issueCodes).length < MAX_ISSUE_CODES
            ? c
            : "other";
        next.issueCodes[code] = (next.issueCodes[code] ?? 0) + n;
      }
    }
  }
  return next;
}

/**
 * What the run report says once every file is down: the error files fail the
 * run (the export is incomplete), with the issue codes they hold.
 */
export function checkSummary(summary: DownloadSummary): void {
  if (summary.errorFiles > 0) {
    throw new ExportErrorFilesError(summary.errorFiles, summary.issueCodes);
  }
}
