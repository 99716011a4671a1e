import { REQUIRED_TAGS } from "../contracts/config";
import { asList, type PolicyDocument, type Statement } from "../contracts/iam";

/**
 * HOTH's compliance rules as pure functions over a normalised view of a
 * stack's resources. The same functions run inside the Pulumi policy pack
 * (policy/index.ts, `pulumi preview --policy-pack policy`) and in the mocha
 * suite over every stack's mocked resource graph (test/policy.test.ts).
 */

/** One resource as the rules see it. */
export interface Res {
  urn: string;
  type: string;
  name: string;
  /** Physical id when known (mocks, or after create). */
  id?: string;
  props: Record<string, unknown>;
  /** Property name -> URNs of the resources that property's value came from. */
  deps: Record<string, string[]>;
  /** `defaultTags.tags` of the AWS provider that manages it. */
  providerDefaultTags?: Record<string, string>;
}

export interface Violation {
  rule: string;
  /** The offending resource; "" when the stack as a whole lacks something. */
  urn: string;
  message: string;
}

/**
 * What a stack's configuration says the rules must require (the pack reads it
 * from its policy config, written from the typed stack config by
 * scripts/policy-config.ts).
 */
export interface RuleContext {
  /** DynamoDB tables must have deletion protection (`hoth:registry.deletionProtection`). */
  requireTableDeletionProtection?: boolean;
  /**
   * The program must hold an audit trail. @default true; false only for the
   * one-time account bootstrap (bootstrap/), which holds no PHI and whose
   * changes the stack trails record as management events.
   */
  requireAuditTrail?: boolean;
}

export interface Rule {
  name: string;
  description: string;
  check(resources: Res[], context?: RuleContext): Violation[];
}

export const T = {
  bucket: "aws:s3/bucket:Bucket",
  sse: "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
  publicAccessBlock: "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
  bucketPolicy: "aws:s3/bucketPolicy:BucketPolicy",
  logGroup: "aws:cloudwatch/logGroup:LogGroup",
  role: "aws:iam/role:Role",
  rolePolicy: "aws:iam/rolePolicy:RolePolicy",
  iamPolicy: "aws:iam/policy:Policy",
  lambda: "aws:lambda/function:Function",
  lambdaPermission: "aws:lambda/permission:Permission",
  invokeConfig: "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig",
  eventSourceMapping: "aws:lambda/eventSourceMapping:EventSourceMapping",
  eventTarget: "aws:cloudwatch/eventTarget:EventTarget",
  bucketLogging: "aws:s3/bucketLogging:BucketLogging",
  trail: "aws:cloudtrail/trail:Trail",
  metricAlarm: "aws:cloudwatch/metricAlarm:MetricAlarm",
  stateMachine: "aws:sfn/stateMachine:StateMachine",
} as const;

/**
 * Actions that AWS documents as supporting no resource-level permissions, so
 * that `Resource: "*"` is the only valid form. Every entry names its source.
 */
export const UNSCOPABLE_ACTIONS: Record<string, string> = {
  "xray:PutTraceSegments":
    "https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsx-ray.html",
  "xray:PutTelemetryRecords":
    "https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsx-ray.html",
  "xray:GetSamplingRules":
    "https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsx-ray.html",
  "xray:GetSamplingTargets":
    "https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsx-ray.html",
  // Step Functions and API Gateway log delivery to CloudWatch Logs:
  "logs:CreateLogDelivery":
    "https://docs.aws.amazon.com/step-functions/latest/dg/cw-logs.html#cloudwatch-iam-policy",
  "logs:GetLogDelivery":
    "https://docs.aws.amazon.com/step-functions/latest/dg/cw-logs.html#cloudwatch-iam-policy",
  "logs:UpdateLogDelivery":
    "https://docs.aws.amazon.com/step-functions/latest/dg/cw-logs.html#cloudwatch-iam-policy",
  "logs:DeleteLogDelivery":
    "https://docs.aws.amazon.com/step-functions/latest/dg/cw-logs.html#cloudwatch-iam-policy",
  "logs:ListLogDeliveries":
    "https://docs.aws.amazon.com/step-functions/latest/dg/cw-logs.html#cloudwatch-iam-policy",
  "logs:PutResourcePolicy":
    "https://docs.aws.amazon.com/step-functions/latest/dg/cw-logs.html#cloudwatch-iam-policy",
  "logs:DescribeResourcePolicies":
    "https://docs.aws.amazon.com/step-functions/latest/dg/cw-logs.html#cloudwatch-iam-policy",
  "logs:DescribeLogGroups":
    "https://docs.aws.amazon.com/step-functions/latest/dg/cw-logs.html#cloudwatch-iam-policy",
  // CreateKey names no key yet: "Resource types: none"
  "kms:CreateKey":
    "https://docs.aws.amazon.com/service-authorization/latest/reference/list_awskeymanagementservice.html",
  // Glue security configurations are not resources IAM can name.
  "glue:CreateSecurityConfiguration":
    "https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsglue.html",
  "glue:GetSecurityConfiguration":
    "https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsglue.html",
  "glue:DeleteSecurityConfiguration":
    "https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsglue.html",
  "sts:GetCallerIdentity":
    "https://docs.aws.amazon.com/service-authorization/latest/reference/list_awssecuritytokenservice.html",
  "codebuild:CreateReportGroup":
    "https://docs.aws.amazon.com/service-authorization/latest/reference/list_awscodebuild.html",
  "codestar-connections:ListConnections":
    "https://docs.aws.amazon.com/service-authorization/latest/reference/list_awscodestarconnections.html",
};

