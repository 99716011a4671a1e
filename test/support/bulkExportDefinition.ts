/**
 * A proposal for the bulk-source states, as a stand-alone definition the
 * tests run against the real step functions (test/bulkStateMachine.test.ts).
 * It is not wired into contracts/migrationDefinition.ts: the lead lifts the
 * states from here, replacing `Succeeded` by the IngestFhir state and
 * `ExportFailed` by the PublishFailed path.
 *
 * Each Lambda's result is its return value (direct Lambda ARN resources).
 * Errors are retried by name: only TransientSourceError is worth it; every
 * other named error (SourceHttpError, ExportDeadlineError,
 * LineCountMismatchError, ExportErrorFilesError, ManifestError,
 * TokenRequestError, SourceUnauthorizedError) fails the run with its message
 * as the cause, after the job is deleted at the source when there is one.
 */

const fn = (name: string) => `arn:aws:lambda:us-east-1:123456789012:function:hoth-dev-bulk-${name}`;

const transientRetry = [
  {
    ErrorEquals: [
      "TransientSourceError",
      "Lambda.ServiceException",
      "Lambda.TooManyRequestsException",
    ],
    IntervalSeconds: 5,
    MaxAttempts: 3,
    BackoffRate: 2,
    JitterStrategy: "FULL",
  },
];

export const bulkExportDefinition = {
  Comment: "Bulk Data $export from a configured source into the landing zone",
  StartAt: "InitiateExport",
  States: {
    InitiateExport: {
      Type: "Task",
      Resource: fn("initiate"),
      Parameters: {
        "server.$": "$.server",
        "since.$": "$.since",
        "deadlineSeconds.$": "$.deadlineSeconds",
      },
      ResultPath: "$.job",
      Retry: transientRetry,
      Catch: [{ ErrorEquals: ["States.ALL"], ResultPath: "$.error", Next: "ExportFailed" }],
      Next: "PollExport",
    },
    PollExport: {
      Type: "Task",
      Resource: fn("poll"),
      Parameters: { "job.$": "$.job", "prefix.$": "$.landingPrefix" },
      ResultPath: "$.poll",
      Retry: transientRetry,
      Catch: [{ ErrorEquals: ["States.ALL"], ResultPath: "$.error", Next: "DeleteAfterFailure" }],
      Next: "ExportComplete",
    },
    ExportComplete: {
      Type: "Choice",
      Choices: [{ Variable: "$.poll.status", StringEquals: "complete", Next: "DownloadFiles" }],
      Default: "WaitForExport",
    },
    WaitForExport: { Type: "Wait", SecondsPath: "$.poll.waitSeconds", Next: "PollExport" },
    DownloadFiles: {
      Type: "Map",
      ItemsPath: "$.poll.tasks",
      MaxConcurrency: 4,
      ItemSelector: { "server.$": "$.server", "task.$": "$$.Map.Item.Value" },
      ItemProcessor: {
        ProcessorConfig: { Mode: "INLINE" },
        StartAt: "DownloadFile",
        States: {
          DownloadFile: {
            Type: "Task",
            Resource: fn("download"),
            Retry: transientRetry,
            End: true,
          },
        },
      },
      ResultPath: "$.downloads",
      Catch: [{ ErrorEquals: ["States.ALL"], ResultPath: "$.error", Next: "DeleteAfterFailure" }],
      Next: "CheckDownloads",
    },
    CheckDownloads: {
      Type: "Task",
      Resource: fn("check"),
      Parameters: { "downloads.$": "$.downloads" },
      ResultPath: "$.report",
      Catch: [{ ErrorEquals: ["States.ALL"], ResultPath: "$.error", Next: "DeleteAfterFailure" }],
      Next: "DeleteExport",
    },
    DeleteExport: {
      Type: "Task",
      Resource: fn("delete"),
      Parameters: { "job.$": "$.job" },
      ResultPath: "$.deleted",
      Retry: transientRetry,
      // A source that cannot delete does not undo a complete download.
      Catch: [{ ErrorEquals: ["States.ALL"], ResultPath: "$.deleteError", Next: "Succeeded" }],
      Next: "Succeeded",
    },
    DeleteAfterFailure: {
      Type: "Task",
      Resource: fn("delete"),
      Parameters: { "job.$": "$.job" },
      ResultPath: "$.deleted",
      Retry: transientRetry,
      Catch: [{ ErrorEquals: ["States.ALL"], ResultPath: "$.deleteError", Next: "ExportFailed" }],
      Next: "ExportFailed",
    },
    Succeeded: { Type: "Succeed" },
    ExportFailed: { Type: "Fail", ErrorPath: "$.error.Error", CausePath: "$.error.Cause" },
  },
};
