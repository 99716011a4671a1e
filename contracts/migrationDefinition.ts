/**
 * The migration state machine's definition (Amazon States Language, JSONPath),
 * built by a pure function from what it needs, so the same definition is
 * deployed by MigrationStateMachine and executed by the local runner.
 *
 * Input: `{ "runId", "org", "source": "legacy" | "fhir" | "registry", "inputPrefix" }`.
 * `inputPrefix` is relative to the organisation's landing area
 * (`s3://<lake>/landing/<org>/`), so a run can only read its own tenant's data.
 * A `registry` run first snapshots the organisation's committed members
 * (the registry export function) and ingests that snapshot. A `bulk` run
 * (`"server"`, `"since"`: an instant or null) pulls a FHIR Bulk Data
 * `$export` from a configured source into `landing/<org>/bulk/<runId>/`
 * (the bulk functions, handlers/bulk.ts) and ingests its output files.
 */

export interface MigrationDefinitionArgs {
  legacyJobName: string;
  ingestJobName: string;
  /** The function that snapshots the member registry into the landing zone. */
  registryExportFunctionArn: string;
  /** Its timeout (s). */
  registryExportTimeoutSeconds: number;
  lakeBucket: string;
  eventBusName: string;
  /** Per-job timeout (s). */
  legacyTimeoutSeconds: number;
  ingestTimeoutSeconds: number;
  /** The bulk-source functions; without them a `bulk` run is invalid input. */
  bulk?: BulkDefinitionArgs;
}

export interface BulkDefinitionArgs {
  functionArns: Record<"initiate" | "poll" | "download" | "check" | "delete", string>;
  /** From kick-off to a complete manifest (s). */
  deadlineSeconds: number;
  /** Files downloaded at once: one download batch (one invocation) takes this many. */
  downloadConcurrency: number;
  /** Timeout of the initiate, poll, check and delete functions (s). */
  stepTimeoutSeconds: number;
  /** Timeout of the download function (s). */
  downloadTimeoutSeconds: number;
}

/** `source` of the events the state machine publishes. */
export const EVENT_SOURCE = "hoth.migration";

/** Glue errors worth retrying: concurrency limits, throttling, transient service faults. */
export const RETRYABLE_GLUE_ERRORS = [
  "Glue.ConcurrentRunsExceededException",
  "Glue.ThrottlingException",
  "Glue.InternalServiceException",
  "Glue.OperationTimeoutException",
  "Glue.ResourceNumberLimitExceededException",
];

const retry = [
  {
    ErrorEquals: RETRYABLE_GLUE_ERRORS,
    IntervalSeconds: 30,
    MaxAttempts: 5,
    BackoffRate: 2,
    MaxDelaySeconds: 600,
    JitterStrategy: "FULL",
  },
];

/** Lambda errors worth retrying (https://docs.aws.amazon.com/step-functions/latest/dg/bp-lambda-serviceexception.html). */
export const RETRYABLE_LAMBDA_ERRORS = [
  "Lambda.ServiceException",
  "Lambda.AWSLambdaException",
  "Lambda.SdkClientException",
  "Lambda.TooManyRequestsException",
];

/**
 * Errors of the bulk functions worth retrying: what the source answered
 * 429/5xx (TransientSourceError, after the function's own short retries),
 * S3 or KMS throttling, 5xx or timeouts on the run's task list
 * (TransientAwsError, after the SDK's own attempts) and Lambda's own faults.
 * Every other named error (SourceHttpError, ExportDeadlineError,
 * PollLimitError, LineCountMismatchError, ExportErrorFilesError,
 * ManifestError, TokenRequestError, SourceUnauthorizedError, TaskListError...)
 * fails the run. One retrier: a step is tried at most 4 times whatever
 * fails (the history budget, contracts/budgets.ts, counts on it).
 */
export const RETRYABLE_BULK_ERRORS = [
  "TransientSourceError",
  "TransientAwsError",
  ...RETRYABLE_LAMBDA_ERRORS,
];

const bulkRetry = [
  {
    ErrorEquals: RETRYABLE_BULK_ERRORS,
    IntervalSeconds: 5,
    MaxAttempts: 3,
    BackoffRate: 2,
    JitterStrategy: "FULL",
  },
];

const catchAll = [{ ErrorEquals: ["States.ALL"], ResultPath: "$.error", Next: "PublishFailed" }];

/** Glue arguments shared by both jobs. Paths end with '/'. */
const commonArguments = {
  "--run_id.$": "$.runId",
  "--org.$": "$.org",
  "--ingest_date.$": "$.ingestDate",
  "--quarantine_path.$": "$.paths.quarantine",
  "--report_path.$": "$.paths.reports",
};

