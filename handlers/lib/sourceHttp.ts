/**
 * HTTP to a source EHR (token endpoint, Bulk Data `$export`): per-attempt
 * timeouts, bounded retries of transient answers honouring `Retry-After`, and
 * named errors whose messages say what failed and why without ever holding a
 * token, an assertion or anything a source sent back that could name a
 * patient (only status codes and OperationOutcome issue codes are kept).
 */

export type FetchLike = (url: string, init: RequestInit) => Promise<Response>;

/** An answer the source gave that retrying will not change (most 4xx, fatal 5xx). */
export class SourceHttpError extends Error {
  constructor(
    readonly operation: string,
    readonly status: number,
    readonly issueCodes: string[] = [],
    options?: ErrorOptions,
  ) {
    const codes = issueCodes.length ? ` (OperationOutcome issue ${issueCodes.join(", ")})` : "";
    super(`${operation}: the source answered ${status}${codes}`, options);
    this.name = "SourceHttpError";
  }
}

/** 429, a transient 5xx or a network failure that outlasted the retries; worth retrying later. */
export class TransientSourceError extends Error {
  constructor(
    readonly operation: string,
    readonly detail: string,
    /** Seconds the source asked to wait, when it said. */
    readonly retryAfterSeconds?: number,
    options?: ErrorOptions,
  ) {
    super(`${operation}: ${detail}`, options);
    this.name = "TransientSourceError";
  }
}

/** The source refused the access token (401) even after a fresh one was obtained. */
export class SourceUnauthorizedError extends Error {
  constructor(readonly operation: string) {
    super(`${operation}: the source refused a freshly issued access token (401)`);
    this.name = "SourceUnauthorizedError";
  }
}

export interface RetryPolicy {
  /** Attempts in all, the first included. @default 4 */
  attempts: number;
  /** First backoff in ms; doubles per attempt, full jitter. @default 500 */
  baseDelayMs: number;
  /** Longest single wait in ms, `Retry-After` included. @default 30000 */
  maxDelayMs: number;
  /** Per-attempt timeout (until response headers) in ms. @default 30000 */
  timeoutMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = {
  attempts: 4,
  baseDelayMs: 500,
  maxDelayMs: 30_000,
  timeoutMs: 30_000,
};

export interface HttpDeps {
  fetch?: FetchLike;
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
  random?: () => number;
  retry?: Partial<RetryPolicy>;
}

class TimeoutError extends Error {
  constructor(ms: number) {
    super(`no response headers within ${ms} ms`);
    this.name = "TimeoutError";
  }
}

export const realSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Seconds to wait from a `Retry-After` header: delay-seconds or an HTTP-date
 * (RFC 9110 section 10.2.3). Undefined when absent or malformed.
 */
export function parseRetryAfter(value: string | null, now: number): number | undefined {
  if (value === null) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v);
  const at = Date.parse(v);
  if (Number.isNaN(at) || !/[a-z]/i.test(v)) return undefined;
  return Math.max(0, Math.ceil((at - now) / 1000));
}

/** The issue codes of an OperationOutcome body, or [] when the body is not one. */
export function outcomeIssueCodes(body: string): string[] {
  try {
    const parsed = JSON.parse(body) as { resourceType?: unknown; issue?: unknown };
    if (parsed.resourceType !== "OperationOutcome" || !Array.isArray(parsed.issue)) return [];
    return parsed.issue
      .map((i: { code?: unknown }) => i?.code)
      .filter((c): c is string => typeof c === "string" && /^[a-z-]{1,40}$/.test(c));
  } catch {
    return [];
  }
}

/**
 * Whether an error answer is worth retrying. 429 and 503/502/504 always are;
 * any other 5xx only when it carries no OperationOutcome or one whose issues
 * are `transient`: the Bulk Data spec uses a `transient` issue code to tell a
 * passing failure from a failed export job
 * (https://hl7.org/fhir/uv/bulkdata/export.html, "Bulk Data Status Request").
 */
