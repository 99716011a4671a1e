/**
 * Typed IAM policy documents and pure builders for the statements the
 * components share. Every builder takes concrete ARNs and returns plain data,
 * so the exact statements can be asserted in tests without Pulumi.
 */

export type Principal = "*" | { AWS?: string | string[]; Service?: string | string[] };
export type Condition = Record<string, Record<string, string | string[] | boolean>>;

export interface Statement {
  Sid?: string;
  Effect: "Allow" | "Deny";
  Principal?: Principal;
  Action: string | string[];
  /** Absent only in trust policies. */
  Resource?: string | string[];
  Condition?: Condition;
}

export interface PolicyDocument {
  Version: "2012-10-17";
  Statement: Statement[];
}

export const policy = (...statements: Statement[]): PolicyDocument => ({
  Version: "2012-10-17",
  Statement: statements,
});

/** Trust policy letting one AWS service assume a role, confined to this account. */
export function assumeRolePolicy(service: string, accountId: string): PolicyDocument {
  return policy({
    Effect: "Allow",
    Principal: { Service: service },
    Action: "sts:AssumeRole",
    // Confused-deputy protection:
    // https://docs.aws.amazon.com/IAM/latest/UserGuide/confused-deputy.html
    Condition: { StringEquals: { "aws:SourceAccount": accountId } },
  });
}

/**
 * Read exactly one secret, and decrypt it only through Secrets Manager and only
 * for that secret (the encryption context Secrets Manager sets:
 * https://docs.aws.amazon.com/secretsmanager/latest/userguide/security-encryption.html).
 */
export function secretReadStatements(
  secretArn: string,
  keyArn: string,
  region: string,
): Statement[] {
  return [
    {
      Sid: "ReadSecret",
      Effect: "Allow",
      Action: ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
      Resource: secretArn,
    },
    {
      Sid: "DecryptSecret",
      Effect: "Allow",
      Action: "kms:Decrypt",
      Resource: keyArn,
      Condition: {
        StringEquals: {
          "kms:ViaService": `secretsmanager.${region}.amazonaws.com`,
          "kms:EncryptionContext:SecretARN": secretArn,
        },
      },
    },
  ];
}

/** Write to one log group's streams (the group itself is created by Pulumi). */
export function logWriteStatements(logGroupArn: string): Statement[] {
  return [
    {
      Sid: "WriteLogs",
      Effect: "Allow",
      Action: ["logs:CreateLogStream", "logs:PutLogEvents"],
      Resource: `${logGroupArn}:*`,
    },
  ];
}

/**
 * X-Ray trace upload has no resource-level permissions, so `*` is the only
 * valid resource:
 * https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsx-ray.html
 */
export function xrayStatements(): Statement[] {
  return [
    {
      Sid: "WriteTraces",
      Effect: "Allow",
      Action: ["xray:PutTraceSegments", "xray:PutTelemetryRecords"],
      Resource: "*",
    },
  ];
}

/** Deny every request of one service (`s3`, `secretsmanager`) made without TLS. */
export function denyInsecureTransport(service: string, resources: string[]): Statement {
  return {
    Sid: "DenyInsecureTransport",
    Effect: "Deny",
    Principal: "*",
    Action: `${service}:*`,
    Resource: resources,
    Condition: { Bool: { "aws:SecureTransport": "false" } },
  };
}

/** Normalises `Action`/`Resource` fields, which IAM allows as string or list. */
export const asList = (v: string | string[] | undefined): string[] =>
  v === undefined ? [] : Array.isArray(v) ? v : [v];
