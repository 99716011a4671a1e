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

/** A trail that satisfies the audit-trail rule. */
const TRAIL = res(T.trail, "trail", {
  name: "hoth-dev-audit",
  enableLogFileValidation: true,
  enableLogging: true,
  kmsKeyId: "arn:aws:kms:us-east-1:123456789012:key/k",
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
      checkAll([res("aws:kms/key:Key", "k", { tags: TAGS, enableKeyRotation: false }), TRAIL]),
      [
        {
          rule: "kms-key-rotation",
          urn: "urn:pulumi:dev::hoth::aws:kms/key:Key::k",
          message: "key k does not have enableKeyRotation",
        },
      ],
    );
  });

  it("requires a logging trail with log file validation and a KMS key in the stack", () => {
    assert.deepEqual(messages("audit-trail", [TRAIL]), []);
    assert.deepEqual(rule("audit-trail").check([res(T.bucket, "b", {})]), [
      {
        rule: "audit-trail",
        urn: "",
        message: "the stack has no CloudTrail trail (components/auditTrail.ts)",
      },
    ]);
    const weak = res(T.trail, "weak", { name: "weak", enableLogFileValidation: false });
    const stopped = res(T.trail, "stopped", { ...TRAIL.props, enableLogging: false });
    assert.deepEqual(messages("audit-trail", [weak, stopped]), [
      "trail weak lacks log file validation, a KMS key (kmsKeyId)",
      "trail stopped lacks logging on",
    ]);
    // One good trail is enough, whatever else the account has.
    assert.deepEqual(messages("audit-trail", [weak, TRAIL]), []);
  });

  it("requires an error alarm with an action on every function and state machine", () => {
    const fn = (name: string) => res(T.lambda, name, { name }, { id: name });
    const machineArn = "arn:aws:states:us-east-1:123456789012:stateMachine:flow";
    const machine = res(T.stateMachine, "flow", { name: "flow", arn: machineArn });
    const alarm = (
      name: string,
      namespace: string,
      metricName: string,
      dimensions: Record<string, string>,
      alarmActions = ["arn:aws:sns:us-east-1:123456789012:alerts"],
    ) => res(T.metricAlarm, name, { namespace, metricName, dimensions, alarmActions });
    const rs = [
      fn("watched"),
      fn("throttles-only"),
      fn("silent"),
      fn("by-dependency"),
      machine,
      alarm("a1", "AWS/Lambda", "Errors", { FunctionName: "watched" }),
      alarm("a2", "AWS/Lambda", "Throttles", { FunctionName: "throttles-only" }),
      alarm("a3", "AWS/Lambda", "Errors", { FunctionName: "silent" }, []),
      // In a preview the name is unknown: the engine's dependency links them.
      res(
        T.metricAlarm,
        "a4",
        { namespace: "AWS/Lambda", metricName: "Errors", dimensions: {}, alarmActions: ["arn:t"] },
        {
          deps: {
            dimensions: ["urn:pulumi:dev::hoth::aws:lambda/function:Function::by-dependency"],
          },
        },
      ),
      alarm("a5", "AWS/States", "ExecutionsTimedOut", { StateMachineArn: machineArn }),
    ];
    assert.deepEqual(messages("error-alarms", rs), [
      "function throttles-only has no alarm with an action on AWS/Lambda Errors",
      "function silent has no alarm with an action on AWS/Lambda Errors",
      "state machine flow has no alarm with an action on AWS/States ExecutionsFailed",
    ]);
    assert.deepEqual(
      messages("error-alarms", [
        machine,
        alarm("a6", "AWS/States", "ExecutionsFailed", { StateMachineArn: machineArn }),
      ]),
      [],
    );
  });

  it("does not ask an asymmetric signing key to rotate (KMS cannot)", () => {
    assert.deepEqual(
      messages("kms-key-rotation", [
        res("aws:kms/key:Key", "signing", {
          tags: TAGS,
          keyUsage: "SIGN_VERIFY",
          customerMasterKeySpec: "ECC_NIST_P384",
        }),
        res("aws:kms/key:Key", "symmetric", { tags: TAGS, enableKeyRotation: false }),
      ]),
      ["key symmetric does not have enableKeyRotation"],
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

  it("accepts SSE-S3 only on a bucket that receives S3 server access logs", () => {
    const sse = (bucket: string, d: Record<string, unknown>) =>
      res(T.sse, `${bucket}-sse`, { bucket, rules: [{ applyServerSideEncryptionByDefault: d }] });
    const bucket = (name: string) => res(T.bucket, name, { bucket: name }, { id: name });
    const rs = [
      bucket("access-logs"),
      sse("access-logs", { sseAlgorithm: "AES256" }),
      res(T.bucketLogging, "logging", { bucket: "audit", targetBucket: "access-logs" }),
      bucket("plain-s3"),
      sse("plain-s3", { sseAlgorithm: "AES256" }),
      bucket("kms"),
      sse("kms", { sseAlgorithm: "aws:kms", kmsMasterKeyId: "arn:k" }),
      bucket("kms-without-key"),
      sse("kms-without-key", { sseAlgorithm: "aws:kms" }),
    ];
    assert.deepEqual(messages("s3-bucket-kms-encryption", rs), [
      "bucket plain-s3 has no SSE-KMS default encryption",
      "bucket kms-without-key has no SSE-KMS default encryption",
    ]);
  });
});