export function isTransient(status: number, issueCodes: string[]): boolean {
  if (status === 429 || status === 502 || status === 503 || status === 504) return true;
  if (status < 500) return false;
  return issueCodes.length === 0 || issueCodes.every((c) => c === "transient");
}

export interface Attempt {
  /** Called afresh per attempt (a new assertion, the current token...). */
  init: () => Promise<RequestInit> | RequestInit;
  operation: string;
  url: string;
  /** Statuses that are answers, not errors; anything else goes through the error path. */
  ok: (status: number) => boolean;
  /** Latest time (epoch ms) a retry may start; a longer wait fails at once. */
  deadline?: number;
  /** The error for a final (not transient) answer, when a plainer one than SourceHttpError fits. */
  refusal?: (status: number, body: string) => Error | undefined;
}

/** An `ok` answer whose body is still unread, and a way to abandon reading it. */
export interface Sent {
  response: Response;
  /** Aborts the request, so a stalled body read fails instead of hanging. */
  abort(reason: Error): void;
}

/**
 * Sends a request until it gets an `ok` status, retrying transient answers
 * and network errors with exponential backoff (full jitter) or the source's
 * `Retry-After`, whichever is longer, within the policy and the deadline.
 * The timeout covers each attempt until the response headers; the body of an
 * `ok` response is left unread for the caller to stream (and to time out).
 */
export async function send(attempt: Attempt, deps: HttpDeps = {}): Promise<Sent> {
  const fetchFn = deps.fetch ?? fetch;
  const sleep = deps.sleep ?? realSleep;
  const now = deps.now ?? Date.now;
  const random = deps.random ?? Math.random;
  const policy = { ...DEFAULT_RETRY, ...deps.retry };
  let last: TransientSourceError | undefined;
  for (let n = 1; n <= policy.attempts; n++) {
    let res: Response;
    const controller = new AbortController();
    const timer = setTimeout(
      () => controller.abort(new TimeoutError(policy.timeoutMs)),
      policy.timeoutMs,
    );
    try {
      res = await fetchFn(attempt.url, { ...(await attempt.init()), signal: controller.signal });
    } catch (cause) {
      const timedOut = controller.signal.aborted;
      last = new TransientSourceError(
        attempt.operation,
        timedOut ? `no answer within ${policy.timeoutMs} ms` : "the connection failed",
        undefined,
        { cause },
      );
      clearTimeout(timer);
      if (!(await backoff(n, undefined))) break;
      continue;
    }
    clearTimeout(timer);
    if (attempt.ok(res.status)) {
      return { response: res, abort: (reason) => controller.abort(reason) };
    }
    const body = await res.text().catch(() => "");
    const codes = outcomeIssueCodes(body);
    if (!isTransient(res.status, codes)) {
      throw (
        attempt.refusal?.(res.status, body) ??
        new SourceHttpError(attempt.operation, res.status, codes)
      );
    }
    const retryAfter = parseRetryAfter(res.headers.get("retry-after"), now());
    last = new TransientSourceError(
      attempt.operation,
      `the source answered ${res.status}${codes.length ? ` (${codes.join(", ")})` : ""}`,
      retryAfter,
    );
    if (!(await backoff(n, retryAfter))) break;
  }
  throw last ?? new TransientSourceError(attempt.operation, "no attempt was made");

  async function backoff(n: number, retryAfterSeconds: number | undefined): Promise<boolean> {
    if (n >= policy.attempts) return false;
    const jitter = Math.floor(random() * policy.baseDelayMs * 2 ** (n - 1));
    const wait = Math.max(jitter, (retryAfterSeconds ?? 0) * 1000);
    if (wait > policy.maxDelayMs) return false;
    if (attempt.deadline !== undefined && now() + wait > attempt.deadline) return false;
    await sleep(wait);
    return true;
  }
}
