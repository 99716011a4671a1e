import * as assert from "node:assert/strict";

import program = require("../index");

import { AuditTrail } from "../components/auditTrail";
import { secureBucket } from "../components/secureBucket";
import { parseStackConfig } from "../contracts/config";
import { ACCOUNT_ID, doc, find, ofType, settle, stackConfig, unwrap, useStack } from "./harness";

const KEY_ARN = `arn:aws:kms:us-east-1:${ACCOUNT_ID}:key/hoth-key-key-id`;

async function deploy(stack: string) {
  useStack(stack);
  const platform = program.compose(parseStackConfig(stack, stackConfig(stack)));
  await settle();
  return platform;
}

const MANAGEMENT = {
  name: "Management events",
  fieldSelectors: [{ field: "eventCategory", equals: ["Management"] }],
};
const lakeSelector = (bucket: string) => ({
  name: "Lake objects (landing, curated, quarantine, registry)",
  fieldSelectors: [
    { field: "eventCategory", equals: ["Data"] },
    { field: "resources.type", equals: ["AWS::S3::Object"] },
    { field: "resources.ARN", startsWith: [`arn:aws:s3:::${bucket}/`] },
  ],
});

const registrySelector = (tableArn: string) => ({
  name: "Member registry items",
  fieldSelectors: [
    { field: "eventCategory", equals: ["Data"] },
    { field: "resources.type", equals: ["AWS::DynamoDB::Table"] },
    { field: "resources.ARN", equals: [tableArn] },
  ],
});