function event(detailType: string, detail: Record<string, string>, bus: string) {
  return {
    Type: "Task",
    Resource: "arn:aws:states:::events:putEvents",
    Parameters: {
      Entries: [
        { Source: EVENT_SOURCE, DetailType: detailType, EventBusName: bus, Detail: detail },
      ],
    },
    ResultPath: null,
  };
}

export function migrationDefinition(a: MigrationDefinitionArgs) {
  const lake = `s3://${a.lakeBucket}`;
  const valid = {
    And: [
      { Variable: "$.runId", IsPresent: true },
      { Variable: "$.runId", IsString: true },
      { Variable: "$.org", IsPresent: true },
      { Variable: "$.org", IsString: true },
      { Variable: "$.inputPrefix", IsPresent: true },
      { Variable: "$.inputPrefix", IsString: true },
      { Variable: "$.source", IsPresent: true },
      {
        Or: [
          { Variable: "$.source", StringEquals: "legacy" },
          { Variable: "$.source", StringEquals: "fhir" },
          { Variable: "$.source", StringEquals: "registry" },
          ...(a.bulk
            ? [
                {
                  And: [
                    { Variable: "$.source", StringEquals: "bulk" },
                    { Variable: "$.server", IsPresent: true },
                    { Variable: "$.server", IsString: true },
                    { Variable: "$.since", IsPresent: true },
                    {
                      Or: [
                        { Variable: "$.since", IsNull: true },
                        { Variable: "$.since", IsString: true },
                      ],
                    },
                  ],
                },
              ]
            : []),
        ],
      },
    ],
    Next: "Prepare",
  };
  return {
    Comment: "HOTH member migration: legacy extract -> FHIR NDJSON -> curated, tokenized Parquet",
    StartAt: "ValidateInput",
    States: {
      ValidateInput: { Type: "Choice", Choices: [valid], Default: "PublishInvalidInput" },
      PublishInvalidInput: {
        ...event(
          "MigrationFailed",
          {
            "execution.$": "$$.Execution.Id",
            error: "InvalidInput",
            "input.$": "States.JsonToString($)",
          },
          a.eventBusName,
        ),
        Next: "InvalidInput",
      },
      InvalidInput: {
        Type: "Fail",
        Error: "InvalidInput",
        Cause: a.bulk
          ? "Input needs runId, org and inputPrefix (strings) and source 'legacy', 'fhir', 'registry' or 'bulk' (with server and since)"
          : "Input needs runId, org and inputPrefix (strings) and source 'legacy', 'fhir' or 'registry'",
      },
      Prepare: {
        Type: "Pass",
        Parameters: {
          "runId.$": "$.runId",
          "org.$": "$.org",
          "source.$": "$.source",
          "inputPrefix.$": "$.inputPrefix",
          "ingestDate.$": "States.ArrayGetItem(States.StringSplit($$.Execution.StartTime, 'T'), 0)",
          paths: {
            "input.$": `States.Format('${lake}/landing/{}/{}', $.org, $.inputPrefix)`,
            "converted.$": `States.Format('${lake}/landing/{}/converted/{}/', $.org, $.runId)`,
            "curated.$": `States.Format('${lake}/curated/')`,
            "quarantine.$": `States.Format('${lake}/quarantine/{}/{}/', $.org, $.runId)`,
            "reports.$": `States.Format('${lake}/reports/{}/{}/', $.org, $.runId)`,
          },
        },
        Next: "RouteBySource",
      },
      RouteBySource: {
        Type: "Choice",
        Choices: [
          { Variable: "$.source", StringEquals: "legacy", Next: "LegacyToFhir" },
          { Variable: "$.source", StringEquals: "registry", Next: "ExportRegistry" },
          ...(a.bulk ? [{ Variable: "$.source", StringEquals: "bulk", Next: "PrepareBulk" }] : []),
        ],
        Default: "UseInputAsFhir",
      },
      ExportRegistry: {
        Type: "Task",
        Resource: "arn:aws:states:::lambda:invoke",
        Parameters: {
          FunctionName: a.registryExportFunctionArn,
          Payload: { "org.$": "$.org", "runId.$": "$.runId" },
        },
        TimeoutSeconds: a.registryExportTimeoutSeconds + 30,
        ResultSelector: { "prefix.$": "$.Payload.prefix", "counts.$": "$.Payload.counts" },
        ResultPath: "$.registryExport",
        Retry: [
          {
            ErrorEquals: RETRYABLE_LAMBDA_ERRORS,
            IntervalSeconds: 2,
            MaxAttempts: 4,
            BackoffRate: 2,
            JitterStrategy: "FULL",
          },
        ],
        Catch: catchAll,
        Next: "UseExportAsFhir",
      },
      ...(a.bulk ? bulkStates(a.bulk) : {}),
      UseExportAsFhir: {
        Type: "Pass",
        InputPath: "$.registryExport.prefix",
        ResultPath: "$.fhirInput",
        Next: "IngestFhir",
      },
      LegacyToFhir: {
        Type: "Task",
        Resource: "arn:aws:states:::glue:startJobRun.sync",
        Parameters: {
          JobName: a.legacyJobName,
          Arguments: {
            ...commonArguments,
            "--input_path.$": "$.paths.input",
            "--landing_path.$": "$.paths.converted",
          },
        },
        TimeoutSeconds: a.legacyTimeoutSeconds,
        ResultSelector: { "jobRunId.$": "$.Id", "state.$": "$.JobRunState" },
        ResultPath: "$.legacyRun",
        Retry: retry,
        Catch: catchAll,
        Next: "UseConvertedAsFhir",
      },
      UseConvertedAsFhir: {
        Type: "Pass",
        InputPath: "$.paths.converted",
        ResultPath: "$.fhirInput",
        Next: "IngestFhir",
      },
      UseInputAsFhir: {
        Type: "Pass",
        InputPath: "$.paths.input",
        ResultPath: "$.fhirInput",
        Next: "IngestFhir",
      },
      IngestFhir: {
        Type: "Task",
        Resource: "arn:aws:states:::glue:startJobRun.sync",
        Parameters: {
          JobName: a.ingestJobName,
          Arguments: {
            ...commonArguments,
            "--input_path.$": "$.fhirInput",
            "--curated_path.$": "$.paths.curated",
          },
        },
        TimeoutSeconds: a.ingestTimeoutSeconds,
        ResultSelector: { "jobRunId.$": "$.Id", "state.$": "$.JobRunState" },
        ResultPath: "$.ingestRun",
        Retry: retry,
        Catch: catchAll,
        Next: "PublishSucceeded",
      },
      PublishSucceeded: {
        ...event(
          "MigrationSucceeded",
          {
            "runId.$": "$.runId",
            "org.$": "$.org",
            "source.$": "$.source",
            "reportUri.$": "States.Format('{}report.json', $.paths.reports)",
          },
          a.eventBusName,
        ),
        Next: "Succeeded",
      },
      Succeeded: {
        Type: "Pass",
        Parameters: {
          "runId.$": "$.runId",
          "org.$": "$.org",
          "reportUri.$": "States.Format('{}report.json', $.paths.reports)",
        },
        End: true,
      },
      PublishFailed: {
        ...event(
          "MigrationFailed",
          {
            "runId.$": "$.runId",
            "org.$": "$.org",
            "source.$": "$.source",
            "error.$": "$.error.Error",
            "cause.$": "$.error.Cause",
          },
          a.eventBusName,
        ),
        Next: "Failed",
      },
      Failed: { Type: "Fail", ErrorPath: "$.error.Error", CausePath: "$.error.Cause" },
    },
  };
}

