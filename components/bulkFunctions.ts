import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { policy, type Statement } from "../contracts/iam";
import { jwks, publicJwk } from "../handlers/lib/smartBackend";
import { handlerFunction } from "./handlerFunction";
import { KEY_ADMIN_ACTIONS } from "./secretPolicies";

export type BulkStep = "initiate" | "poll" | "download" | "check" | "delete";
export const BULK_STEPS: readonly BulkStep[] = ["initiate", "poll", "download", "check", "delete"];
/** The steps that talk to the source, and so sign client assertions. */
export const SIGNING_STEPS: readonly BulkStep[] = ["initiate", "poll", "download", "delete"];

import {
  BULK_DOWNLOAD_TIMEOUT_SECONDS,
  BULK_STEP_TIMEOUT_SECONDS,
  bulkDownloadMemoryMb,
} from "../contracts/budgets";

export { BULK_DOWNLOAD_TIMEOUT_SECONDS, BULK_STEP_TIMEOUT_SECONDS };

export type SigningKeySpec = "ECC_NIST_P384" | "RSA_3072";

/** KMS's signing algorithm for each key spec (ES384 / RS384 client assertions). */
export const SIGNING_ALGORITHM: Record<SigningKeySpec, string> = {
  ECC_NIST_P384: "ECDSA_SHA_384",
  RSA_3072: "RSASSA_PKCS1_V1_5_SHA_384",
};

export interface BulkSourceSetting {
  name: string;
  fhirBaseUrl: string;
  tokenUrl: string;
  clientId: string;
  scopes: string[];
  groupId?: string;
  types?: string[];
}

export interface BulkStatementScope {
  signingKeyArn: string;
  keySpec: SigningKeySpec;
  lakeBucketArn: string;
  lakeKeyArn: string;
  region: string;
}

/** kms:Sign on the signing key, only for the assertion's algorithm and only of raw messages. */
const signCondition = (spec: SigningKeySpec) => ({
  StringEquals: { "kms:SigningAlgorithm": SIGNING_ALGORITHM[spec], "kms:MessageType": "RAW" },
});

/** SSE-KMS with the lake key, through S3 only. */
const lakeKeyStatement = (s: BulkStatementScope): Statement => ({
  Sid: "LakeKey",
  Effect: "Allow",
  Action: ["kms:GenerateDataKey", "kms:Decrypt"],
  Resource: s.lakeKeyArn,
  Condition: { StringEquals: { "kms:ViaService": `s3.${s.region}.amazonaws.com` } },
});

/** A run's task list (handlers/lib/bulkTaskList.ts), `landing/<org>/bulk/<run>/tasks.json`. */
const taskListArn = (s: BulkStatementScope) => `${s.lakeBucketArn}/landing/*/bulk/*/tasks.json`;

/**
 * What each bulk function may do beyond its logs and traces: the steps that
 * call the source sign assertions; the poll writes the run's task list and
 * nothing else; the download reads that list and writes only into the bulk
 * area of the landing zone. Both encrypt with the lake key through S3 (a
 * multipart upload needs GenerateDataKey and Decrypt:
 * https://docs.aws.amazon.com/AmazonS3/latest/userguide/mpuoverview.html#mpuAndPermissions;
 * reading an SSE-KMS object needs Decrypt).
 * The check step only reads its input: nothing.
 */
export function bulkStatements(step: BulkStep, s: BulkStatementScope): Statement[] {
  const sign: Statement[] = SIGNING_STEPS.includes(step)
    ? [
        {
          Sid: "SignClientAssertions",
          Effect: "Allow",
          Action: "kms:Sign",
          Resource: s.signingKeyArn,
          Condition: signCondition(s.keySpec),
        },
      ]
    : [];
  if (step === "poll") {
    return [
      ...sign,
      { Sid: "WriteTaskList", Effect: "Allow", Action: "s3:PutObject", Resource: taskListArn(s) },
      lakeKeyStatement(s),
    ];
  }
  if (step !== "download") return sign;
  return [
    ...sign,
    {
      Sid: "WriteBulkFiles",
      Effect: "Allow",
      Action: ["s3:PutObject", "s3:AbortMultipartUpload"],
      Resource: `${s.lakeBucketArn}/landing/*/bulk/*`,
    },
    { Sid: "ReadTaskList", Effect: "Allow", Action: "s3:GetObject", Resource: taskListArn(s) },
    lakeKeyStatement(s),
  ];
}

/**
 * The signing key's policy: the deployer administers it (and may read the
 * public key); only the signing functions' roles may sign, with the
 * assertion's algorithm, raw messages only. The roles are named by
 * `aws:PrincipalArn` rather than as principals, so the key can exist before
 * them (a key policy naming a role that does not exist yet is refused:
 * https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html#key-policy-default-allow-root-enable-iam).
 * No one may decrypt or export: an asymmetric private key never leaves KMS.
 */
