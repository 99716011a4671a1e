import * as assert from "node:assert/strict";
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";

import bootstrapProgram = require("../bootstrap/index");

import { checkAll } from "../policy/rules";
import {
  ACCOUNT_ID,
  DEPLOYER_ROLE_ARN,
  doc,
  find,
  ofType,
  protectedDescendants,
  settle,
  unwrap,
  useStack,
} from "./harness";
import { mockedGraph } from "./support/graph";

const TAGS = {
  project: "hoth",
  stack: "bootstrap",
  owner: "team",
  "data-classification": "internal",
};

async function run(createConnection: boolean) {
  useStack("dev");
  const provider = new aws.Provider("bootstrap", {
    region: "us-east-1",
    defaultTags: { tags: TAGS },
  });
  const out = bootstrapProgram.bootstrap(
    {
      region: "us-east-1",
      accountId: ACCOUNT_ID,
      adminArns: [DEPLOYER_ROLE_ARN],
      createConnection,
    },
    { provider },
  );
  await settle();
  return out;
}

describe("bootstrap project", () => {
  it("creates a versioned, encrypted, TLS-only, private state bucket and keeps old state versions a year", async () => {
    await run(true);
    const bucket = find("aws:s3/bucket:Bucket", "state");
    assert.equal(bucket.inputs.bucket, `hoth-pulumi-state-${ACCOUNT_ID}`);
    assert.deepEqual(
      find("aws:s3/bucketVersioning:BucketVersioning", "state-versioning").inputs
        .versioningConfiguration,
      { status: "Enabled" },
    );
    const sse = find(
      "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
      "state-sse",
    ).inputs.rules as { applyServerSideEncryptionByDefault: unknown }[];
    assert.deepEqual(sse[0].applyServerSideEncryptionByDefault, {
      sseAlgorithm: "aws:kms",
      kmsMasterKeyId: `arn:aws:kms:us-east-1:${ACCOUNT_ID}:key/pulumi-secrets-key-id`,
    });
    const lifecycle = find(
      "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
      "state-lifecycle",
    );
    assert.deepEqual(
      (lifecycle.inputs.rules as { noncurrentVersionExpiration: unknown }[])[0]
        .noncurrentVersionExpiration,
      {
        noncurrentDays: 365,
      },
    );
    // The bootstrap holds no PHI; the stacks' trails record its changes.
    assert.deepEqual(checkAll(mockedGraph(), { requireAuditTrail: false }), []);
  });

  it("keys Pulumi secrets with a rotating KMS key under a fixed alias, usable only by account roles granted in IAM", async () => {
    const out = await run(true);
    const key = find("aws:kms/key:Key", "pulumi-secrets");
    assert.equal(key.inputs.enableKeyRotation, true);
    assert.deepEqual(doc(key).Statement[1].Condition, {
      StringEquals: { "kms:CallerAccount": ACCOUNT_ID },
    });
    assert.equal(
      find("aws:kms/alias:Alias", "pulumi-secrets-alias").inputs.name,
      "alias/hoth-pulumi-secrets",
    );
    assert.equal(out.secretsProvider, "awskms://alias/hoth-pulumi-secrets?region=us-east-1");
    assert.equal(await unwrap(out.backendUrl), `s3://hoth-pulumi-state-${ACCOUNT_ID}`);
  });

  it("creates the GitHub connection only when asked, and API Gateway's logging role once", async () => {
    const withConnection = await run(true);
    assert.equal(
      find("aws:codestarconnections/connection:Connection", "source").inputs.providerType,
      "GitHub",
    );
    assert.ok(withConnection.connectionArn);
    assert.equal(
      find("aws:apigateway/account:Account", "apigateway-account").inputs.cloudwatchRoleArn,
      `arn:aws:iam::${ACCOUNT_ID}:role/hoth-apigateway-cloudwatch`,
    );
    const without = await run(false);
    assert.deepEqual(ofType("aws:codestarconnections/connection:Connection"), []);
    assert.equal(without.connectionArn, undefined);
  });

  it("protects the state bucket, its settings and the key from deletion", async () => {
    useStack("dev");
    const root = new pulumi.ComponentResource("test:index:Root", "root");
    const provider = new aws.Provider("bootstrap", {
      region: "us-east-1",
      defaultTags: { tags: TAGS },
    });
    bootstrapProgram.bootstrap(
      {
        region: "us-east-1",
        accountId: ACCOUNT_ID,
        adminArns: [DEPLOYER_ROLE_ARN],
        createConnection: false,
      },
      { provider, parent: root },
    );
    await settle();
    assert.deepEqual(protectedDescendants(root), [
      "pulumi-secrets",
      "state",
      "state-lifecycle",
      "state-pab",
      "state-policy",
      "state-sse",
      "state-versioning",
    ]);
  });
});