/** Resource types that take tags, and so must carry the required ones. */
export const TAGGABLE = new Set<string>([
  T.bucket,
  T.logGroup,
  T.role,
  T.lambda,
  "aws:kms/key:Key",
  "aws:secretsmanager/secret:Secret",
  "aws:apigateway/restApi:RestApi",
  "aws:apigateway/stage:Stage",
  "aws:wafv2/webAcl:WebAcl",
  "aws:glue/job:Job",
  "aws:glue/catalogDatabase:CatalogDatabase",
  "aws:sfn/stateMachine:StateMachine",
  "aws:dynamodb/table:Table",
  "aws:sns/topic:Topic",
  "aws:cloudwatch/eventRule:EventRule",
  "aws:cloudwatch/eventBus:EventBus",
  "aws:codebuild/project:Project",
  "aws:codepipeline/pipeline:Pipeline",
  "aws:codestarconnections/connection:Connection",
  T.trail,
  T.metricAlarm,
]);

const v = (rule: string, r: Res, message: string): Violation => ({ rule, urn: r.urn, message });

/** Parses a policy input, which may be a JSON string or an object. */
export function policyDoc(value: unknown): PolicyDocument | undefined {
  if (value === undefined || value === null || value === "") return undefined;
  const doc = typeof value === "string" ? JSON.parse(value) : value;
  return doc as PolicyDocument;
}

/** True when `r.props[prop]` refers to `target` (by dependency, id, name or ARN). */
export function refersTo(r: Res, prop: string, target: Res): boolean {
  if (r.deps[prop]?.includes(target.urn)) return true;
  const value = r.props[prop];
  if (typeof value !== "string" || value === "") return false;
  return [target.id, target.props.bucket, target.props.arn, target.props.name].includes(value);
}

const linked = (resources: Res[], type: string, prop: string, target: Res) =>
  resources.filter((r) => r.type === type && refersTo(r, prop, target));

/** The default-encryption settings of a bucket's SSE configurations. */
const defaultEncryption = (rs: Res[], b: Res) =>
  linked(rs, T.sse, "bucket", b).flatMap((c) =>
    asArray(c.props.rules)
      .map(
        (rule) =>
          (rule as Record<string, Record<string, unknown> | undefined>)
            .applyServerSideEncryptionByDefault,
      )
      .filter((d): d is Record<string, unknown> => d !== undefined),
  );

const s3EncryptedWithKms: Rule = {
  name: "s3-bucket-kms-encryption",
  description:
    "Every S3 bucket is encrypted by default with a KMS key, except S3 server access log destinations, which S3 supports only with SSE-S3 (https://docs.aws.amazon.com/AmazonS3/latest/userguide/enable-server-access-logging.html).",
  check: (rs) =>
    rs
      .filter((b) => b.type === T.bucket)
      .filter((b) => {
        const defaults = defaultEncryption(rs, b);
        const kms = defaults.some(
          (d) => String(d.sseAlgorithm).startsWith("aws:kms") && Boolean(d.kmsMasterKeyId),
        );
        const accessLogDestination =
          defaults.some((d) => d.sseAlgorithm === "AES256") &&
          linked(rs, T.bucketLogging, "targetBucket", b).length > 0;
        return !kms && !accessLogDestination;
      })
      .map((b) =>
        v("s3-bucket-kms-encryption", b, `bucket ${b.name} has no SSE-KMS default encryption`),
      ),
};

