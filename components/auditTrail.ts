import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import {
  accessLogBucketStatements,
  CLOUDTRAIL_COLUMNS,
  cloudTrailTableParameters,
  eventSelectors,
  TRAIL_KEY_PREFIX,
  trailArn,
  trailBucketStatements,
  trailLogLocation,
  trailName,
} from "./auditPolicies";
import { secureBucket, secureBucketParts } from "./secureBucket";

export interface AuditTrailArgs {
  prefix: string;
  region: string;
  accountId: pulumi.Input<string>;
  /** The stack key: log files, both buckets. Its policy must name this trail (auditPolicies.cloudTrailKeyStatements). */
  keyArn: pulumi.Input<string>;
  /** The data lake: data events for every object under it. */
  lakeBucketArn: pulumi.Input<string>;
  /** The member registry table: data events for its items, when given. @default none */
  registryTableArn?: pulumi.Input<string>;
  /** Days log files and access logs are kept before expiry. */
  retentionDays: number;
}

/**
 * The stack's audit trail (HIPAA 164.312(b) audit controls): a CloudTrail
 * trail of every management event and of the data events on the lake's
 * objects and the member registry's items, with log file validation, log
 * files encrypted with the stack key, delivered to a dedicated versioned,
 * TLS-only bucket whose deletes are denied, which is itself access-logged to
 * a second bucket (SSE-S3: the only default encryption S3 delivers access
 * logs to); both expire after `retentionDays`. A Glue catalog table
 * over the trail's files lets Athena query it at once (partition projection).
 *
 * Why `aws.cloudtrail.Trail` and not awsx's `cloudtrail.Trail` (3.9.0): the
 * awsx component always writes its own bucket policy, even on an existing
 * bucket, and a bucket has one policy, so it would replace the TLS-only deny
 * and the delete deny; its policy has no aws:SourceArn condition (confused
 * deputy), and the bucket it creates has no KMS encryption, versioning,
 * public access block or access logging. It is also a remote (plugin)
 * component, so its children are invisible to these mocked tests.
 */
export class AuditTrail extends pulumi.ComponentResource {
  readonly trailArn: pulumi.Output<string>;
  readonly logBucket: pulumi.Output<string>;
  readonly accessLogBucket: pulumi.Output<string>;
  /** The Athena (Glue catalog) table over the trail: `<database>.cloudtrail`. */
  readonly databaseName: pulumi.Output<string>;

  constructor(name: string, args: AuditTrailArgs, opts?: pulumi.ComponentResourceOptions) {
    super("hoth:audit:AuditTrail", name, {}, opts);
    const child = { parent: this };
    const p = args.prefix;
    const sourceTrailArn = pulumi
      .output(args.accountId)
      .apply((accountId) => trailArn(p, args.region, accountId));
    const expiry = (id: string) => [
      {
        id,
        status: "Enabled",
        filter: {},
        expiration: { days: args.retentionDays },
        // Expiry leaves the object as a noncurrent version: remove it a day later.
        noncurrentVersionExpiration: { noncurrentDays: 1 },
      },
      {
        id: "abort-incomplete-uploads",
        status: "Enabled",
        filter: {},
        abortIncompleteMultipartUpload: { daysAfterInitiation: 7 },
      },
    ];

    const logs = secureBucketParts(
      `${name}-trail-logs`,
      {
        bucket: `${p}-audit`,
        keyArn: args.keyArn,
        versioning: true,
        lifecycleRules: expiry("expire-trail-logs"),
        extraStatements: (arn) =>
          pulumi
            .all([args.accountId, sourceTrailArn])
            .apply(([accountId, trail]) => trailBucketStatements(arn, accountId, trail)),
      },
      child,
    );
    const accessLogs = secureBucket(
      `${name}-trail-access-logs`,
      {
        bucket: `${p}-audit-access-logs`,
        accessLogDestination: true,
        versioning: true,
        lifecycleRules: expiry("expire-access-logs"),
        extraStatements: (arn) =>
          pulumi
            .all([args.accountId, logs.bucket.arn])
            .apply(([accountId, source]) => accessLogBucketStatements(arn, accountId, source)),
      },
      child,
    );
    // Who read the log files: S3 server access logs of the trail's bucket.
    new aws.s3.BucketLogging(
      `${name}-trail-logs-access-logging`,
      {
        bucket: logs.bucket.id,
        targetBucket: accessLogs.id,
        targetPrefix: `${p}-audit/`,
        targetObjectKeyFormat: { partitionedPrefix: { partitionDateSource: "EventTime" } },
      },
      child,
    );

    const trail = new aws.cloudtrail.Trail(
      `${name}-trail`,
      {
        name: trailName(p),
        s3BucketName: logs.bucket.bucket,
        s3KeyPrefix: TRAIL_KEY_PREFIX,
        kmsKeyId: args.keyArn,
        enableLogFileValidation: true,
        enableLogging: true,
        // IAM and STS are global services: their changes are delivered to one
        // region's trails only when this is on.
        includeGlobalServiceEvents: true,
        isMultiRegionTrail: false,
        advancedEventSelectors: pulumi
          .all([args.lakeBucketArn, args.registryTableArn])
          .apply(([lake, table]) => eventSelectors(lake, table)),
      },
      // CloudTrail checks the bucket policy when the trail is created.
      { ...child, dependsOn: [logs.policy] },
    );

    // Athena: `SELECT ... FROM <prefix>_audit.cloudtrail WHERE "timestamp" >= '2026/11/17'`.
    const database = new aws.glue.CatalogDatabase(
      `${name}-audit-db`,
      {
        name: `${p.replace(/-/g, "_")}_audit`,
        description: "HOTH audit trail (CloudTrail), queried with Athena",
      },
      child,
    );
    const location = pulumi
      .all([logs.bucket.bucket, args.accountId])
      .apply(([bucket, accountId]) => trailLogLocation(bucket, accountId, args.region));
    new aws.glue.CatalogTable(
      `${name}-audit-table`,
      {
        name: "cloudtrail",
        databaseName: database.name,
        tableType: "EXTERNAL_TABLE",
        parameters: location.apply((l) => cloudTrailTableParameters(l, args.retentionDays)),
        partitionKeys: [{ name: "timestamp", type: "string" }],
        storageDescriptor: {
          location,
          inputFormat: "com.amazon.emr.cloudtrail.CloudTrailInputFormat",
          outputFormat: "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
          serDeInfo: { serializationLibrary: "org.apache.hive.hcatalog.data.JsonSerDe" },
          columns: CLOUDTRAIL_COLUMNS.map(([n, type]) => ({ name: n, type })),
        },
      },
      child,
    );

    this.trailArn = trail.arn;
    this.logBucket = logs.bucket.bucket;
    this.accessLogBucket = accessLogs.bucket;
    this.databaseName = database.name;
    this.registerOutputs({
      databaseName: this.databaseName,
      trailArn: this.trailArn,
      logBucket: this.logBucket,
      accessLogBucket: this.accessLogBucket,
    });
  }
}
