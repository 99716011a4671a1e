import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { bundleHandler, type HandlerName } from "../contracts/bundle";
import { assumeRolePolicy, logWriteStatements, policy, xrayStatements } from "../contracts/iam";

export interface HandlerFunctionArgs {
  /** Which bundle (contracts/bundle.ts) the function runs. */
  handler: HandlerName;
  /** Physical function name; also names its role and log group. */
  functionName: string;
  accountId: pulumi.Input<string>;
  /** KMS key for the log group. */
  keyArn: pulumi.Input<string>;
  logRetentionDays: number;
  memorySizeMb: number;
  timeoutSeconds: number;
  reservedConcurrency: number;
  environment: pulumi.Input<Record<string, pulumi.Input<string>>>;
}

/**
 * One synchronous, API-invoked Lambda: its own role (logs and traces only;
 * callers add grants), a KMS-encrypted log group with retention, and the
 * esbuild bundle shipped as an asset archive. Tagged `invocation=synchronous`
 * for the compliance pack: API Gateway is its only caller, so failures reach
 * the client and no dead-letter queue applies.
 */
export function handlerFunction(
  name: string,
  args: HandlerFunctionArgs,
  opts: pulumi.CustomResourceOptions,
) {
  const role = new aws.iam.Role(
    `${name}-role`,
    {
      name: args.functionName,
      assumeRolePolicy: pulumi
        .output(args.accountId)
        .apply((id) => JSON.stringify(assumeRolePolicy("lambda.amazonaws.com", id))),
    },
    opts,
  );
  const logGroup = new aws.cloudwatch.LogGroup(
    `${name}-logs`,
    {
      name: `/aws/lambda/${args.functionName}`,
      retentionInDays: args.logRetentionDays,
      kmsKeyId: args.keyArn,
    },
    opts,
  );
  const basics = new aws.iam.RolePolicy(
    `${name}-logs-traces`,
    {
      role: role.name,
      policy: logGroup.arn.apply((arn) =>
        JSON.stringify(policy(...logWriteStatements(arn), ...xrayStatements())),
      ),
    },
    opts,
  );
  const bundle = bundleHandler(args.handler);
  const fn = new aws.lambda.Function(
    `${name}-fn`,
    {
      name: args.functionName,
      role: role.arn,
      runtime: aws.lambda.Runtime.NodeJS22dX,
      architectures: ["arm64"],
      handler: "index.handler",
      code: new pulumi.asset.AssetArchive({
        "index.js": new pulumi.asset.StringAsset(bundle.code),
        "index.js.map": new pulumi.asset.StringAsset(bundle.sourceMap),
      }),
      memorySize: args.memorySizeMb,
      timeout: args.timeoutSeconds,
      reservedConcurrentExecutions: args.reservedConcurrency,
      tracingConfig: { mode: "Active" },
      loggingConfig: { logFormat: "JSON", logGroup: logGroup.name },
      environment: {
        variables: pulumi.output(args.environment).apply((env) => ({
          NODE_OPTIONS: "--enable-source-maps",
          ...env,
        })),
      },
      tags: { invocation: "synchronous" },
    },
    { ...opts, dependsOn: [basics, logGroup] },
  );
  return { fn, role, logGroup };
}