const lambdaTask = (arn: string, payload: unknown, timeoutSeconds: number) => ({
  Type: "Task",
  Resource: "arn:aws:states:::lambda:invoke",
  Parameters: { FunctionName: arn, Payload: payload },
  TimeoutSeconds: timeoutSeconds + 30,
  Retry: bulkRetry,
});

/**
 * The bulk branch: kick-off, poll (waiting what the source asks, within the
 * deadline the poll function enforces, and never more than MAX_POLLS polls,
 * counted in the job it hands back; once complete, it writes the task
 * list to `<prefix>/tasks.json` in S3 and answers only its length), download
 * in batches (each invocation streams `downloadConcurrency` files of the
 * list into the run's landing prefix at once, counts their lines and folds
 * them into a running summary; MoreToDownload loops until the list is done),
 * check (error files fail the run), delete the job at the source, then
 * ingest the output files like any FHIR input. Once a job exists, any
 * failure deletes it at the source before the run fails. The state stays the
 * same size whatever the export's size (a cursor and a summary bounded by the
 * resource types), well inside the 256 KiB payload limit; what bounds a run
 * is the execution's history (25,000 events, 7 to 16 per batch): the poll
 * refuses an export of more than handlers/bulk.ts maxExportFiles files
 * (1,250 batches). A Distributed Map would lift that, but the local runner
 * (aws-local-stepfunctions) executes inline Maps only.
 */
