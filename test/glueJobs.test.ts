import * as assert from "node:assert/strict";
import * as fs from "node:fs";

import program = require("../index");

import { CURATED } from "../components/glueJobs";
import { parseStackConfig } from "../contracts/config";
import { ACCOUNT_ID, doc, find, ofType, settle, stackConfig, useStack } from "./harness";

const KEY_ARN = `arn:aws:kms:us-east-1:${ACCOUNT_ID}:key/hoth-key-key-id`;

async function deploy(stack: string) {
  useStack(stack);
  program.compose(parseStackConfig(stack, stackConfig(stack)));
  await settle();
}

describe("GlueJobs", () => {
  for (const [stack, worker, count, timeout, concurrency] of [
    ["dev", "G.1X", 2, 60, 2],
    ["test", "G.1X", 4, 60, 2],
    ["prod", "G.2X", 10, 120, 4],
  ] as const) {
    it(`in ${stack}: runs both jobs on Glue 5.0 with ${count} ${worker} workers, ${timeout} min timeout`, async () => {
      await deploy(stack);
      for (const [kind, name] of [
        ["legacy", `hoth-${stack}-legacy-members-to-fhir`],
        ["ingest", `hoth-${stack}-ingest-fhir`],
      ]) {
        const job = find("aws:glue/job:Job", `hoth-${kind}`).inputs;
        assert.deepEqual(
          [
            job.name,
            job.glueVersion,
            job.workerType,
            job.numberOfWorkers,
            job.timeout,
            job.executionProperty,
          ],
          [name, "5.0", worker, count, timeout, { maxConcurrentRuns: concurrency }],
        );
        assert.equal(job.securityConfiguration, `hoth-${stack}-glue`);
        assert.equal(job.roleArn, `arn:aws:iam::${ACCOUNT_ID}:role/hoth-${stack}-glue-${kind}`);
      }
    });
  }

  describe("in dev", () => {
    before(() => deploy("dev"));

    it("ships the real job scripts and the transform package as assets", async () => {
      const ingest = find("aws:glue/job:Job", "hoth-ingest").inputs;
      assert.deepEqual(ingest.command, {
        name: "glueetl",
        pythonVersion: "3",
        scriptLocation: "s3://hoth-dev-lake/scripts/jobs/ingest_fhir.py",
      });
      assert.deepEqual(ingest.defaultArguments, {
        "--job-language": "python",
        "--job-bookmark-option": "job-bookmark-enable",
        "--enable-continuous-cloudwatch-log": "true",
        "--continuous-log-logGroup": "/aws-glue/hoth-dev-jobs",
        "--enable-metrics": "true",
        "--extra-py-files": "s3://hoth-dev-lake/scripts/lib/hoth_glue.zip",
        "--TempDir": "s3://hoth-dev-lake/tmp/ingest/",
        "--tokenization_secret_id": `arn:aws:secretsmanager:us-east-1:${ACCOUNT_ID}:secret:hoth-dev/tokenization-key-AbCdEf`,
      });
      const legacyArgs = find("aws:glue/job:Job", "hoth-legacy").inputs.defaultArguments as Record<
        string,
        string
      >;
      assert.equal(
        legacyArgs["--tokenization_secret_id"],
        undefined,
        "the legacy job never sees the key",
      );
      for (const o of ofType("aws:s3/bucketObjectv2:BucketObjectv2")) {
        const source = o.inputs.source as {
          path?: Promise<string>;
          assets?: Promise<Record<string, { path: Promise<string> }>>;
        };
        const file = await (source.path ?? (await source.assets)?.hoth_glue.path);
        assert.ok(file && fs.existsSync(file), `${o.inputs.key}: ${file} is missing`);
      }
      assert.deepEqual(
        ofType("aws:s3/bucketObjectv2:BucketObjectv2")
          .map((o) => o.inputs.key)
          .sort(),
        [
          "scripts/jobs/ingest_fhir.py",
          "scripts/jobs/legacy_members_to_fhir.py",
          "scripts/lib/hoth_glue.zip",
        ],
      );
    });

    it("encrypts S3 output, logs and bookmarks with the stack key", () => {
      const security = find(
        "aws:glue/securityConfiguration:SecurityConfiguration",
        "hoth-security",
      ).inputs;
      assert.deepEqual(security.encryptionConfiguration, {
        s3Encryption: { s3EncryptionMode: "SSE-KMS", kmsKeyArn: KEY_ARN },
        cloudwatchEncryption: { cloudwatchEncryptionMode: "SSE-KMS", kmsKeyArn: KEY_ARN },
        jobBookmarksEncryption: { jobBookmarksEncryptionMode: "CSE-KMS", kmsKeyArn: KEY_ARN },
      });
      const logs = find("aws:cloudwatch/logGroup:LogGroup", "hoth-glue-logs").inputs;
      assert.deepEqual(
        [logs.name, logs.retentionInDays, logs.kmsKeyId],
        ["/aws-glue/hoth-dev-jobs", 14, KEY_ARN],
      );
    });

    it("keeps the lake versioned and expires quarantine, landing and tmp per the stack", () => {
      const rules = find(
        "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
        "hoth-lake-lifecycle",
      ).inputs.rules as { id: string; filter: unknown; expiration?: { days: number } }[];
      assert.deepEqual(
        rules.map((r) => [r.id, r.filter, r.expiration?.days]),
        [
          ["expire-quarantine", { prefix: "quarantine/" }, 30],
          ["expire-landing", { prefix: "landing/" }, 7],
          ["expire-tmp", { prefix: "tmp/" }, 1],
          ["abort-incomplete-uploads", {}, undefined],
          ["expire-noncurrent-versions", {}, undefined],
        ],
      );
      assert.equal(
        find("aws:glue/catalogDatabase:CatalogDatabase", "hoth-curated").inputs.name,
        "hoth_dev_curated",
      );
      const tables = ofType("aws:glue/catalogTable:CatalogTable").filter(
        (t) => t.inputs.databaseName === "hoth_dev_curated",
      );
      assert.deepEqual(tables.map((t) => t.inputs.name).sort(), [
        "condition",
        "coverage",
        "encounter",
        "observation",
        "patient",
        "resource",
      ]);
      const patient = find("aws:glue/catalogTable:CatalogTable", "hoth-table-patient").inputs as {
        databaseName: string;
        partitionKeys: unknown;
        storageDescriptor: { location: string; columns: { name: string; type: string }[] };
      };
      assert.equal(patient.databaseName, "hoth_dev_curated");
      assert.equal(patient.storageDescriptor.location, "s3://hoth-dev-lake/curated/patient/");
      assert.deepEqual(patient.partitionKeys, [
        { name: "org", type: "string" },
        { name: "ingest_date", type: "date" },
        { name: "run_id", type: "string" },
      ]);
      assert.deepEqual(
        patient.storageDescriptor.columns.map((c) => [c.name, c.type]),
        CURATED.tables.patient,
      );
    });

    it("lets the legacy job read landing and write only converted NDJSON, quarantine and reports", () => {
      const statements = doc(find("aws:iam/rolePolicy:RolePolicy", "hoth-legacy-policy")).Statement;
      const lake = "arn:aws:s3:::hoth-dev-lake";
      assert.deepEqual(statements, [
        {
          Sid: "ListLake",
          Effect: "Allow",
          Action: "s3:ListBucket",
          Resource: lake,
          Condition: {
            StringLike: {
              "s3:prefix": ["landing/*", "scripts/*", "quarantine/*", "reports/*", "tmp/*"],
            },
          },
        },
        {
          Sid: "ReadInputs",
          Effect: "Allow",
          Action: "s3:GetObject",
          Resource: [`${lake}/landing/*`, `${lake}/scripts/*`],
        },
        {
          Sid: "WriteOutputs",
          Effect: "Allow",
          Action: ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
          Resource: [
            `${lake}/landing/*/converted/*`,
            `${lake}/quarantine/*`,
            `${lake}/reports/*`,
            `${lake}/tmp/legacy/*`,
          ],
        },
        {
          Sid: "LakeKey",
          Effect: "Allow",
          Action: ["kms:Decrypt", "kms:GenerateDataKey"],
          Resource: KEY_ARN,
          Condition: { StringEquals: { "kms:ViaService": "s3.us-east-1.amazonaws.com" } },
        },
        {
          Sid: "GlueEncryption",
          Effect: "Allow",
          Action: ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey"],
          Resource: KEY_ARN,
          Condition: { StringEquals: { "kms:ViaService": "glue.us-east-1.amazonaws.com" } },
        },
        {
          Sid: "WriteLogs",
          Effect: "Allow",
          Action: ["logs:CreateLogStream", "logs:PutLogEvents", "logs:AssociateKmsKey"],
          Resource: `arn:aws:logs:us-east-1:${ACCOUNT_ID}:log-group:/aws-glue/*hoth-dev*`,
        },
      ]);
    });

    it("lets the ingest job write curated data and read the tokenization key, which no other job can", () => {
      const ingest = doc(find("aws:iam/rolePolicy:RolePolicy", "hoth-ingest-policy")).Statement;
      assert.deepEqual(ingest[2].Resource, [
        "arn:aws:s3:::hoth-dev-lake/curated/*",
        "arn:aws:s3:::hoth-dev-lake/quarantine/*",
        "arn:aws:s3:::hoth-dev-lake/reports/*",
        "arn:aws:s3:::hoth-dev-lake/tmp/ingest/*",
      ]);
      const keyReaders = ofType("aws:iam/rolePolicy:RolePolicy")
        .filter((p) => JSON.stringify(doc(p)).includes("tokenization-key"))
        .map((p) => [p.name, p.inputs.role]);
      assert.deepEqual(keyReaders, [
        ["hoth-ingest-reads-tokenization-key", "hoth-dev-glue-ingest"],
      ]);
    });
  });
});
