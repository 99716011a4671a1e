import * as assert from "node:assert/strict";
import * as aws from "@pulumi/aws";
import { SecretStore } from "../components/secretStore";
import {
  ACCOUNT_ID,
  DEPLOYER_ROLE_ARN,
  doc,
  find,
  ofType,
  plain,
  settle,
  unwrap,
  useStack,
} from "./harness";

const KEY_ARN = `arn:aws:kms:us-east-1:${ACCOUNT_ID}:key/store-key-key-id`;
const secretArn = (n: string) =>
  `arn:aws:secretsmanager:us-east-1:${ACCOUNT_ID}:secret:hoth-dev/${n}-AbCdEf`;

function newStore() {
  return new SecretStore("store", {
    prefix: "hoth-dev",
    region: "us-east-1",
    accountId: ACCOUNT_ID,
    adminArns: [DEPLOYER_ROLE_ARN],
    okta: {
      issuer: "https://example.okta.com/oauth2/default",
      audience: "api://hoth",
      allowedClientIds: ["0oa1", "0oa2"],
    },
    deletionWindowInDays: 7,
    viaServices: ["secretsmanager", "s3"],
  });
}

describe("SecretStore", () => {
  beforeEach(() => useStack("dev"));

  it("creates a rotating customer-managed key whose policy names who may administer and use it", async () => {
    newStore();
    await settle();
    const key = find("aws:kms/key:Key", "store-key");
    assert.equal(key.inputs.enableKeyRotation, true);
    assert.equal(key.inputs.deletionWindowInDays, 7);
    const statements = doc(key).Statement;
    assert.deepEqual(
      statements.map((s: { Sid: string }) => s.Sid),
      ["KeyAdministration", "UseThroughNamedServices", "CloudWatchLogsForThisStack"],
    );
    assert.deepEqual(statements[0].Principal, { AWS: [DEPLOYER_ROLE_ARN] });
    assert.ok(!statements[0].Action.some((a: string) => /Decrypt|Encrypt|GenerateDataKey/.test(a)));
    assert.deepEqual(statements[1], {
      Sid: "UseThroughNamedServices",
      Effect: "Allow",
      Principal: { AWS: `arn:aws:iam::${ACCOUNT_ID}:root` },
      Action: [
        "kms:Encrypt",
        "kms:Decrypt",
        "kms:ReEncrypt*",
        "kms:GenerateDataKey*",
        "kms:DescribeKey",
      ],
      Resource: "*",
      Condition: {
        StringEquals: {
          "kms:CallerAccount": ACCOUNT_ID,
          "kms:ViaService": [
            "secretsmanager.us-east-1.amazonaws.com",
            "s3.us-east-1.amazonaws.com",
          ],
        },
      },
    });
    assert.deepEqual(statements[2].Principal, { Service: "logs.us-east-1.amazonaws.com" });
    assert.deepEqual(statements[2].Condition, {
      ArnLike: {
        "kms:EncryptionContext:aws:logs:arn": `arn:aws:logs:us-east-1:${ACCOUNT_ID}:log-group:*hoth-dev*`,
      },
    });
    assert.equal(find("aws:kms/alias:Alias", "store-key-alias").inputs.name, "alias/hoth-dev");
  });

  it("stores the Okta settings from config and generated values for the other secrets, all with the key", async () => {
    newStore();
    await settle();
    const secrets = ofType("aws:secretsmanager/secret:Secret");
    assert.deepEqual(
      secrets.map((s) => [s.name, s.inputs.name, s.inputs.kmsKeyId, s.inputs.recoveryWindowInDays]),
      [
        ["store-okta", "hoth-dev/okta-settings", KEY_ARN, 7],
        ["store-app", "hoth-dev/app", KEY_ARN, 7],
        ["store-tokenization", "hoth-dev/tokenization-key", KEY_ARN, 7],
      ],
    );
    const version = (n: string) =>
      find("aws:secretsmanager/secretVersion:SecretVersion", `store-${n}-version`);
    assert.deepEqual(JSON.parse(plain(version("okta").inputs.secretString) as string), {
      issuer: "https://example.okta.com/oauth2/default",
      audience: "api://hoth",
      allowedClientIds: ["0oa1", "0oa2"],
    });
    assert.deepEqual(JSON.parse(plain(version("app").inputs.secretString) as string), {
      signingKey: "mock-generated-password",
    });
    assert.equal(
      find("random:index/randomPassword:RandomPassword", "store-app-value").inputs.length,
      48,
    );
    assert.equal(
      find("random:index/randomBytes:RandomBytes", "store-tokenization-value").inputs.length,
      32,
    );
  });

  it("grants a role read of exactly one secret, decryptable only through Secrets Manager", async () => {
    const store = newStore();
    const role = new aws.iam.Role("reader", { name: "hoth-dev-reader", assumeRolePolicy: "{}" });
    store.grantRead("app", role, "reader-app-read", {});
    store.seal();
    await settle();
    const grant = find("aws:iam/rolePolicy:RolePolicy", "reader-app-read");
    assert.equal(grant.inputs.role, "hoth-dev-reader");
    assert.deepEqual(doc(grant).Statement, [
      {
        Sid: "ReadSecret",
        Effect: "Allow",
        Action: ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
        Resource: secretArn("app"),
      },
      {
        Sid: "DecryptSecret",
        Effect: "Allow",
        Action: "kms:Decrypt",
        Resource: KEY_ARN,
        Condition: {
          StringEquals: {
            "kms:ViaService": "secretsmanager.us-east-1.amazonaws.com",
            "kms:EncryptionContext:SecretARN": secretArn("app"),
          },
        },
      },
    ]);
  });

  it("seals each secret with a policy denying non-TLS access and reads outside its named readers", async () => {
    const store = newStore();
    const role = new aws.iam.Role("reader", { name: "hoth-dev-reader", assumeRolePolicy: "{}" });
    store.grantRead("app", role, "reader-app-read", {});
    store.seal();
    await settle();
    const policyOf = (n: string) =>
      find("aws:secretsmanager/secretPolicy:SecretPolicy", `store-${n}-policy`);
    const app = policyOf("app");
    assert.equal(app.inputs.secretArn, secretArn("app"));
    assert.equal(app.inputs.blockPublicPolicy, true);
    assert.deepEqual(doc(app).Statement, [
      {
        Sid: "DenyInsecureTransport",
        Effect: "Deny",
        Principal: "*",
        Action: "secretsmanager:*",
        Resource: "*",
        Condition: { Bool: { "aws:SecureTransport": "false" } },
      },
      {
        Sid: "DenyReadOutsideNamedRoles",
        Effect: "Deny",
        Principal: "*",
        Action: "secretsmanager:GetSecretValue",
        Resource: "*",
        Condition: {
          ArnNotEquals: {
            "aws:PrincipalArn": [
              `arn:aws:iam::${ACCOUNT_ID}:role/hoth-dev-reader`,
              DEPLOYER_ROLE_ARN,
            ],
          },
        },
      },
    ]);
    // A secret nobody was granted is readable by the administrators alone.
    assert.deepEqual(
      doc(policyOf("okta")).Statement[1].Condition.ArnNotEquals["aws:PrincipalArn"],
      [DEPLOYER_ROLE_ARN],
    );
  });

  it("refuses a grant after seal(), naming the fix", () => {
    const store = newStore();
    store.seal();
    const role = new aws.iam.Role("late", { assumeRolePolicy: "{}" });
    assert.throws(() => store.grantRead("okta", role, "late-read", {}), {
      message: "grantRead('okta') after seal(): grant every reader before seal()",
    });
  });

  it("exposes the key and secret ARNs", async () => {
    const store = newStore();
    assert.equal(await unwrap(store.keyArn), KEY_ARN);
    assert.equal(await unwrap(store.secretArns.okta), secretArn("okta-settings"));
  });
});