const s3PublicAccessBlocked: Rule = {
  name: "s3-public-access-blocked",
  description: "Every S3 bucket blocks all public access (all four settings on).",
  check: (rs) =>
    rs
      .filter((b) => b.type === T.bucket)
      .filter(
        (b) =>
          !linked(rs, T.publicAccessBlock, "bucket", b).some((p) =>
            [
              "blockPublicAcls",
              "blockPublicPolicy",
              "ignorePublicAcls",
              "restrictPublicBuckets",
            ].every((k) => p.props[k] === true),
          ),
      )
      .map((b) =>
        v("s3-public-access-blocked", b, `bucket ${b.name} does not block all public access`),
      ),
};

function deniesInsecureTransport(doc: PolicyDocument | undefined): boolean {
  return (doc?.Statement ?? []).some(
    (s) =>
      s.Effect === "Deny" &&
      String(s.Condition?.Bool?.["aws:SecureTransport"]) === "false" &&
      asList(s.Action).some((a) => a === "*" || a === "s3:*"),
  );
}

const s3TlsOnly: Rule = {
  name: "s3-tls-only",
  description: "Every S3 bucket has a policy that denies requests made without TLS.",
  check: (rs) =>
    rs
      .filter((b) => b.type === T.bucket)
      .filter(
        (b) =>
          !linked(rs, T.bucketPolicy, "bucket", b).some((p) =>
            deniesInsecureTransport(policyDoc(p.props.policy)),
          ),
      )
      .map((b) =>
        v("s3-tls-only", b, `bucket ${b.name} has no policy denying aws:SecureTransport=false`),
      ),
};

const logGroupsRetainedAndEncrypted: Rule = {
  name: "log-group-retention-and-kms",
  description: "Every log group has a retention period and a KMS key.",
  check: (rs) =>
    rs
      .filter((r) => r.type === T.logGroup)
      .flatMap((r) => [
        ...(Number(r.props.retentionInDays) > 0
          ? []
          : [
              v(
                "log-group-retention-and-kms",
                r,
                `log group ${r.name} keeps logs forever (no retentionInDays)`,
              ),
            ]),
        ...(r.props.kmsKeyId
          ? []
          : [
              v(
                "log-group-retention-and-kms",
                r,
                `log group ${r.name} is not encrypted with a KMS key (kmsKeyId)`,
              ),
            ]),
      ]),
};

/** Identity-based policy documents of a resource, if it holds any. */
function identityPolicies(r: Res): PolicyDocument[] {
  switch (r.type) {
    case T.rolePolicy:
    case T.iamPolicy: {
      const d = policyDoc(r.props.policy);
      return d ? [d] : [];
    }
    case T.role:
      return asArray(r.props.inlinePolicies)
        .map((p) => policyDoc((p as { policy?: unknown }).policy))
        .filter((d): d is PolicyDocument => d !== undefined);
    default:
      return [];
  }
}

export function statementProblems(s: Statement): string[] {
  if (s.Effect !== "Allow") return [];
  const actions = asList(s.Action);
  const problems: string[] = [];
  if (actions.some((a) => a === "*" || a === "*:*")) problems.push(`allows Action "*"`);
  if (asList(s.Resource).includes("*")) {
    const scopable = actions.filter((a) => !(a in UNSCOPABLE_ACTIONS));
    if (scopable.length) {
      problems.push(`uses Resource "*" for actions that can be scoped: ${scopable.join(", ")}`);
    }
  }
  return problems;
}

const iamLeastPrivilege: Rule = {
  name: "iam-no-wildcards",
  description:
    'No IAM statement allows Action "*"; Resource "*" only for actions AWS documents as unscopable.',
  check: (rs) =>
    rs.flatMap((r) =>
      identityPolicies(r).flatMap((d) =>
        d.Statement.flatMap((s) =>
          statementProblems(s).map((p) =>
            v("iam-no-wildcards", r, `${r.name} statement ${s.Sid ?? "(no Sid)"} ${p}`),
          ),
        ),
      ),
    ),
};

const lambdaFailureHandling: Rule = {
  name: "lambda-failure-destination",
  description:
    "Every Lambda has a dead-letter queue or an on-failure destination, or is synchronous-only: tagged invocation=synchronous and invoked by nothing but API Gateway.",
  check: (rs) =>
    rs
      .filter((f) => f.type === T.lambda)
      .flatMap((f) => {
        const dlq = (f.props.deadLetterConfig as { targetArn?: string } | undefined)?.targetArn;
        const onFailure = linked(rs, T.invokeConfig, "functionName", f).some(
          (c) =>
            (c.props.destinationConfig as { onFailure?: { destination?: string } } | undefined)
              ?.onFailure?.destination,
        );
        if (dlq || onFailure) return [];
        const tags = f.props.tags as Record<string, string> | undefined;
        if (tags?.invocation !== "synchronous") {
          return [
            v(
              "lambda-failure-destination",
              f,
              `function ${f.name} has no DLQ or on-failure destination and is not marked synchronous`,
            ),
          ];
        }
        const asyncCallers = [
          ...linked(rs, T.lambdaPermission, "function", f).filter(
            (p) => p.props.principal !== "apigateway.amazonaws.com",
          ),
          ...linked(rs, T.eventSourceMapping, "functionName", f),
          ...linked(rs, T.eventTarget, "arn", f),
        ];
        return asyncCallers.map((c) =>
          v(
            "lambda-failure-destination",
            f,
            `synchronous-only function ${f.name} is invoked asynchronously by ${c.name}`,
          ),
        );
      }),
};

