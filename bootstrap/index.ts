import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { secureBucket } from "../components/secureBucket";
import { assumeRolePolicy, policy } from "../contracts/iam";

/**
 * One-time account setup, run by hand with a local file backend:
 * - the S3 bucket that keeps every stack's Pulumi state (versioned, SSE-KMS,
 *   TLS-only, public access blocked, `protect`ed against deletion);
 * - the KMS key and alias that encrypt that state and Pulumi secrets
 *   (`--secrets-provider awskms://alias/hoth-pulumi-secrets`);
 * - optionally the CodeStar connection the pipelines read from;
 * - API Gateway's account-wide CloudWatch Logs role, which stage access logs
 *   need and which must exist once per account and region.
 */
interface BootstrapArgs {
  region: string;
  accountId: pulumi.Input<string>;
  /** Principals that administer the key (the operator running bootstrap). */
  adminArns: pulumi.Input<pulumi.Input<string>[]>;
  createConnection: boolean;
}

const SECRETS_ALIAS = "alias/hoth-pulumi-secrets";

function bootstrap(args: BootstrapArgs, opts: pulumi.CustomResourceOptions = {}) {
  const key = new aws.kms.Key(
    "pulumi-secrets",
    {
      description: "HOTH: Pulumi state and secrets",
      enableKeyRotation: true,
      deletionWindowInDays: 30,
      policy: pulumi.all([args.accountId, args.adminArns]).apply(([accountId, admins]) =>
        JSON.stringify(
          policy(
            {
              Sid: "KeyAdministration",
              Effect: "Allow",
              Principal: { AWS: admins },
              Action: ["kms:*"],
              Resource: "*",
            },
            {
              // Deploy roles get kms:Encrypt/Decrypt on this key in IAM (DeliveryPipeline).
              Sid: "UseByAccountRolesGrantedInIam",
              Effect: "Allow",
              Principal: { AWS: `arn:aws:iam::${accountId}:root` },
              Action: ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
              Resource: "*",
              Condition: { StringEquals: { "kms:CallerAccount": accountId } },
            },
          ),
        ),
      ),
    },
    { ...opts, protect: true },
  );
  new aws.kms.Alias("pulumi-secrets-alias", { name: SECRETS_ALIAS, targetKeyId: key.keyId }, opts);

  const stateBucketName = pulumi.interpolate`hoth-pulumi-state-${args.accountId}`;
  const state = secureBucket(
    "state",
    {
      bucket: stateBucketName,
      keyArn: key.arn,
      versioning: true,
      lifecycleRules: [
        {
          id: "expire-old-state-versions",
          status: "Enabled",
          filter: {},
          noncurrentVersionExpiration: { noncurrentDays: 365 },
        },
      ],
    },
    { ...opts, protect: true },
  );

  const connection = args.createConnection
    ? new aws.codestarconnections.Connection(
        "source",
        { name: "hoth-source", providerType: "GitHub" },
        opts,
      )
    : undefined;

  const apiGatewayLogsRole = new aws.iam.Role(
    "apigateway-cloudwatch",
    {
      name: "hoth-apigateway-cloudwatch",
      assumeRolePolicy: pulumi
        .output(args.accountId)
        .apply((a) => JSON.stringify(assumeRolePolicy("apigateway.amazonaws.com", a))),
      managedPolicyArns: [
        "arn:aws:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs",
      ],
    },
    opts,
  );
  new aws.apigateway.Account(
    "apigateway-account",
    { cloudwatchRoleArn: apiGatewayLogsRole.arn },
    opts,
  );

  return {
    stateBucket: state.bucket,
    backendUrl: pulumi.interpolate`s3://${stateBucketName}`,
    secretsKeyArn: key.arn,
    secretsProvider: `awskms://${SECRETS_ALIAS}?region=${args.region}`,
    connectionArn: connection?.arn,
  };
}

function fromConfig() {
  const config = new pulumi.Config("hoth-bootstrap");
  const region = new pulumi.Config("aws").require("region");
  const provider = new aws.Provider("bootstrap", {
    region: region as aws.Region,
    defaultTags: {
      tags: {
        project: "hoth",
        stack: "bootstrap",
        owner: config.require("owner"),
        "data-classification": "internal",
      },
    },
  });
  const caller = aws.getCallerIdentityOutput({}, { provider });
  const operator = aws.iam.getSessionContextOutput({ arn: caller.arn }, { provider });
  return bootstrap(
    {
      region,
      accountId: caller.accountId,
      adminArns: [operator.issuerArn],
      createConnection: config.getBoolean("createConnection") ?? true,
    },
    { provider },
  );
}

export = Object.assign(fromConfig, { bootstrap });
