import { type PolicyDocument, policy, type Statement } from "../contracts/iam";
import { cloudTrailKeyStatements } from "./auditPolicies";

/**
 * Pure builders for the SecretStore's key policy and secret resource
 * policies, kept apart from the component so the exact statements can be
 * tested and reviewed as data.
 */

export interface KeyPolicyArgs {
  accountId: string;
  region: string;
  /** Principals that administer (but cannot use) the key: the deployer. */
  adminArns: string[];
  /** AWS services this key may be used through by IAM principals of the account. */
  viaServices: string[];
  /** Name prefix of the log groups CloudWatch Logs may encrypt with the key. */
  logGroupPrefix: string;
  /**
   * Service principals that write to resources encrypted with the key on the
   * account's behalf (EventBridge publishing to an encrypted SNS topic:
   * https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html).
   */
  servicePrincipals?: string[];
  /** Trails that encrypt their log files with the key. @default [] */
  cloudTrailArns?: string[];
}

export const KEY_ADMIN_ACTIONS = [
  "kms:Create*",
  "kms:Describe*",
  "kms:Enable*",
  "kms:List*",
  "kms:Put*",
  "kms:Update*",
  "kms:Revoke*",
  "kms:Disable*",
  "kms:Get*",
  "kms:Delete*",
  "kms:TagResource",
  "kms:UntagResource",
  "kms:ScheduleKeyDeletion",
  "kms:CancelKeyDeletion",
  "kms:RotateKeyOnDemand",
];

const KEY_USE_ACTIONS = [
  "kms:Encrypt",
  "kms:Decrypt",
  "kms:ReEncrypt*",
  "kms:GenerateDataKey*",
  "kms:DescribeKey",
];

/**
 * The key policy. In a key policy `Resource: "*"` means "this key"
 * (https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-overview.html).
 * Nobody may use the key directly: IAM principals of this account only through
 * the named services (and still only with an IAM grant on this key), and
 * CloudWatch Logs only for this stack's log groups
 * (https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/encrypt-log-data-kms.html).
 */
export function keyPolicy(a: KeyPolicyArgs): PolicyDocument {
  return policy(
    {
      Sid: "KeyAdministration",
      Effect: "Allow",
      Principal: { AWS: a.adminArns },
      Action: KEY_ADMIN_ACTIONS,
      Resource: "*",
    },
    {
      Sid: "UseThroughNamedServices",
      Effect: "Allow",
      Principal: { AWS: `arn:aws:iam::${a.accountId}:root` },
      Action: KEY_USE_ACTIONS,
      Resource: "*",
      Condition: {
        StringEquals: {
          "kms:CallerAccount": a.accountId,
          "kms:ViaService": a.viaServices.map((s) => `${s}.${a.region}.amazonaws.com`),
        },
      },
    },
    ...(a.viaServices.includes("dynamodb")
      ? [
          {
            // A table encrypted with this key holds a grant for DynamoDB, created
            // by whoever creates the table (the deployer):
            // https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/encryption.usagenotes.html
            Sid: "DynamoDBTableGrants",
            Effect: "Allow" as const,
            Principal: { AWS: `arn:aws:iam::${a.accountId}:root` },
            Action: "kms:CreateGrant",
            Resource: "*",
            Condition: {
              StringEquals: {
                "kms:CallerAccount": a.accountId,
                "kms:ViaService": `dynamodb.${a.region}.amazonaws.com`,
              },
              Bool: { "kms:GrantIsForAWSResource": true },
            },
          },
        ]
      : []),
    {
      Sid: "CloudWatchLogsForThisStack",
      Effect: "Allow",
      Principal: { Service: `logs.${a.region}.amazonaws.com` },
      Action: KEY_USE_ACTIONS,
      Resource: "*",
      Condition: {
        ArnLike: {
          "kms:EncryptionContext:aws:logs:arn": `arn:aws:logs:${a.region}:${a.accountId}:log-group:*${a.logGroupPrefix}*`,
        },
      },
    },
    ...(a.servicePrincipals?.length
      ? [
          {
            Sid: "ServicesWritingEncryptedData",
            Effect: "Allow" as const,
            Principal: { Service: a.servicePrincipals },
            Action: ["kms:GenerateDataKey*", "kms:Decrypt"],
            Resource: "*",
            Condition: { StringEquals: { "aws:SourceAccount": a.accountId } },
          },
        ]
      : []),
    ...cloudTrailKeyStatements(a.accountId, a.cloudTrailArns ?? []),
  );
}

/**
 * A secret's resource policy: no access without TLS, and its value readable
 * only by the named roles and the administrators (Pulumi reads the version on
 * refresh). A Deny on `aws:PrincipalArn` holds even against principals whose
 * IAM policies allow more
 * (https://docs.aws.amazon.com/secretsmanager/latest/userguide/auth-and-access_examples_cross.html).
 */
export function secretResourcePolicy(readerArns: string[], adminArns: string[]): PolicyDocument {
  const statements: Statement[] = [
    {
      Sid: "DenyInsecureTransport",
      Effect: "Deny",
      Principal: "*",
      Action: "secretsmanager:*",
      Resource: "*",
      Condition: { Bool: { "aws:SecureTransport": "false" } },
    },
    {
      Sid: "DenyReadOutsideNamedRoles",
      Effect: "Deny",
      Principal: "*",
      Action: "secretsmanager:GetSecretValue",
      Resource: "*",
      Condition: { ArnNotEquals: { "aws:PrincipalArn": [...readerArns, ...adminArns] } },
    },
  ];
  return policy(...statements);
}