function bulkStates(b: BulkDefinitionArgs) {
  const fail = { ErrorEquals: ["States.ALL"], ResultPath: "$.error" };
  const step = b.stepTimeoutSeconds;
  return {
    PrepareBulk: {
      Type: "Pass",
      Parameters: {
        "server.$": "$$.Execution.Input.server",
        "since.$": "$$.Execution.Input.since",
        "prefix.$": "States.Format('landing/{}/bulk/{}', $.org, $.runId)",
      },
      ResultPath: "$.bulk",
      Next: "InitiateExport",
    },
    InitiateExport: {
      ...lambdaTask(
        b.functionArns.initiate,
        {
          "server.$": "$.bulk.server",
          "since.$": "$.bulk.since",
          deadlineSeconds: b.deadlineSeconds,
        },
        step,
      ),
      ResultSelector: { "job.$": "$.Payload" },
      ResultPath: "$.export",
      // No job at the source yet: nothing to delete.
      Catch: [{ ...fail, Next: "PublishFailed" }],
      Next: "PollExport",
    },
    PollExport: {
      ...lambdaTask(
        b.functionArns.poll,
        {
          "job.$": "$.export.job",
          "prefix.$": "$.bulk.prefix",
          batchFiles: b.downloadConcurrency,
        },
        step,
      ),
      // The job comes back with this poll counted: the next poll's input.
      ResultSelector: { "job.$": "$.Payload.job", "poll.$": "$.Payload.poll" },
      ResultPath: "$.export",
      Catch: [{ ...fail, Next: "DeleteAfterFailure" }],
      Next: "ExportComplete",
    },
    ExportComplete: {
      Type: "Choice",
      Choices: [
        { Variable: "$.export.poll.status", StringEquals: "complete", Next: "StartDownloads" },
      ],
      Default: "WaitForExport",
    },
    WaitForExport: { Type: "Wait", SecondsPath: "$.export.poll.waitSeconds", Next: "PollExport" },
    StartDownloads: {
      Type: "Pass",
      Result: {
        cursor: 0,
        done: false,
        summary: { files: 0, resources: 0, byType: {}, errorFiles: 0, issueCodes: {} },
      },
      ResultPath: "$.download",
      Next: "DownloadBatch",
    },
    // A retried batch downloads the same files to the same keys again: an
    // overwrite, and its summary is folded in only once it succeeds.
    DownloadBatch: {
      ...lambdaTask(
        b.functionArns.download,
        {
          "server.$": "$.bulk.server",
          "prefix.$": "$.bulk.prefix",
          "cursor.$": "$.download.cursor",
          batchFiles: b.downloadConcurrency,
          "summary.$": "$.download.summary",
        },
        b.downloadTimeoutSeconds,
      ),
      ResultSelector: {
        "cursor.$": "$.Payload.cursor",
        "done.$": "$.Payload.done",
        "summary.$": "$.Payload.summary",
      },
      ResultPath: "$.download",
      Catch: [{ ...fail, Next: "DeleteAfterFailure" }],
      Next: "MoreToDownload",
    },
    MoreToDownload: {
      Type: "Choice",
      Choices: [{ Variable: "$.download.done", BooleanEquals: false, Next: "DownloadBatch" }],
      Default: "CheckDownloads",
    },
    CheckDownloads: {
      ...lambdaTask(b.functionArns.check, { "summary.$": "$.download.summary" }, step),
      ResultSelector: {
        "files.$": "$.Payload.files",
        "resources.$": "$.Payload.resources",
        "byType.$": "$.Payload.byType",
      },
      ResultPath: "$.bulkReport",
      Catch: [{ ...fail, Next: "DeleteAfterFailure" }],
      Next: "DeleteExport",
    },
    DeleteExport: {
      ...lambdaTask(b.functionArns.delete, { "job.$": "$.export.job" }, step),
      ResultSelector: { "result.$": "$.Payload.result" },
      ResultPath: "$.exportDeleted",
      // A source that cannot delete does not undo a complete, checked download.
      Catch: [{ ErrorEquals: ["States.ALL"], ResultPath: "$.deleteError", Next: "UseInputAsFhir" }],
      Next: "UseInputAsFhir",
    },
    DeleteAfterFailure: {
      ...lambdaTask(b.functionArns.delete, { "job.$": "$.export.job" }, step),
      ResultPath: null,
      // The run fails with the first error either way.
      Catch: [{ ErrorEquals: ["States.ALL"], ResultPath: "$.deleteError", Next: "PublishFailed" }],
      Next: "PublishFailed",
    },
  };
}