const lambdaTracingAndConcurrency: Rule = {
  name: "lambda-tracing-and-concurrency",
  description: "Every Lambda has active X-Ray tracing and a reserved (bounded) concurrency.",
  check: (rs) =>
    rs
      .filter((f) => f.type === T.lambda)
      .flatMap((f) => [
        ...((f.props.tracingConfig as { mode?: string } | undefined)?.mode === "Active"
          ? []
          : [
              v(
                "lambda-tracing-and-concurrency",
                f,
                `function ${f.name} does not have tracingConfig.mode Active`,
              ),
            ]),
        ...(Number(f.props.reservedConcurrentExecutions) >= 1
          ? []
          : [
              v(
                "lambda-tracing-and-concurrency",
                f,
                `function ${f.name} has no reservedConcurrentExecutions`,
              ),
            ]),
      ]),
};

const requiredTags: Rule = {
  name: "required-tags",
  description: `Every taggable resource carries ${REQUIRED_TAGS.join(", ")} (own tags or provider defaultTags).`,
  check: (rs) =>
    rs
      .filter((r) => TAGGABLE.has(r.type))
      .flatMap((r) => {
        const tags = { ...r.providerDefaultTags, ...(r.props.tags as Record<string, string>) };
        const missing = REQUIRED_TAGS.filter((k) => !tags[k]);
        return missing.length
          ? [v("required-tags", r, `${r.name} lacks tags: ${missing.join(", ")}`)]
          : [];
      }),
};

const kmsKeysRotated: Rule = {
  name: "kms-key-rotation",
  description:
    "Every customer-managed symmetric KMS key rotates automatically (KMS rotates no asymmetric key: https://docs.aws.amazon.com/kms/latest/developerguide/rotate-keys.html).",
  check: (rs) =>
    rs
      .filter(
        (k) =>
          k.type === "aws:kms/key:Key" &&
          k.props.keyUsage !== "SIGN_VERIFY" &&
          k.props.enableKeyRotation !== true,
      )
      .map((k) => v("kms-key-rotation", k, `key ${k.name} does not have enableKeyRotation`)),
};

const secretsConfined: Rule = {
  name: "secret-resource-policy",
  description:
    "Every secret is KMS-encrypted with a customer key and has a resource policy that denies non-TLS access and reads by principals outside a named list.",
  check: (rs) =>
    rs
      .filter((s) => s.type === "aws:secretsmanager/secret:Secret")
      .flatMap((s) => {
        const out: Violation[] = [];
        if (!s.props.kmsKeyId) {
          out.push(
            v(
              "secret-resource-policy",
              s,
              `secret ${s.name} uses the AWS-managed key (set kmsKeyId)`,
            ),
          );
        }
        const docs = linked(rs, "aws:secretsmanager/secretPolicy:SecretPolicy", "secretArn", s).map(
          (p) => policyDoc(p.props.policy),
        );
        const tls = docs.some((d) =>
          (d?.Statement ?? []).some(
            (st) =>
              st.Effect === "Deny" &&
              String(st.Condition?.Bool?.["aws:SecureTransport"]) === "false",
          ),
        );
        const named = docs.some((d) =>
          (d?.Statement ?? []).some(
            (st) =>
              st.Effect === "Deny" &&
              asList(st.Action).includes("secretsmanager:GetSecretValue") &&
              asList(st.Condition?.ArnNotEquals?.["aws:PrincipalArn"] as string[]).length > 0,
          ),
        );
        if (!tls)
          out.push(
            v("secret-resource-policy", s, `secret ${s.name} has no policy denying non-TLS access`),
          );
        if (!named) {
          out.push(
            v(
              "secret-resource-policy",
              s,
              `secret ${s.name} has no policy confining reads to named principals`,
            ),
          );
        }
        return out;
      }),
};

