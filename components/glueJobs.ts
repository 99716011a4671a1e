import * as fs from "node:fs";
import * as path from "node:path";
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { glueJobName, JOBS } from "../contracts/glueJobNames";
import { assumeRolePolicy, policy } from "../contracts/iam";
import { type GlueJobKind, glueJobStatements } from "./gluePolicies";
import type { SecretStore } from "./secretStore";
import { secureBucket } from "./secureBucket";

export interface GlueJobsArgs {
  prefix: string;
  region: string;
  accountId: pulumi.Input<string>;
  /** Grants the ingest job read of the tokenization key. */
  secrets: SecretStore;
  logRetentionDays: number;
  workerType: string;
  numberOfWorkers: number;
  timeoutMinutes: number;
  maxConcurrentRuns: number;
  quarantineRetentionDays: number;
  landingRetentionDays: number;
}

const GLUE_DIR = path.join(__dirname, "..", "glue");

/** The curated tables ingest_fhir writes (glue/curated_tables.json; a pytest checks the job against it). */
export const CURATED: {
  partitionKeys: [string, string][];
  tables: Record<string, [string, string][]>;
} = JSON.parse(fs.readFileSync(path.join(GLUE_DIR, "curated_tables.json"), "utf8"));

export { JOBS } from "../contracts/glueJobNames";

/**
 * The data plane: the lake bucket (landing/, curated/, quarantine/, reports/,
 * scripts/, tmp/), the job scripts and the `hoth_glue` transform package as
 * assets, a Glue security configuration (S3, logs and bookmarks encrypted
 * with the stack key), the curated catalog database, and one role and one
 * Glue 5.0 job per job.
 */
export class GlueJobs extends pulumi.ComponentResource {
  readonly lakeBucket: pulumi.Output<string>;
  readonly lakeBucketArn: pulumi.Output<string>;
  readonly jobNames: Record<GlueJobKind, pulumi.Output<string>>;
  readonly jobArns: Record<GlueJobKind, pulumi.Output<string>>;
  readonly databaseName: pulumi.Output<string>;

