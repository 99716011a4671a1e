import * as assert from "node:assert/strict";
import { parseStackConfig } from "../contracts/config";

import program = require("../index");

import { policyContext } from "../scripts/policy-config";
import { ACCOUNT_ID, doc, find, ofType, settle, stackConfig, useStack } from "./harness";

const KEY_ARN = `arn:aws:kms:us-east-1:${ACCOUNT_ID}:key/hoth-key-key-id`;

async function deploy(stack: string) {
  useStack(stack);
  program.compose(parseStackConfig(stack, stackConfig(stack)));
  await settle();
}

describe("MemberRegistry", () => {
  for (const [stack, protection] of [
    ["dev", false],
    ["test", false],
    ["prod", true],
  ] as const) {
    it(`in ${stack}: one on-demand table with the stack key, PITR, TTL and deletion protection ${protection ? "on" : "off"}`, async () => {
      await deploy(stack);
      const tables = ofType("aws:dynamodb/table:Table");
      assert.equal(tables.length, 1);
      const t = tables[0].inputs;
      assert.deepEqual(
        {
          name: t.name,
          billingMode: t.billingMode,
          hashKey: t.hashKey,
          rangeKey: t.rangeKey,
          attributes: t.attributes,
          serverSideEncryption: t.serverSideEncryption,
          pointInTimeRecovery: t.pointInTimeRecovery,
          deletionProtectionEnabled: t.deletionProtectionEnabled,
          ttl: t.ttl,
        },
        {
          name: `hoth-${stack}-member-registry`,
          billingMode: "PAY_PER_REQUEST",
          hashKey: "pk",
          rangeKey: "sk",
          attributes: [
            { name: "pk", type: "S" },
            { name: "sk", type: "S" },
          ],
          serverSideEncryption: { enabled: true, kmsKeyArn: KEY_ARN },
          pointInTimeRecovery: { enabled: true },
          deletionProtectionEnabled: protection,
          ttl: { attributeName: "exp", enabled: true },
        },
      );
      assert.equal(policyContext(stack).requireTableDeletionProtection, protection);
    });
  }

  it("gives the export function exactly: Query, BatchGetItem and GetItem on the table, PutObject under landing/*/registry/, the key through DynamoDB and S3", async () => {
    await deploy("dev");
    const table = `arn:aws:dynamodb:us-east-1:${ACCOUNT_ID}:table/hoth-dev-member-registry`;
    const statements = doc(
      find("aws:iam/rolePolicy:RolePolicy", "hoth-registry-export-reads"),
    ).Statement;
    assert.deepEqual(statements, [
      {
        Sid: "ReadRegistry",
        Effect: "Allow",
        Action: ["dynamodb:Query", "dynamodb:BatchGetItem", "dynamodb:GetItem"],
        Resource: table,
      },
      {
        Sid: "WriteSnapshots",
        Effect: "Allow",
        Action: "s3:PutObject",
        Resource: "arn:aws:s3:::hoth-dev-lake/landing/*/registry/*",
      },
      {
        Sid: "RegistryKey",
        Effect: "Allow",
        Action: ["kms:Decrypt"],
        Resource: KEY_ARN,
        Condition: { StringEquals: { "kms:ViaService": "dynamodb.us-east-1.amazonaws.com" } },
      },
      {
        Sid: "LakeKey",
        Effect: "Allow",
        Action: ["kms:GenerateDataKey", "kms:Decrypt"],
        Resource: KEY_ARN,
        Condition: { StringEquals: { "kms:ViaService": "s3.us-east-1.amazonaws.com" } },
      },
    ]);
    const fn = find("aws:lambda/function:Function", "hoth-registry-export-fn").inputs;
    assert.deepEqual(
      [
        fn.name,
        fn.runtime,
        fn.timeout,
        (fn.environment as { variables: Record<string, string> }).variables.REGISTRY_TABLE,
      ],
      ["hoth-dev-registry-export", "nodejs22.x", 300, "hoth-dev-member-registry"],
    );
  });

  it("lets the stack key's users create DynamoDB's grant only through DynamoDB, for AWS resources", async () => {
    await deploy("dev");
    const key = doc(find("aws:kms/key:Key", "hoth-key"), "policy");
    const grant = key.Statement.find((s: { Sid: string }) => s.Sid === "DynamoDBTableGrants");
    assert.deepEqual(grant, {
      Sid: "DynamoDBTableGrants",
      Effect: "Allow",
      Principal: { AWS: `arn:aws:iam::${ACCOUNT_ID}:root` },
      Action: "kms:CreateGrant",
      Resource: "*",
      Condition: {
        StringEquals: {
          "kms:CallerAccount": ACCOUNT_ID,
          "kms:ViaService": "dynamodb.us-east-1.amazonaws.com",
        },
        Bool: { "kms:GrantIsForAWSResource": true },
      },
    });
  });
});
