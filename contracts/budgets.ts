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

/** Timeouts (s): a download batch streams its files (of any size) at once; the other steps make one request or two. */
export const BULK_STEP_TIMEOUT_SECONDS = 60;
export const BULK_DOWNLOAD_TIMEOUT_SECONDS = 900;

/**
 * Memory of the download function (MB) for batches of `batchFiles` files at
 * once: each file holds one 8 MiB S3 part (handlers/lib/objectSink.ts) and
 * its stream's chunks; 16 MB a file leaves room for both, over a 192 MB
 * base (a one-file step peaks near 160 MB, README bench/bulk). 512 MB up to
 * 20 files at once.
 */
export const bulkDownloadMemoryMb = (batchFiles: number) => Math.max(512, 192 + 16 * batchFiles);

/**
 * Download batches one run may take. The batches loop in the execution
 * (DownloadBatch -> MoreToDownload -> DownloadBatch ...), and a Standard
 * execution's history holds at most 25,000 events
 * (https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html#service-limits-state-machine-executions).
 * One batch is a lambda:invoke Task (TaskStateEntered, TaskScheduled,
 * TaskStarted, TaskSucceeded, TaskStateExited: 5 events) and a Choice
 * (entered, exited: 2), 7 events; each of its up to 3 retries adds
 * TaskFailed, TaskScheduled and TaskStarted, so at worst 7 + 3 x 3 = 16.
 * 5,000 events are left to the rest of the run: about 100 outside the
 * export's poll loop, the rest for ~540 polls (PollExport 5, ExportComplete
 * 2, WaitForExport 2: 9 events each). (25,000 - 5,000) / 16 = 1,250.
 * Nothing holds the polls to ~540 yet: a source answering Retry-After: 10
 * for the whole default 6-hour deadline would take 2,160 (19,440 events).
 */
export const MAX_DOWNLOAD_BATCHES = 1250;

/**
 * Files one run downloads: MAX_DOWNLOAD_BATCHES batches of `batchFiles`
 * (`hoth:bulk.downloadConcurrency`, 4 by default: 5,000 files). A larger
 * export is refused up front with this reason rather than failing later
 * when the execution's history is full.
 */
export const maxExportFiles = (batchFiles: number) => MAX_DOWNLOAD_BATCHES * batchFiles;