  constructor(name: string, args: GlueJobsArgs, opts?: pulumi.ComponentResourceOptions) {
    super("hoth:glue:GlueJobs", name, {}, opts);
    const child = { parent: this };
    const p = args.prefix;
    const keyArn = args.secrets.keyArn;

    const lake = secureBucket(
      `${name}-lake`,
      {
        bucket: `${p}-lake`,
        keyArn,
        versioning: true,
        lifecycleRules: [
          {
            id: "expire-quarantine",
            status: "Enabled",
            filter: { prefix: "quarantine/" },
            expiration: { days: args.quarantineRetentionDays },
          },
          {
            id: "expire-landing",
            status: "Enabled",
            filter: { prefix: "landing/" },
            expiration: { days: args.landingRetentionDays },
          },
          {
            id: "expire-tmp",
            status: "Enabled",
            filter: { prefix: "tmp/" },
            expiration: { days: 1 },
          },
          {
            id: "abort-incomplete-uploads",
            status: "Enabled",
            filter: {},
            abortIncompleteMultipartUpload: { daysAfterInitiation: 7 },
          },
          {
            id: "expire-noncurrent-versions",
            status: "Enabled",
            filter: {},
            noncurrentVersionExpiration: { noncurrentDays: 30 },
          },
        ],
      },
      child,
    );

    const object = (id: string, key: string, source: pulumi.asset.Asset | pulumi.asset.Archive) =>
      new aws.s3.BucketObjectv2(`${name}-${id}`, { bucket: lake.id, key, source }, child);
    const scripts = Object.fromEntries(
      (Object.keys(JOBS) as GlueJobKind[]).map((kind) => [
        kind,
        object(
          `script-${kind}`,
          `scripts/jobs/${JOBS[kind].script}`,
          new pulumi.asset.FileAsset(path.join(GLUE_DIR, "jobs", JOBS[kind].script)),
        ),
      ]),
    ) as Record<GlueJobKind, aws.s3.BucketObjectv2>;
    const lib = object(
      "lib",
      "scripts/lib/hoth_glue.zip",
      new pulumi.asset.AssetArchive({
        hoth_glue: new pulumi.asset.FileArchive(path.join(GLUE_DIR, "hoth_glue")),
      }),
    );

    const logs = new aws.cloudwatch.LogGroup(
      `${name}-glue-logs`,
      { name: `/aws-glue/${p}-jobs`, retentionInDays: args.logRetentionDays, kmsKeyId: keyArn },
      child,
    );
    const security = new aws.glue.SecurityConfiguration(
      `${name}-security`,
      {
        name: `${p}-glue`,
        encryptionConfiguration: {
          s3Encryption: { s3EncryptionMode: "SSE-KMS", kmsKeyArn: keyArn },
          cloudwatchEncryption: { cloudwatchEncryptionMode: "SSE-KMS", kmsKeyArn: keyArn },
          jobBookmarksEncryption: { jobBookmarksEncryptionMode: "CSE-KMS", kmsKeyArn: keyArn },
        },
      },
      child,
    );
    const database = new aws.glue.CatalogDatabase(
      `${name}-curated`,
      {
        name: `${p.replace(/-/g, "_")}_curated`,
        description: "HOTH curated, tokenized FHIR tables (Parquet)",
        locationUri: pulumi.interpolate`s3://${lake.bucket}/curated/`,
      },
      child,
    );

    // New partitions are registered with MSCK REPAIR TABLE (Athena) or a crawler.
    for (const [table, columns] of Object.entries(CURATED.tables)) {
      new aws.glue.CatalogTable(
        `${name}-table-${table}`,
        {
          name: table,
          databaseName: database.name,
          tableType: "EXTERNAL_TABLE",
          parameters: { classification: "parquet", EXTERNAL: "TRUE" },
          partitionKeys: CURATED.partitionKeys.map(([n, type]) => ({ name: n, type })),
          storageDescriptor: {
            location: pulumi.interpolate`s3://${lake.bucket}/curated/${table}/`,
            inputFormat: "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
            outputFormat: "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
            serDeInfo: {
              serializationLibrary: "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
            },
            columns: columns.map(([n, type]) => ({ name: n, type })),
          },
        },
        child,
      );
    }

    const jobs = {} as Record<GlueJobKind, aws.glue.Job>;
    for (const kind of Object.keys(JOBS) as GlueJobKind[]) {
      const jobName = glueJobName(p, kind);
      const role = new aws.iam.Role(
        `${name}-${kind}-role`,
        {
          name: `${p}-glue-${kind}`,
          assumeRolePolicy: pulumi
            .output(args.accountId)
            .apply((a) => JSON.stringify(assumeRolePolicy("glue.amazonaws.com", a))),
        },
        child,
      );
      const grants = [
        new aws.iam.RolePolicy(
          `${name}-${kind}-policy`,
          {
            role: role.name,
            policy: pulumi
              .all([args.accountId, lake.bucket, keyArn])
              .apply(([accountId, lakeBucket, key]) =>
                JSON.stringify(
                  policy(
                    ...glueJobStatements(kind, {
                      prefix: p,
                      region: args.region,
                      accountId,
                      lakeBucket,
                      keyArn: key,
                    }),
                  ),
                ),
              ),
          },
          child,
        ),
      ];
      if (kind === "ingest") {
        grants.push(
          args.secrets.grantRead(
            "tokenization",
            role,
            `${name}-ingest-reads-tokenization-key`,
            child,
          ),
        );
      }
      jobs[kind] = new aws.glue.Job(
        `${name}-${kind}`,
        {
          name: jobName,
          roleArn: role.arn,
          glueVersion: "5.0",
          command: {
            name: "glueetl",
            pythonVersion: "3",
            scriptLocation: pulumi.interpolate`s3://${lake.bucket}/${scripts[kind].key}`,
          },
          workerType: args.workerType,
          numberOfWorkers: args.numberOfWorkers,
          timeout: args.timeoutMinutes,
          executionProperty: { maxConcurrentRuns: args.maxConcurrentRuns },
          securityConfiguration: security.name,
          defaultArguments: {
            "--job-language": "python",
            "--job-bookmark-option": "job-bookmark-enable",
            "--enable-continuous-cloudwatch-log": "true",
            "--continuous-log-logGroup": logs.name,
            "--enable-metrics": "true",
            "--extra-py-files": pulumi.interpolate`s3://${lake.bucket}/${lib.key}`,
            "--TempDir": pulumi.interpolate`s3://${lake.bucket}/tmp/${kind}/`,
            ...(kind === "ingest"
              ? { "--tokenization_secret_id": args.secrets.secretArns.tokenization }
              : {}),
          },
        },
        { ...child, dependsOn: grants },
      );
    }

    this.lakeBucket = lake.bucket;
    this.lakeBucketArn = lake.arn;
    this.jobNames = { legacy: jobs.legacy.name, ingest: jobs.ingest.name };
    this.jobArns = { legacy: jobs.legacy.arn, ingest: jobs.ingest.arn };
    this.databaseName = database.name;
    this.registerOutputs({
      lakeBucket: this.lakeBucket,
      jobNames: this.jobNames,
      databaseName: this.databaseName,
    });
  }
}
