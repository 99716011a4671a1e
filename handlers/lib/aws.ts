import * as http from "node:http";
import * as https from "node:https";

import { ATTEMPTS, CONNECTION_TIMEOUT_MS, REQUEST_TIMEOUT_MS } from "../../contracts/budgets";

export {
  ANSWER_MARGIN_MS,
  ATTEMPTS,
  CONNECTION_TIMEOUT_MS,
  MIN_LAMBDA_TIMEOUT_SECONDS,
  REQUEST_TIMEOUT_MS,
} from "../../contracts/budgets";

const agents = {
  httpAgent: new http.Agent({ keepAlive: true, maxSockets: 50 }),
  httpsAgent: new https.Agent({ keepAlive: true, maxSockets: 50 }),
};

/** Options for every SDK client a handler creates. */
export function clientOptions() {
  return {
    maxAttempts: ATTEMPTS,
    requestHandler: {
      connectionTimeout: CONNECTION_TIMEOUT_MS,
      requestTimeout: REQUEST_TIMEOUT_MS,
      throwOnRequestTimeout: true,
      ...agents,
    },
  };
}

/**
 * Error names and Node.js error codes that the SDK's standard retry strategy
 * also treats as worth another attempt
 * (https://github.com/smithy-lang/smithy-typescript/blob/main/packages/service-error-classification/src/constants.ts),
 * and KMS throttling as S3 reports it for an SSE-KMS object.
 */
const TRANSIENT_NAMES = new Set([
  "TimeoutError",
  "RequestTimeout",
  "RequestTimeoutException",
  "SlowDown",
  "Throttling",
  "ThrottlingException",
  "ThrottledException",
  "RequestThrottled",
  "RequestThrottledException",
  "TooManyRequestsException",
  "RequestLimitExceeded",
  "BandwidthLimitExceeded",
  "LimitExceededException",
  "KMS.ThrottlingException",
]);
const TRANSIENT_CODES = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
]);

/**
 * Whether an SDK call's error is transient (throttling, a 5xx, a timeout, a
 * broken connection): worth retrying once the client's own ATTEMPTS are
 * spent. Anything else (AccessDenied, NoSuchKey, a disabled KMS key...)
 * will fail the same way again.
 */
export function isTransientAwsError(error: unknown): boolean {
  const e = (error ?? {}) as {
    name?: string;
    code?: string;
    $retryable?: unknown;
    $fault?: string;
    $metadata?: { httpStatusCode?: number };
  };
  const status = e.$metadata?.httpStatusCode ?? 0;
  return (
    e.$retryable !== undefined ||
    e.$fault === "server" ||
    status === 429 ||
    status >= 500 ||
    TRANSIENT_NAMES.has(e.name ?? "") ||
    TRANSIENT_CODES.has(e.code ?? "")
  );
}

/** An AWS call failed in a way worth retrying; the state machine's Retry names it. */
export class TransientAwsError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "TransientAwsError";
  }
}

/** The error's name and HTTP status, as a cause may quote them (never the SDK's message). */
export function awsErrorSummary(error: unknown): string {
  const e = (error ?? {}) as {
    name?: string;
    code?: string;
    $metadata?: { httpStatusCode?: number };
  };
  const status = e.$metadata?.httpStatusCode;
  return `${e.code ?? e.name ?? "Error"}${status ? `, HTTP ${status}` : ""}`;
}
