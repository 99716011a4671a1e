import * as assert from "node:assert/strict";
import { fromPolicyResource } from "../policy/adapt";
import { checkAll, type Res, RULES, statementProblems, T } from "../policy/rules";

const TAGS = { project: "hoth", stack: "dev", owner: "team", "data-classification": "phi" };

const res = (
  type: string,
  name: string,
  props: Record<string, unknown>,
  extra: Partial<Res> = {},
): Res => ({
  urn: `urn:pulumi:dev::hoth::${type}::${name}`,
  type,
  name,
  props,
  deps: {},
  providerDefaultTags: TAGS,
  ...extra,
});

const rule = (name: string) => {
  const r = RULES.find((x) => x.name === name);
  if (!r) throw new Error(`no rule ${name}`);
  return r;
};

const messages = (name: string, rs: Res[]) =>
  rule(name)
    .check(rs)
    .map((v) => v.message);

describe("compliance rules", () => {
  it("accepts Resource '*' only for actions on the documented allow-list", () => {
    assert.deepEqual(
      statementProblems({ Effect: "Allow", Action: ["xray:PutTraceSegments"], Resource: "*" }),
      [],
    );
    assert.deepEqual(
      statementProblems({
        Effect: "Allow",
        Action: ["s3:GetObject", "xray:PutTraceSegments"],
        Resource: "*",
      }),
      ['uses Resource "*" for actions that can be scoped: s3:GetObject'],
    );
    assert.deepEqual(
      statementProblems({ Effect: "Allow", Action: "*", Resource: "arn:aws:s3:::b" }),
      ['allows Action "*"'],
    );
    assert.deepEqual(statementProblems({ Effect: "Deny", Action: "*", Resource: "*" }), []);
  });

  it("finds wildcards in role policies, managed policies and inline role policies", () => {
    const bad = JSON.stringify({
      Version: "2012-10-17",
      Statement: [{ Sid: "Bad", Effect: "Allow", Action: "*", Resource: "*" }],
    });
    const rs = [
      res(T.rolePolicy, "rp", { policy: bad }),
      res(T.iamPolicy, "mp", { policy: bad }),
      res(T.role, "r", { tags: TAGS, inlinePolicies: [{ name: "i", policy: bad }] }),
    ];
    assert.deepEqual(messages("iam-no-wildcards", rs), [
      'rp statement Bad allows Action "*"',
      'rp statement Bad uses Resource "*" for actions that can be scoped: *',
      'mp statement Bad allows Action "*"',
      'mp statement Bad uses Resource "*" for actions that can be scoped: *',
      'r statement Bad allows Action "*"',
      'r statement Bad uses Resource "*" for actions that can be scoped: *',
    ]);
  });

  it("requires retention and a KMS key on every log group", () => {
    assert.deepEqual(
      messages("log-group-retention-and-kms", [
        res(T.logGroup, "forever", { kmsKeyId: "arn:k" }),
        res(T.logGroup, "plain", { retentionInDays: 14 }),
        res(T.logGroup, "good", { retentionInDays: 14, kmsKeyId: "arn:k" }),
      ]),
      [
        "log group forever keeps logs forever (no retentionInDays)",
        "log group plain is not encrypted with a KMS key (kmsKeyId)",
      ],
    );
  });

  it("requires tracing, reserved concurrency and failure handling on every Lambda", () => {
    const fn = (name: string, props: Record<string, unknown>) =>
      res(T.lambda, name, {
        name,
        tracingConfig: { mode: "Active" },
        reservedConcurrentExecutions: 5,
        ...props,
      });
    const rs = [
      fn("async-no-dlq", {}),
      fn("untraced", {
        tracingConfig: { mode: "PassThrough" },
        deadLetterConfig: { targetArn: "arn:q" },
      }),
      fn("unbounded", {
        reservedConcurrentExecutions: undefined,
        deadLetterConfig: { targetArn: "arn:q" },
      }),
      fn("sync", { tags: { ...TAGS, invocation: "synchronous" } }),
      res(T.lambdaPermission, "sync-apigw", {
        function: "sync",
        principal: "apigateway.amazonaws.com",
      }),
      fn("sync-but-s3", { tags: { ...TAGS, invocation: "synchronous" } }),
      res(T.lambdaPermission, "sync-but-s3-perm", {
        function: "sync-but-s3",
        principal: "s3.amazonaws.com",
      }),
      fn("with-destination", {}),
      res(T.invokeConfig, "dest", {
        functionName: "with-destination",
        destinationConfig: { onFailure: { destination: "arn:sqs" } },
      }),
    ];
    assert.deepEqual(messages("lambda-failure-destination", rs), [
      "function async-no-dlq has no DLQ or on-failure destination and is not marked synchronous",
      "synchronous-only function sync-but-s3 is invoked asynchronously by sync-but-s3-perm",
    ]);
    assert.deepEqual(messages("lambda-tracing-and-concurrency", rs), [
      "function untraced does not have tracingConfig.mode Active",
      "function unbounded has no reservedConcurrentExecutions",
    ]);
  });

  it("counts provider default tags and the resource's own tags together", () => {
    const rs = [
      res(T.bucket, "own", { tags: TAGS }, { providerDefaultTags: undefined }),
      res(
        T.bucket,
        "partial",
        { tags: { owner: "x" } },
        { providerDefaultTags: { project: "hoth" } },
      ),
      res(T.bucket, "inherited", {}),
    ];
    assert.deepEqual(messages("required-tags", rs), [
      "partial lacks tags: stack, data-classification",
    ]);
  });

  it("links resources through the engine's property dependencies when values are unknown", () => {
    // Prepare: a bucket whose name is not known yet (preview), configured by dependency only
    const bucket = fromPolicyResource({
      urn: "urn:b",
      type: T.bucket,
      name: "lake",
      props: { tags: TAGS },
      propertyDependencies: {},
      provider: { props: { defaultTags: JSON.stringify({ tags: TAGS }) } },
    });
    const sse = fromPolicyResource({
      urn: "urn:sse",
      type: T.sse,
      name: "lake-sse",
      props: {
        rules: [
          {
            applyServerSideEncryptionByDefault: {
              sseAlgorithm: "aws:kms",
              kmsMasterKeyId: "arn:k",
            },
          },
        ],
      },
      propertyDependencies: { bucket: [{ urn: "urn:b" }] },
    });
    // Act / Assess
    assert.deepEqual(bucket.providerDefaultTags, TAGS);
    assert.deepEqual(messages("s3-bucket-kms-encryption", [bucket, sse]), []);
    assert.deepEqual(messages("s3-bucket-kms-encryption", [bucket]), [
      "bucket lake has no SSE-KMS default encryption",
    ]);
  });

  it("requires every secret to use the customer key and carry a confining resource policy", () => {
    const secret = res("aws:secretsmanager/secret:Secret", "s", { arn: "arn:s", tags: TAGS });
    const tlsOnly = res("aws:secretsmanager/secretPolicy:SecretPolicy", "p", {
      secretArn: "arn:s",
      policy: JSON.stringify({
        Version: "2012-10-17",
        Statement: [
          {
            Effect: "Deny",
            Principal: "*",
            Action: "secretsmanager:*",
            Resource: "*",
            Condition: { Bool: { "aws:SecureTransport": "false" } },
          },
        ],
      }),
    });
    assert.deepEqual(messages("secret-resource-policy", [secret, tlsOnly]), [
      "secret s uses the AWS-managed key (set kmsKeyId)",
      "secret s has no policy confining reads to named principals",
    ]);
  });

  it("flags a customer key without rotation", () => {
    assert.deepEqual(
      checkAll([res("aws:kms/key:Key", "k", { tags: TAGS, enableKeyRotation: false })]),
      [
        {
          rule: "kms-key-rotation",
          urn: "urn:pulumi:dev::hoth::aws:kms/key:Key::k",
          message: "key k does not have enableKeyRotation",
        },
      ],
    );
  });

  it("does not ask an asymmetric signing key to rotate (KMS cannot)", () => {
    assert.deepEqual(
      checkAll([
        res("aws:kms/key:Key", "signing", {
          tags: TAGS,
          keyUsage: "SIGN_VERIFY",
          customerMasterKeySpec: "ECC_NIST_P384",
        }),
      ]),
      [],
    );
  });

  it("requires DynamoDB tables to use a customer key and PITR, and deletion protection where the stack says", () => {
    const table = (name: string, props: Record<string, unknown>) =>
      res("aws:dynamodb/table:Table", name, { tags: TAGS, ...props });
    const good = {
      serverSideEncryption: { enabled: true, kmsKeyArn: "arn:aws:kms:us-east-1:1:key/k" },
      pointInTimeRecovery: { enabled: true },
      deletionProtectionEnabled: true,
    };
    const rs = [
      table("good", good),
      table("aws-owned", { ...good, serverSideEncryption: { enabled: false } }),
      table("aws-managed", { ...good, serverSideEncryption: { enabled: true } }),
      table("no-pitr", { ...good, pointInTimeRecovery: { enabled: false } }),
      table("unprotected", { ...good, deletionProtectionEnabled: false }),
    ];
    const check = (required: boolean) =>
      rule("dynamodb-table-protection")
        .check(rs, { requireTableDeletionProtection: required })
        .map((x) => x.message);
    assert.deepEqual(check(false), [
      "table aws-owned is not encrypted with a customer-managed key (serverSideEncryption.kmsKeyArn)",
      "table aws-managed is not encrypted with a customer-managed key (serverSideEncryption.kmsKeyArn)",
      "table no-pitr has no point-in-time recovery",
    ]);
    assert.deepEqual(check(true), [
      ...check(false),
      "table unprotected has no deletion protection, which this stack requires",
    ]);
  });
});