describe("AuditTrail", () => {
  for (const [stack, retention] of [
    ["dev", 90],
    ["test", 365],
    ["prod", 2192],
  ] as const) {
    describe(`in ${stack}`, () => {
      const p = `hoth-${stack}`;
      const trailArn = `arn:aws:cloudtrail:us-east-1:${ACCOUNT_ID}:trail/${p}-audit`;
      let platform: Awaited<ReturnType<typeof deploy>>;
      before(async () => {
        platform = await deploy(stack);
      });

      it("records management events and the lake's data events, validated and encrypted with the stack key", async () => {
        const trail = find("aws:cloudtrail/trail:Trail", "hoth-trail");
        assert.deepEqual(
          {
            name: trail.inputs.name,
            s3BucketName: trail.inputs.s3BucketName,
            s3KeyPrefix: trail.inputs.s3KeyPrefix,
            kmsKeyId: trail.inputs.kmsKeyId,
            enableLogFileValidation: trail.inputs.enableLogFileValidation,
            enableLogging: trail.inputs.enableLogging,
            includeGlobalServiceEvents: trail.inputs.includeGlobalServiceEvents,
            isMultiRegionTrail: trail.inputs.isMultiRegionTrail,
          },
          {
            name: `${p}-audit`,
            s3BucketName: `${p}-audit`,
            s3KeyPrefix: "cloudtrail",
            kmsKeyId: KEY_ARN,
            enableLogFileValidation: true,
            enableLogging: true,
            includeGlobalServiceEvents: true,
            isMultiRegionTrail: false,
          },
        );
        // Exactly management events, the lake's objects and the member registry's items.
        assert.deepEqual(trail.inputs.advancedEventSelectors, [
          MANAGEMENT,
          lakeSelector(`${p}-lake`),
          registrySelector(`arn:aws:dynamodb:us-east-1:${ACCOUNT_ID}:table/${p}-member-registry`),
        ]);
        assert.equal(trail.state.arn, trailArn);
        assert.equal(await unwrap(platform.audit.trailArn), trailArn);
        assert.equal(ofType("aws:cloudtrail/trail:Trail").length, 1);
      });

      it("lets only this trail write to its bucket, under its prefix, and nobody delete a log file", () => {
        const bucketArn = `arn:aws:s3:::${p}-audit`;
        assert.deepEqual(
          doc(find("aws:s3/bucketPolicy:BucketPolicy", "hoth-trail-logs-policy")).Statement,
          [
            {
              Sid: "DenyInsecureTransport",
              Effect: "Deny",
              Principal: "*",
              Action: "s3:*",
              Resource: [bucketArn, `${bucketArn}/*`],
              Condition: { Bool: { "aws:SecureTransport": "false" } },
            },
            {
              Sid: "CloudTrailAclCheck",
              Effect: "Allow",
              Principal: { Service: "cloudtrail.amazonaws.com" },
              Action: "s3:GetBucketAcl",
              Resource: bucketArn,
              Condition: { StringEquals: { "aws:SourceArn": trailArn } },
            },
            {
              Sid: "CloudTrailWrite",
              Effect: "Allow",
              Principal: { Service: "cloudtrail.amazonaws.com" },
              Action: "s3:PutObject",
              Resource: `${bucketArn}/cloudtrail/AWSLogs/${ACCOUNT_ID}/*`,
              Condition: {
                StringEquals: {
                  "s3:x-amz-acl": "bucket-owner-full-control",
                  "aws:SourceArn": trailArn,
                },
              },
            },
            {
              Sid: "DenyLogDeletion",
              Effect: "Deny",
              Principal: "*",
              Action: ["s3:DeleteObject", "s3:DeleteObjectVersion"],
              Resource: `${bucketArn}/*`,
            },
          ],
        );
      });

      it("access-logs the trail's bucket to a second bucket only S3 logging of that bucket may write", () => {
        const logging = find(
          "aws:s3/bucketLogging:BucketLogging",
          "hoth-trail-logs-access-logging",
        ).inputs;
        assert.deepEqual(
          [
            logging.bucket,
            logging.targetBucket,
            logging.targetPrefix,
            logging.targetObjectKeyFormat,
          ],
          [
            `${p}-audit`,
            `${p}-audit-access-logs`,
            `${p}-audit/`,
            { partitionedPrefix: { partitionDateSource: "EventTime" } },
          ],
        );
        const arn = `arn:aws:s3:::${p}-audit-access-logs`;
        assert.deepEqual(
          doc(
            find("aws:s3/bucketPolicy:BucketPolicy", "hoth-trail-access-logs-policy"),
          ).Statement.slice(1),
          [
            {
              Sid: "S3ServerAccessLogsWrite",
              Effect: "Allow",
              Principal: { Service: "logging.s3.amazonaws.com" },
              Action: "s3:PutObject",
              Resource: `${arn}/*`,
              Condition: {
                ArnLike: { "aws:SourceArn": `arn:aws:s3:::${p}-audit` },
                StringEquals: { "aws:SourceAccount": ACCOUNT_ID },
              },
            },
            {
              Sid: "DenyLogDeletion",
              Effect: "Deny",
              Principal: "*",
              Action: ["s3:DeleteObject", "s3:DeleteObjectVersion"],
              Resource: `${arn}/*`,
            },
          ],
        );
      });

      it(`keeps both buckets versioned and encrypted (the access logs with SSE-S3, the only kind S3 delivers to), and expires their objects after ${retention} days`, () => {
        for (const [bucket, rule, encryption] of [
          [
            "hoth-trail-logs",
            "expire-trail-logs",
            { sseAlgorithm: "aws:kms", kmsMasterKeyId: KEY_ARN },
          ],
          ["hoth-trail-access-logs", "expire-access-logs", { sseAlgorithm: "AES256" }],
        ] as const) {
          assert.deepEqual(
            find("aws:s3/bucketVersioning:BucketVersioning", `${bucket}-versioning`).inputs
              .versioningConfiguration,
            { status: "Enabled" },
          );
          const sse = find(
            "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
            `${bucket}-sse`,
          ).inputs.rules as { applyServerSideEncryptionByDefault: unknown }[];
          assert.deepEqual(sse[0].applyServerSideEncryptionByDefault, encryption);
          const rules = find(
            "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
            `${bucket}-lifecycle`,
          ).inputs.rules;
          assert.deepEqual(rules, [
            {
              id: rule,
              status: "Enabled",
              filter: {},
              expiration: { days: retention },
              noncurrentVersionExpiration: { noncurrentDays: 1 },
            },
            {
              id: "abort-incomplete-uploads",
              status: "Enabled",
              filter: {},
              abortIncompleteMultipartUpload: { daysAfterInitiation: 7 },
            },
          ]);
        }
      });

      it("gives Athena a table over exactly this account's and region's trail files, projected over the retention", () => {
        const db = find("aws:glue/catalogDatabase:CatalogDatabase", "hoth-audit-db").inputs;
        assert.equal(db.name, `${p.replace("-", "_")}_audit`);
        const table = find("aws:glue/catalogTable:CatalogTable", "hoth-audit-table").inputs;
        const location = `s3://${p}-audit/cloudtrail/AWSLogs/${ACCOUNT_ID}/CloudTrail/us-east-1/`;
        assert.deepEqual(
          [table.name, table.databaseName, table.tableType, table.partitionKeys],
          ["cloudtrail", db.name, "EXTERNAL_TABLE", [{ name: "timestamp", type: "string" }]],
        );
        assert.deepEqual(table.parameters, {
          EXTERNAL: "TRUE",
          classification: "cloudtrail",
          "projection.enabled": "true",
          "projection.timestamp.type": "date",
          "projection.timestamp.format": "yyyy/MM/dd",
          "projection.timestamp.range": `NOW-${retention}DAYS,NOW`,
          "projection.timestamp.interval": "1",
          "projection.timestamp.interval.unit": "DAYS",
          "storage.location.template": `${location}\${timestamp}`,
        });
        const sd = table.storageDescriptor as {
          location: string;
          inputFormat: string;
          serDeInfo: { serializationLibrary: string };
          columns: { name: string; type: string }[];
        };
        assert.deepEqual(
          [sd.location, sd.inputFormat, sd.serDeInfo.serializationLibrary],
          [
            location,
            "com.amazon.emr.cloudtrail.CloudTrailInputFormat",
            "org.apache.hive.hcatalog.data.JsonSerDe",
          ],
        );
        // The fields the README's queries use
        const types = Object.fromEntries(sd.columns.map((c) => [c.name, c.type]));
        assert.deepEqual(
          [
            "eventtime",
            "eventsource",
            "eventname",
            "readonly",
            "requestparameters",
            "errorcode",
          ].map((c) => types[c]),
          ["string", "string", "string", "string", "string", "string"],
        );
        assert.equal(types.resources, "array<struct<arn:string,accountid:string,type:string>>");
        assert.match(types.useridentity, /^struct<type:string,principalid:string,arn:string,/);
        assert.match(
          types.useridentity,
          /sessionissuer:struct<type:string,principalid:string,arn:string,/,
        );
      });

      it("lets CloudTrail use the stack key for this trail only", () => {
        const statements = doc(find("aws:kms/key:Key", "hoth-key")).Statement;
        const trailStatements = statements.filter((s: { Sid: string }) =>
          s.Sid.startsWith("CloudTrail"),
        );
        assert.deepEqual(trailStatements, [
          {
            Sid: "CloudTrailEncryptLogs",
            Effect: "Allow",
            Principal: { Service: "cloudtrail.amazonaws.com" },
            Action: "kms:GenerateDataKey*",
            Resource: "*",
            Condition: {
              StringEquals: { "aws:SourceArn": [trailArn] },
              StringLike: {
                "kms:EncryptionContext:aws:cloudtrail:arn": `arn:aws:cloudtrail:*:${ACCOUNT_ID}:trail/*`,
              },
            },
          },
          {
            Sid: "CloudTrailDescribeKey",
            Effect: "Allow",
            Principal: { Service: "cloudtrail.amazonaws.com" },
            Action: "kms:DescribeKey",
            Resource: "*",
            Condition: { StringEquals: { "aws:SourceArn": [trailArn] } },
          },
        ]);
      });
    });
  }

  for (const registryTableArn of [
    `arn:aws:dynamodb:us-east-1:${ACCOUNT_ID}:table/hoth-dev-members`,
    undefined,
  ]) {
    it(`records registry item events ${registryTableArn ? "for exactly the table given" : "for no table when none is given"}`, async () => {
      // Prepare
      useStack("dev");
      // Act
      new AuditTrail("a", {
        prefix: "hoth-dev",
        region: "us-east-1",
        accountId: ACCOUNT_ID,
        keyArn: KEY_ARN,
        lakeBucketArn: "arn:aws:s3:::hoth-dev-lake",
        registryTableArn,
        retentionDays: 90,
      });
      await settle();
      // Assess
      assert.deepEqual(
        find("aws:cloudtrail/trail:Trail", "a-trail").inputs.advancedEventSelectors,
        [
          MANAGEMENT,
          lakeSelector("hoth-dev-lake"),
          ...(registryTableArn ? [registrySelector(registryTableArn)] : []),
        ],
      );
    });
  }

  it("refuses a bucket with neither a KMS key nor the access-log role, naming the fix", () => {
    useStack("dev");
    assert.throws(() => secureBucket("naked", { bucket: "naked" }, {}), {
      message: "Either [keyArn] or [accessLogDestination: true] must be set for bucket 'naked'",
    });
  });
});
