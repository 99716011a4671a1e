import type { Statement } from "../contracts/iam";

export interface AppRouteScope {
  stateMachineArn: string;
  lakeBucketArn: string;
  keyArn: string;
  region: string;
}

/**
 * What the migration routes need: start executions of the one state machine
 * and describe only its executions, read run reports. (The member routes'
 * statements are registryPolicies.ts's `registryAppStatements`.)
 */
export function appRouteStatements(s: AppRouteScope): Statement[] {
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
      // Reports are only read: no data key is generated.
      Sid: "LakeKey",
      Effect: "Allow",
      Action: "kms:Decrypt",
      Resource: s.keyArn,
      Condition: { StringEquals: { "kms:ViaService": `s3.${s.region}.amazonaws.com` } },
    },
  ];
}
