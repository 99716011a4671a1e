import type { Statement } from "./iam";

export interface AppMigrationScope {
  stateMachineArn: string;
  lakeBucketArn: string;
  keyArn: string;
  region: string;
}

/**
 * What the app's migration routes need: start executions of the one state
 * machine, describe only its executions, read run reports.
 */
export function appMigrationStatements(s: AppMigrationScope): Statement[] {
  return [
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
      Action: "kms:Decrypt",
      Resource: s.keyArn,
      Condition: { StringEquals: { "kms:ViaService": `s3.${s.region}.amazonaws.com` } },
    },
  ];
}
