import type { Statement } from "./iam";

export interface AppRouteScope {
  stateMachineArn: string;
  lakeBucketArn: string;
  keyArn: string;
  region: string;
}

/**
 * What the app's routes need: register members (landing NDJSON, the
 * registry of latest versions, idempotency records), start executions of the
 * one state machine and describe only its executions, read run reports.
 */
export function appRouteStatements(s: AppRouteScope): Statement[] {
  return [
    {
      // DeleteObject only to undo a registration that could not be completed.
      Sid: "RegisterMembers",
      Effect: "Allow",
      Action: ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
      Resource: [
        `${s.lakeBucketArn}/landing/*/members/*`,
        `${s.lakeBucketArn}/registry/*`,
        `${s.lakeBucketArn}/idempotency/*`,
      ],
    },
    {
      Sid: "StartMigrations",
      Effect: "Allow",
      Action: "states:StartExecution",
      Resource: s.stateMachineArn,
    },
    {
      Sid: "FollowMigrations",
      Effect: "Allow",
      Action: "states:DescribeExecution",
      Resource: `${s.stateMachineArn.replace(":stateMachine:", ":execution:")}:*`,
    },
    {
      Sid: "ReadReports",
      Effect: "Allow",
      Action: "s3:GetObject",
      Resource: `${s.lakeBucketArn}/reports/*`,
    },
    {
      Sid: "LakeKey",
      Effect: "Allow",
      Action: ["kms:Decrypt", "kms:GenerateDataKey"],
      Resource: s.keyArn,
      Condition: { StringEquals: { "kms:ViaService": `s3.${s.region}.amazonaws.com` } },
    },
  ];
}
