import type { Statement } from "../contracts/iam";

export interface AppRouteScope {
  stateMachineArn: string;
  lakeBucketArn: string;
  keyArn: string;
  region: string;
}

/**
 * What the migration routes need: start executions of the one state machine
 * and describe only its executions, read run reports, sign upload forms for
 * the uploads area of the landing zone. (The member routes' statements are
 * registryPolicies.ts's `registryAppStatements`.)
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
    {
      // A pre-signed POST acts with the signer's permissions: S3 checks, at
      // upload time, that the app's role may put that key with that key
      // (https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-UsingHTTPPOST.html).
      // The route pins the organisation from the token; the role reaches no
      // other part of the landing zone.
      Sid: "SignUploads",
      Effect: "Allow",
      Action: "s3:PutObject",
      Resource: `${s.lakeBucketArn}/landing/*/uploads/*`,
    },
    {
      // POST /migrations checks that an upload it is asked to migrate exists
      // in the caller's landing area (keys only; no object is read).
      Sid: "FindUploads",
      Effect: "Allow",
      Action: "s3:ListBucket",
      Resource: s.lakeBucketArn,
      Condition: { StringLike: { "s3:prefix": "landing/*/uploads/*" } },
    },
    {
      // SSE-KMS of an upload: S3 asks KMS for a data key on the signer's behalf.
      Sid: "UploadKey",
      Effect: "Allow",
      Action: "kms:GenerateDataKey",
      Resource: s.keyArn,
      Condition: { StringEquals: { "kms:ViaService": `s3.${s.region}.amazonaws.com` } },
    },
  ];
}