const auditTrail: Rule = {
  name: "audit-trail",
  description:
    "The stack has a CloudTrail trail that is logging, validates its log files and encrypts them with a KMS key.",
  check: (rs, context = {}) => {
    if (context.requireAuditTrail === false) return [];
    const trails = rs.filter((r) => r.type === T.trail);
    const problems = (t: Res) => [
      ...(t.props.enableLogFileValidation === true ? [] : ["log file validation"]),
      ...(t.props.kmsKeyId ? [] : ["a KMS key (kmsKeyId)"]),
      ...(t.props.enableLogging === false ? ["logging on"] : []),
    ];
    if (trails.some((t) => problems(t).length === 0)) return [];
    if (!trails.length) {
      return [
        {
          rule: "audit-trail",
          urn: "",
          message: "the stack has no CloudTrail trail (components/auditTrail.ts)",
        },
      ];
    }
    return trails.map((t) =>
      v("audit-trail", t, `trail ${t.name} lacks ${problems(t).join(", ")}`),
    );
  },
};

/** True when alarm `a` watches `metric` of `target` through dimension `dimension`. */
function watches(a: Res, namespace: string, metric: string, dimension: string, target: Res) {
  if (a.props.namespace !== namespace || a.props.metricName !== metric) return false;
  if (a.deps.dimensions?.includes(target.urn)) return true;
  const value = (a.props.dimensions as Record<string, unknown> | undefined)?.[dimension];
  return (
    typeof value === "string" &&
    value !== "" &&
    [target.id, target.props.name, target.props.arn].includes(value)
  );
}

const errorAlarms: Rule = {
  name: "error-alarms",
  description:
    "Every Lambda function has an alarm with an action on its Errors, every state machine on its ExecutionsFailed.",
  check: (rs) => {
    const alarms = rs.filter(
      (a) => a.type === T.metricAlarm && asArray(a.props.alarmActions).length > 0,
    );
    const unwatched = (type: string, namespace: string, metric: string, dimension: string) =>
      rs
        .filter((r) => r.type === type)
        .filter((r) => !alarms.some((a) => watches(a, namespace, metric, dimension, r)));
    return [
      ...unwatched(T.lambda, "AWS/Lambda", "Errors", "FunctionName").map((f) =>
        v("error-alarms", f, `function ${f.name} has no alarm with an action on AWS/Lambda Errors`),
      ),
      ...unwatched(T.stateMachine, "AWS/States", "ExecutionsFailed", "StateMachineArn").map((m) =>
        v(
          "error-alarms",
          m,
          `state machine ${m.name} has no alarm with an action on AWS/States ExecutionsFailed`,
        ),
      ),
    ];
  },
};

const dynamoTablesProtected: Rule = {
  name: "dynamodb-table-protection",
  description:
    "Every DynamoDB table is encrypted with a customer-managed KMS key, has point-in-time recovery, and has deletion protection where the stack requires it.",
  check: (rs, context = {}) =>
    rs
      .filter((t) => t.type === "aws:dynamodb/table:Table")
      .flatMap((t) => {
        const out: Violation[] = [];
        const sse = t.props.serverSideEncryption as
          | { enabled?: boolean; kmsKeyArn?: string }
          | undefined;
        if (sse?.enabled !== true || !sse.kmsKeyArn) {
          out.push(
            v(
              "dynamodb-table-protection",
              t,
              `table ${t.name} is not encrypted with a customer-managed key (serverSideEncryption.kmsKeyArn)`,
            ),
          );
        }
        if ((t.props.pointInTimeRecovery as { enabled?: boolean } | undefined)?.enabled !== true) {
          out.push(
            v("dynamodb-table-protection", t, `table ${t.name} has no point-in-time recovery`),
          );
        }
        if (context.requireTableDeletionProtection && t.props.deletionProtectionEnabled !== true) {
          out.push(
            v(
              "dynamodb-table-protection",
              t,
              `table ${t.name} has no deletion protection, which this stack requires`,
            ),
          );
        }
        return out;
      }),
};

export const RULES: Rule[] = [
  dynamoTablesProtected,
  kmsKeysRotated,
  secretsConfined,
  s3EncryptedWithKms,
  s3PublicAccessBlocked,
  s3TlsOnly,
  logGroupsRetainedAndEncrypted,
  iamLeastPrivilege,
  lambdaFailureHandling,
  lambdaTracingAndConcurrency,
  requiredTags,
  auditTrail,
  errorAlarms,
];

export function checkAll(resources: Res[], context: RuleContext = {}): Violation[] {
  return RULES.flatMap((rule) => rule.check(resources, context));
}

function asArray(value: unknown): unknown[] {
  return Array.isArray(value) ? value : value === undefined || value === null ? [] : [value];
}