export function signingKeyPolicy(
  adminArns: string[],
  accountId: string,
  signerRoleArns: string[],
  spec: SigningKeySpec,
) {
  const sign = signCondition(spec);
  return policy(
    {
      Sid: "Administer",
      Effect: "Allow",
      Principal: { AWS: adminArns },
      Action: KEY_ADMIN_ACTIONS,
      Resource: "*",
    },
    {
      Sid: "SignClientAssertions",
      Effect: "Allow",
      Principal: { AWS: `arn:aws:iam::${accountId}:root` },
      Action: "kms:Sign",
      Resource: "*",
      Condition: { ...sign, ArnEquals: { "aws:PrincipalArn": signerRoleArns } },
    },
  );
}

export interface BulkFunctionsArgs {
  prefix: string;
  region: string;
  accountId: pulumi.Input<string>;
  /** Who administers the signing key (the deployer's role). */
  adminArns: pulumi.Input<pulumi.Input<string>[]>;
  /** The stack key: log groups, and SSE-KMS of the downloaded files and task lists. */
  keyArn: pulumi.Input<string>;
  lakeBucket: pulumi.Input<string>;
  lakeBucketArn: pulumi.Input<string>;
  logRetentionDays: number;
  logLevel: string;
  reservedConcurrency: number;
  signingKeySpec: SigningKeySpec;
  deletionWindowInDays: number;
  /** Files one download batch takes at once (`hoth:bulk.downloadConcurrency`): sizes its memory. */
  downloadConcurrency: number;
  sources: BulkSourceSetting[];
}

/**
 * The SMART Backend Services signing key (asymmetric, in KMS) and the five
 * bulk-source functions (handlers/bulk.ts, one per step), each with a role
 * holding exactly its step's statements. Returns the function ARNs for the
 * state machine and the public JWKS for the API and the stack outputs.
 */
export function bulkFunctions(
  name: string,
  args: BulkFunctionsArgs,
  opts: pulumi.CustomResourceOptions,
) {
  const p = args.prefix;
  const fnName = (step: BulkStep) => `${p}-bulk-${step}`;
  const key = new aws.kms.Key(
    `${name}-bulk-signing-key`,
    {
      description: `${p}: signs SMART Backend Services client assertions for Bulk Data sources`,
      keyUsage: "SIGN_VERIFY",
      customerMasterKeySpec: args.signingKeySpec,
      deletionWindowInDays: args.deletionWindowInDays,
      policy: pulumi
        .all([pulumi.output(args.adminArns), args.accountId])
        .apply(([admins, account]) =>
          JSON.stringify(
            signingKeyPolicy(
              admins,
              account,
              SIGNING_STEPS.map((step) => `arn:aws:iam::${account}:role/${fnName(step)}`),
              args.signingKeySpec,
            ),
          ),
        ),
    },
    opts,
  );
  // Read at deploy time, so the functions need kms:Sign only.
  const publicKey = aws.kms.getPublicKeyOutput({ keyId: key.arn }, opts);
  const alg = args.signingKeySpec === "RSA_3072" ? "RS384" : "ES384";
  const keySet = publicKey.publicKey.apply((der) =>
    JSON.stringify(jwks([publicJwk(new Uint8Array(Buffer.from(der, "base64")), alg)])),
  );

  const functionArns = {} as Record<BulkStep, pulumi.Output<string>>;
  const functionNames = {} as Record<BulkStep, pulumi.Output<string>>;
  for (const step of BULK_STEPS) {
    const download = step === "download";
    const lake = download || step === "poll";
    const fn = handlerFunction(
      `${name}-bulk-${step}`,
      {
        handler: "bulk",
        functionName: fnName(step),
        accountId: args.accountId,
        keyArn: args.keyArn,
        logRetentionDays: args.logRetentionDays,
        memorySizeMb: download ? bulkDownloadMemoryMb(args.downloadConcurrency) : 256,
        timeoutSeconds: download ? BULK_DOWNLOAD_TIMEOUT_SECONDS : BULK_STEP_TIMEOUT_SECONDS,
        reservedConcurrency: args.reservedConcurrency,
        environment: {
          BULK_STEP: step,
          LOG_LEVEL: args.logLevel,
          ...(step === "check"
            ? {}
            : {
                BULK_SOURCES: JSON.stringify(args.sources),
                SIGNING_KEY_ARN: key.arn,
                SIGNING_PUBLIC_KEY: publicKey.publicKey,
                SIGNING_KEY_SPEC: args.signingKeySpec,
              }),
          ...(lake ? { LAKE_BUCKET: args.lakeBucket, LAKE_KEY_ARN: args.keyArn } : {}),
        },
      },
      opts,
    );
    if (step !== "check") {
      new aws.iam.RolePolicy(
        `${name}-bulk-${step}-grants`,
        {
          role: fn.role.name,
          policy: pulumi
            .all([key.arn, args.lakeBucketArn, args.keyArn])
            .apply(([signingKeyArn, lakeBucketArn, lakeKeyArn]) =>
              JSON.stringify(
                policy(
                  ...bulkStatements(step, {
                    signingKeyArn,
                    keySpec: args.signingKeySpec,
                    lakeBucketArn,
                    lakeKeyArn,
                    region: args.region,
                  }),
                ),
              ),
            ),
        },
        opts,
      );
    }
    functionArns[step] = fn.fn.arn;
    functionNames[step] = fn.fn.name;
  }
  return { signingKeyArn: key.arn, jwks: keySet, functionArns, functionNames };
}
