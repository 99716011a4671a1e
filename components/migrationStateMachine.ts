import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { assumeRolePolicy, policy, type Statement, xrayStatements } from "../contracts/iam";
import { EVENT_SOURCE, migrationDefinition } from "../contracts/migrationDefinition";
import type { AlertsTopic } from "./alertsTopic";
import {
  BULK_DOWNLOAD_TIMEOUT_SECONDS,
  BULK_STEP_TIMEOUT_SECONDS,
  BULK_STEPS,
  type BulkSourceSetting,
  bulkFunctions,
  type SigningKeySpec,
} from "./bulkFunctions";

export interface MigrationStateMachineArgs {
  prefix: string;
  region: string;
  accountId: pulumi.Input<string>;
  keyArn: pulumi.Input<string>;
  lakeBucket: pulumi.Input<string>;
  legacyJob: { name: pulumi.Input<string>; arn: pulumi.Input<string> };
  ingestJob: { name: pulumi.Input<string>; arn: pulumi.Input<string> };
  /** The member registry's export function (MemberRegistry) and its timeout (s). */
  registryExport: { arn: pulumi.Input<string>; timeoutSeconds: number };
  /** Timeout of each Glue task (s): the Glue job's own timeout. */
  jobTimeoutSeconds: number;
  logRetentionDays: number;
  /** Execution log level. @default "ERROR" */
  logLevel?: "ALL" | "ERROR" | "FATAL" | "OFF";
  schedule: { expression?: string; enabled: boolean; org: string; inputPrefix: string };
  /** The stack's alerts topic: MigrationFailed events go there. */
  alerts: AlertsTopic;
  /**
   * Bulk Data sources: the signing key and the bulk functions
   * (components/bulkFunctions.ts) and the bulk branch of the definition.
   * Without it a `bulk` run is invalid input.
   */
  bulk?: {
    adminArns: pulumi.Input<pulumi.Input<string>[]>;
    lakeBucketArn: pulumi.Input<string>;
    logLevel: string;
    reservedConcurrency: number;
    signingKeySpec: SigningKeySpec;
    deletionWindowInDays: number;
    deadlineSeconds: number;
    downloadConcurrency: number;
    sources: BulkSourceSetting[];
  };
}

/**
 * Statements of the state machine's role: run and stop exactly the two Glue
 * jobs, publish to the project's bus, deliver logs and traces. Log delivery
 * and X-Ray accept no narrower resource:
 * https://docs.aws.amazon.com/step-functions/latest/dg/cw-logs.html#cloudwatch-iam-policy
 */
export function stateMachineStatements(
  jobArns: string[],
  eventBusArn: string,
  functionArns: string[],
): Statement[] {
  return [
    {
      Sid: "RunGlueJobs",
      Effect: "Allow",
      Action: ["glue:StartJobRun", "glue:GetJobRun", "glue:GetJobRuns", "glue:BatchStopJobRun"],
      Resource: jobArns,
    },
    {
      Sid: "InvokeTaskFunctions",
      Effect: "Allow",
      Action: "lambda:InvokeFunction",
      Resource: functionArns,
    },
    { Sid: "PublishEvents", Effect: "Allow", Action: "events:PutEvents", Resource: eventBusArn },
    {
      Sid: "DeliverLogs",
      Effect: "Allow",
      Action: [
        "logs:CreateLogDelivery",
        "logs:GetLogDelivery",
        "logs:UpdateLogDelivery",
        "logs:DeleteLogDelivery",
        "logs:ListLogDeliveries",
        "logs:PutResourcePolicy",
        "logs:DescribeResourcePolicies",
        "logs:DescribeLogGroups",
      ],
      Resource: "*",
    },
    ...xrayStatements(),
  ];
}

/**
 * The migration workflow (Standard): the state machine built by
 * `migrationDefinition`, its role and KMS-encrypted log group, the project's
 * event bus receiving MigrationSucceeded/MigrationFailed, a rule sending
 * failures to the stack's alerts topic, and an EventBridge schedule that starts
 * a migration (on or off per stack).
 */
export class MigrationStateMachine extends pulumi.ComponentResource {
  readonly stateMachineArn: pulumi.Output<string>;
  readonly eventBusName: pulumi.Output<string>;
  /** HOTH's public JWKS (JSON), when the stack has the bulk functions. */
  readonly bulkJwks?: pulumi.Output<string>;
  readonly signingKeyArn?: pulumi.Output<string>;
  /** The bulk step functions (for alarms), with their timeouts (s). */
  readonly bulkFunctions: { id: string; name: pulumi.Output<string>; timeoutSeconds: number }[];

