import type { Statement } from "../contracts/iam";

/** The item actions the app's member routes use, and nothing else (no Scan, no table actions). */
export const REGISTRY_APP_ACTIONS = [
  "dynamodb:GetItem",
  "dynamodb:BatchGetItem",
  "dynamodb:Query",
  // TransactWriteItems is authorised per action it holds:
  // https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis-iam.html
  "dynamodb:PutItem",
  "dynamodb:DeleteItem",
  "dynamodb:ConditionCheckItem",
];

/**
 * What the export reads: the heads of one organisation (Query), the records of
 * the transactions that wrote them (BatchGetItem) and re-reads (GetItem).
 */
export const REGISTRY_EXPORT_ACTIONS = [
  "dynamodb:Query",
  "dynamodb:BatchGetItem",
  "dynamodb:GetItem",
];

/** Use of the table's key through DynamoDB only (the table's SSE with the stack key). */
export function registryKeyStatement(keyArn: string, region: string, actions: string[]): Statement {
  return {
    Sid: "RegistryKey",
    Effect: "Allow",
    Action: actions,
    Resource: keyArn,
    Condition: { StringEquals: { "kms:ViaService": `dynamodb.${region}.amazonaws.com` } },
  };
}

export interface RegistryScope {
  tableArn: string;
  keyArn: string;
  lakeBucketArn: string;
  region: string;
}

/** The app function's statements for the member routes. */
export function registryAppStatements(s: RegistryScope): Statement[] {
  return [
    {
      Sid: "MemberRegistry",
      Effect: "Allow",
      Action: REGISTRY_APP_ACTIONS,
      Resource: s.tableArn,
    },
    registryKeyStatement(s.keyArn, s.region, ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"]),
  ];
}

/**
 * The export function's statements: read the table, write snapshots under
 * `landing/<org>/registry/` (SSE-KMS with the stack key, through S3).
 */
export function registryExportStatements(s: RegistryScope): Statement[] {
  return [
    {
      Sid: "ReadRegistry",
      Effect: "Allow",
      Action: REGISTRY_EXPORT_ACTIONS,
      Resource: s.tableArn,
    },
    {
      Sid: "WriteSnapshots",
      Effect: "Allow",
      Action: "s3:PutObject",
      Resource: `${s.lakeBucketArn}/landing/*/registry/*`,
    },
    registryKeyStatement(s.keyArn, s.region, ["kms:Decrypt"]),
    {
      Sid: "LakeKey",
      Effect: "Allow",
      Action: ["kms:GenerateDataKey", "kms:Decrypt"],
      Resource: s.keyArn,
      Condition: { StringEquals: { "kms:ViaService": `s3.${s.region}.amazonaws.com` } },
    },
  ];
}
