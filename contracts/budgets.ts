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
 * RESERVED_EVENTS are left to the rest of the run (the export's poll loop,
 * MAX_POLLS): (25,000 - 5,000) / 16 = 1,250.
 */
export const MAX_DOWNLOAD_BATCHES = 1250;

/** History events a run keeps for everything but its download batches. */
export const RESERVED_EVENTS = 25_000 - 16 * MAX_DOWNLOAD_BATCHES;

/**
 * Status requests (PollExport iterations) one run may make: what the
 * RESERVED_EVENTS hold besides the ~100 events outside the two loops
 * (validation, kick-off, check, delete, ingest and the events, each Task with
 * its retries). A poll is a lambda:invoke Task (5), ExportComplete (2) and
 * WaitForExport (2): 9 events, 18 with its 3 retries.
 * (5,000 - 100) / 18 = 272.
 *
 * The poll function holds a run to it two ways (handlers/lib/bulkExport.ts
 * pollExport): it waits at least deadlineSeconds / (MAX_POLLS - 1) between
 * polls, so the deadline comes before the limit however often the source
 * asks to be polled (Retry-After: 0, or none); and it counts the polls in the
 * job it hands back, failing the run with PollLimitError rather than asking
 * for poll MAX_POLLS + 1, whatever the clocks say.
 */
export const MAX_POLLS = Math.floor((RESERVED_EVENTS - 100) / 18);

/** The least wait (s) between two polls of a run whose deadline is `deadlineSeconds` away from kick-off. */
export const minPollWaitSeconds = (deadlineSeconds: number) =>
  Math.ceil(deadlineSeconds / (MAX_POLLS - 1));

/**
 * Files one run downloads: MAX_DOWNLOAD_BATCHES batches of `batchFiles`
 * (`hoth:bulk.downloadConcurrency`, 4 by default: 5,000 files). A larger
 * export is refused up front with this reason rather than failing later
 * when the execution's history is full.
 */
export const maxExportFiles = (batchFiles: number) => MAX_DOWNLOAD_BATCHES * batchFiles;
