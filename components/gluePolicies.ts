import type { GlueJobKind } from "../contracts/glueJobNames";
import type { Statement } from "../contracts/iam";

/**
 * IAM statements of the two Glue job roles, as pure data. Each job may read
 * only its inputs and write only its outputs under the data lake's prefixes.
 */
export interface GlueScope {
  prefix: string;
  region: string;
  accountId: string;
  lakeBucket: string;
  keyArn: string;
}

export type { GlueJobKind };

/** What each job reads and writes (key prefixes in the lake). */
export const JOB_IO: Record<GlueJobKind, { read: string[]; write: string[] }> = {
  // legacy extracts and their FHIR output both live under landing/<org>/
  legacy: {
    read: ["landing/*", "scripts/*"],
    write: ["landing/*/converted/*", "quarantine/*", "reports/*", "tmp/legacy/*"],
  },
  ingest: {
    read: ["landing/*", "scripts/*"],
    write: ["curated/*", "quarantine/*", "reports/*", "tmp/ingest/*"],
  },
};

export function glueJobStatements(kind: GlueJobKind, s: GlueScope): Statement[] {
  const lake = `arn:aws:s3:::${s.lakeBucket}`;
  const io = JOB_IO[kind];
  const prefixes = [...new Set([...io.read, ...io.write].map((k) => k.split("/")[0]))];
  return [
    {
      Sid: "ListLake",
      Effect: "Allow",
      Action: "s3:ListBucket",
      Resource: lake,
      Condition: { StringLike: { "s3:prefix": prefixes.map((p) => `${p}/*`) } },
    },
    {
      Sid: "ReadInputs",
      Effect: "Allow",
      Action: "s3:GetObject",
      Resource: io.read.map((k) => `${lake}/${k}`),
    },
    {
      // Spark commits through temporary objects it deletes again.
      Sid: "WriteOutputs",
      Effect: "Allow",
      Action: ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
      Resource: io.write.map((k) => `${lake}/${k}`),
    },
    {
      Sid: "LakeKey",
      Effect: "Allow",
      Action: ["kms:Decrypt", "kms:GenerateDataKey"],
      Resource: s.keyArn,
      Condition: { StringEquals: { "kms:ViaService": `s3.${s.region}.amazonaws.com` } },
    },
    {
      // Job bookmarks (CSE-KMS) and encrypted continuous logs, per the security configuration.
      Sid: "GlueEncryption",
      Effect: "Allow",
      Action: ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey"],
      Resource: s.keyArn,
      Condition: { StringEquals: { "kms:ViaService": `glue.${s.region}.amazonaws.com` } },
    },
    {
      Sid: "WriteLogs",
      Effect: "Allow",
      Action: ["logs:CreateLogStream", "logs:PutLogEvents", "logs:AssociateKmsKey"],
      Resource: `arn:aws:logs:${s.region}:${s.accountId}:log-group:/aws-glue/*${s.prefix}*`,
    },
  ];
}
