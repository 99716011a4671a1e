import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { denyInsecureTransport, policy, type Statement } from "../contracts/iam";

export interface SecureBucketArgs {
  /** Physical bucket name. */
  bucket: pulumi.Input<string>;
  /** KMS key for default encryption (SSE-KMS with an S3 bucket key); required unless `accessLogDestination`. */
  keyArn?: pulumi.Input<string>;
  /**
   * The bucket receives S3 server access logs. S3 delivers them only to a
   * destination whose default encryption is SSE-S3: "Default server-side
   * encryption with AWS KMS keys (SSE-KMS) is not supported"
   * (https://docs.aws.amazon.com/AmazonS3/latest/userguide/enable-server-access-logging.html),
   * so such a bucket is encrypted with SSE-S3; the policy pack accepts that
   * only for a bucket that is a BucketLogging target. @default false
   */
  accessLogDestination?: boolean;
  /** Keep every version of every object. @default false */
  versioning?: boolean;
  /** Lifecycle rules, as `aws.s3.BucketLifecycleConfiguration` takes them. */
  lifecycleRules?: aws.types.input.s3.BucketLifecycleConfigurationRule[];
  /** Statements added to the bucket policy after the TLS-only deny. */
  extraStatements?: (bucketArn: string) => pulumi.Input<Statement[]>;
  /** Empty the bucket on delete (artifacts only). @default false */
  forceDestroy?: boolean;
}

/**
 * An S3 bucket with the settings every HOTH bucket must have (and the policy
 * pack checks): SSE-KMS by default, all public access blocked, a policy that
 * denies requests without TLS.
 */
export function secureBucket(
  name: string,
  args: SecureBucketArgs,
  opts: pulumi.CustomResourceOptions,
): aws.s3.Bucket {
  return secureBucketParts(name, args, opts).bucket;
}

/** `secureBucket`, also returning its policy (for what must wait for it, like a trail). */
export function secureBucketParts(
  name: string,
  args: SecureBucketArgs,
  opts: pulumi.CustomResourceOptions,
) {
  if (!args.accessLogDestination && !args.keyArn) {
    throw new Error(
      `Either [keyArn] or [accessLogDestination: true] must be set for bucket '${name}'`,
    );
  }
  const bucket = new aws.s3.Bucket(
    name,
    { bucket: args.bucket, forceDestroy: args.forceDestroy ?? false },
    opts,
  );
  new aws.s3.BucketServerSideEncryptionConfiguration(
    `${name}-sse`,
    {
      bucket: bucket.id,
      rules: [
        {
          applyServerSideEncryptionByDefault: args.accessLogDestination
            ? { sseAlgorithm: "AES256" }
            : { sseAlgorithm: "aws:kms", kmsMasterKeyId: args.keyArn },
          bucketKeyEnabled: !args.accessLogDestination,
        },
      ],
    },
    opts,
  );
  const publicAccessBlock = new aws.s3.BucketPublicAccessBlock(
    `${name}-pab`,
    {
      bucket: bucket.id,
      blockPublicAcls: true,
      blockPublicPolicy: true,
      ignorePublicAcls: true,
      restrictPublicBuckets: true,
    },
    opts,
  );
  const bucketPolicy = new aws.s3.BucketPolicy(
    `${name}-policy`,
    {
      bucket: bucket.id,
      policy: bucket.arn.apply((arn) =>
        pulumi
          .output(args.extraStatements?.(arn) ?? [])
          .apply((extra) =>
            JSON.stringify(
              policy(denyInsecureTransport("s3", [arn, `${arn}/*`]), ...(extra as Statement[])),
            ),
          ),
      ),
    },
    { ...opts, dependsOn: [publicAccessBlock] },
  );
  if (args.versioning) {
    new aws.s3.BucketVersioning(
      `${name}-versioning`,
      { bucket: bucket.id, versioningConfiguration: { status: "Enabled" } },
      opts,
    );
  }
  if (args.lifecycleRules?.length) {
    new aws.s3.BucketLifecycleConfiguration(
      `${name}-lifecycle`,
      { bucket: bucket.id, rules: args.lifecycleRules },
      opts,
    );
  }
  return { bucket, policy: bucketPolicy };
}