  constructor(
    name: string,
    args: MigrationStateMachineArgs,
    opts?: pulumi.ComponentResourceOptions,
  ) {
    super("hoth:migration:MigrationStateMachine", name, {}, opts);
    if (args.schedule.enabled && !args.schedule.expression) {
      throw new Error(
        `Either [schedule.expression] or [schedule.enabled: false] must be set for MigrationStateMachine '${name}'`,
      );
    }
    const child = { parent: this };
    const p = args.prefix;
    const trust = (service: string) =>
      pulumi.output(args.accountId).apply((a) => JSON.stringify(assumeRolePolicy(service, a)));

    const bus = new aws.cloudwatch.EventBus(`${name}-bus`, { name: `${p}-migrations` }, child);
    const logs = new aws.cloudwatch.LogGroup(
      `${name}-migration-logs`,
      {
        name: `/aws/vendedlogs/states/${p}-migration`,
        retentionInDays: args.logRetentionDays,
        kmsKeyId: args.keyArn,
      },
      child,
    );
    const role = new aws.iam.Role(
      `${name}-role`,
      { name: `${p}-migration`, assumeRolePolicy: trust("states.amazonaws.com") },
      child,
    );
    const bulk = args.bulk
      ? bulkFunctions(
          name,
          {
            ...args.bulk,
            prefix: p,
            region: args.region,
            accountId: args.accountId,
            keyArn: args.keyArn,
            lakeBucket: args.lakeBucket,
            logRetentionDays: args.logRetentionDays,
          },
          child,
        )
      : undefined;
    const bulkArns = pulumi.all(bulk ? BULK_STEPS.map((s) => bulk.functionArns[s]) : []);
    const grant = new aws.iam.RolePolicy(
      `${name}-policy`,
      {
        role: role.name,
        policy: pulumi
          .all([args.legacyJob.arn, args.ingestJob.arn, bus.arn, args.registryExport.arn, bulkArns])
          .apply(([legacy, ingest, busArn, exportArn, bulkFns]) =>
            JSON.stringify(
              policy(...stateMachineStatements([legacy, ingest], busArn, [exportArn, ...bulkFns])),
            ),
          ),
      },
      child,
    );

    const machine = new aws.sfn.StateMachine(
      `${name}-machine`,
      {
        name: `${p}-migration`,
        type: "STANDARD",
        roleArn: role.arn,
        definition: pulumi
          .all([
            args.legacyJob.name,
            args.ingestJob.name,
            args.lakeBucket,
            bus.name,
            args.registryExport.arn,
            bulkArns,
          ])
          .apply(([legacyJobName, ingestJobName, lakeBucket, eventBusName, exportArn, bulkFns]) =>
            JSON.stringify(
              migrationDefinition({
                ...(args.bulk
                  ? {
                      bulk: {
                        functionArns: Object.fromEntries(
                          BULK_STEPS.map((s, i) => [s, bulkFns[i]]),
                        ) as Record<(typeof BULK_STEPS)[number], string>,
                        deadlineSeconds: args.bulk.deadlineSeconds,
                        downloadConcurrency: args.bulk.downloadConcurrency,
                        stepTimeoutSeconds: BULK_STEP_TIMEOUT_SECONDS,
                        downloadTimeoutSeconds: BULK_DOWNLOAD_TIMEOUT_SECONDS,
                      },
                    }
                  : {}),
                legacyJobName,
                ingestJobName,
                registryExportFunctionArn: exportArn,
                registryExportTimeoutSeconds: args.registryExport.timeoutSeconds,
                lakeBucket,
                eventBusName,
                legacyTimeoutSeconds: args.jobTimeoutSeconds,
                ingestTimeoutSeconds: args.jobTimeoutSeconds,
              }),
            ),
          ),
        // Execution data holds organisation ids and paths, never patient data;
        // it is still left out of the logs.
        loggingConfiguration: {
          logDestination: pulumi.interpolate`${logs.arn}:*`,
          includeExecutionData: false,
          level: args.logLevel ?? "ERROR",
        },
        tracingConfiguration: { enabled: true },
      },
      { ...child, dependsOn: [grant] },
    );

    // Scheduled runs: the event id becomes the run id.
    const schedulerRole = new aws.iam.Role(
      `${name}-schedule-role`,
      { name: `${p}-migration-schedule`, assumeRolePolicy: trust("events.amazonaws.com") },
      child,
    );
    new aws.iam.RolePolicy(
      `${name}-schedule-policy`,
      {
        role: schedulerRole.name,
        policy: machine.arn.apply((arn) =>
          JSON.stringify(
            policy({
              Sid: "StartMigration",
              Effect: "Allow",
              Action: "states:StartExecution",
              Resource: arn,
            }),
          ),
        ),
      },
      child,
    );
    const schedule = new aws.cloudwatch.EventRule(
      `${name}-schedule`,
      {
        name: `${p}-migration-schedule`,
        description: "Starts a scheduled migration",
        scheduleExpression: args.schedule.expression ?? "rate(1 day)",
        state: args.schedule.enabled ? "ENABLED" : "DISABLED",
      },
      child,
    );
    new aws.cloudwatch.EventTarget(
      `${name}-schedule-target`,
      {
        rule: schedule.name,
        arn: machine.arn,
        roleArn: schedulerRole.arn,
        inputTransformer: {
          inputPaths: { id: "$.id" },
          inputTemplate: JSON.stringify({
            runId: "scheduled-<id>",
            org: args.schedule.org,
            source: "fhir",
            inputPrefix: args.schedule.inputPrefix,
          }),
        },
      },
      child,
    );

    // Failures -> the stack's alerts topic.
    const failures = new aws.cloudwatch.EventRule(
      `${name}-migration-failures`,
      {
        name: `${p}-migration-failures`,
        eventBusName: bus.name,
        eventPattern: JSON.stringify({
          source: [EVENT_SOURCE],
          "detail-type": ["MigrationFailed"],
        }),
      },
      child,
    );
    args.alerts.routeRule(failures, `${name}-migration-failures-to-sns`, child, bus.name);

    this.stateMachineArn = machine.arn;
    this.eventBusName = bus.name;
    this.bulkJwks = bulk?.jwks;
    this.signingKeyArn = bulk?.signingKeyArn;
    this.bulkFunctions = bulk
      ? BULK_STEPS.map((step) => ({
          id: `bulk-${step}`,
          name: bulk.functionNames[step],
          timeoutSeconds:
            step === "download" ? BULK_DOWNLOAD_TIMEOUT_SECONDS : BULK_STEP_TIMEOUT_SECONDS,
        }))
      : [];
    this.registerOutputs({
      bulkJwks: this.bulkJwks,
      signingKeyArn: this.signingKeyArn,
      stateMachineArn: this.stateMachineArn,
      eventBusName: this.eventBusName,
    });
  }
}
