/**
 * The migration state machine's definition (Amazon States Language, JSONPath),
 * built by a pure function from what it needs, so the same definition is
 * deployed by MigrationStateMachine and executed by the local runner.
 *
 * Input: `{ "runId", "org", "source": "legacy" | "fhir" | "registry", "inputPrefix" }`.
 * `inputPrefix` is relative to the organisation's landing area
 * (`s3://<lake>/landing/<org>/`), so a run can only read its own tenant's data.
 * A `registry` run first snapshots the organisation's committed members
 * (the registry export function) and ingests that snapshot.
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
        Cause:
          "Input needs runId, org and inputPrefix (strings) and source 'legacy', 'fhir' or 'registry'",
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
