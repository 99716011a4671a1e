/**
 * Timeouts and retries of every AWS SDK client in the handlers. One call can
 * take at most ATTEMPTS x REQUEST_TIMEOUT_MS plus backoff, which stays inside
 * the request budget (handlers/lib/deadline.ts; handlers/lib/aws.ts applies these) and so inside
 * `hoth:lambda.timeoutSeconds` (at least MIN_LAMBDA_TIMEOUT_SECONDS, config.ts)
 * and API Gateway's 29 s integration timeout.
 */
export const CONNECTION_TIMEOUT_MS = 1000;
export const REQUEST_TIMEOUT_MS = 3000;
export const ATTEMPTS = 2;
/** The handler's margin to answer after its last AWS call gives up. */
export const ANSWER_MARGIN_MS = 1500;
export const MIN_LAMBDA_TIMEOUT_SECONDS = Math.ceil(
  (ATTEMPTS * (REQUEST_TIMEOUT_MS + CONNECTION_TIMEOUT_MS) + ANSWER_MARGIN_MS) / 1000,
);

/** Timeouts (s): a download streams one file of any size; the other steps make one request or two. */
export const BULK_STEP_TIMEOUT_SECONDS = 60;
export const BULK_DOWNLOAD_TIMEOUT_SECONDS = 900;
