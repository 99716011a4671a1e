import { z } from "zod";
import { MIN_LAMBDA_TIMEOUT_SECONDS } from "./budgets";

/**
 * Typed, validated stack configuration. Every setting of a stack is read here,
 * once; components receive plain typed values and never read config
 * themselves. Stacks differ only in these values (see Pulumi.<stack>.yaml).
 */

/** CloudWatch Logs accepts only these retention periods (PutRetentionPolicy). */
export const LOG_RETENTION_DAYS = [
  1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288,
  3653,
] as const;

const httpsUrl = z
  .url({ protocol: /^https$/, error: "must be an https:// URL" })
  .refine((u) => !u.endsWith("/"), "must not end with '/'");

const intIn = (min: number, max: number) =>
  z.coerce
    .number({ error: "must be a number" })
    .int("must be a whole number")
    .min(min, `must be at least ${min}`)
    .max(max, `must be at most ${max}`);

const bool = z.preprocess(
  (v) => (v === "true" ? true : v === "false" ? false : v),
  z.boolean({ error: "must be true or false" }),
);

const oktaSchema = z.strictObject({
  issuer: httpsUrl,
  audience: z.string().min(1, "must not be empty"),
  allowedClientIds: z
    .array(z.string().regex(/^[A-Za-z0-9_-]{1,100}$/, "must be an Okta client id"))
    .min(1, "must list at least one client id"),
  /** @default `${issuer}/v1/keys` */
  jwksUri: httpsUrl.optional(),
  /** The access-token claim that carries the caller's organisation. @default "org" */
  orgClaim: z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_]{0,63}$/, "must be a claim name")
    .default("org"),
});

const apiSchema = z.strictObject({
  throttlingRateLimit: intIn(1, 10_000),
  throttlingBurstLimit: intIn(1, 5_000),
  /** API Gateway caches authorizer results at most 3600 s. @default 300 */
  authorizerCacheTtlSeconds: intIn(0, 3600).default(300),
  wafEnabled: bool,
  /** WAF rate-based rules take 10..2,000,000,000 requests per 5 minutes. */
  wafRateLimitPer5Min: intIn(10, 2_000_000_000),
});

const lambdaSchema = z.strictObject({
  memorySizeMb: intIn(128, 10_240),
  /**
   * API functions' timeout: at least what one AWS call may take with its
   * retries plus a margin to answer (contracts/budgets.ts), at most API
   * Gateway's 29 s integration timeout.
   */
  timeoutSeconds: intIn(MIN_LAMBDA_TIMEOUT_SECONDS, 29),
  /** Reserved concurrency bounds every function of the stack. */
  reservedConcurrency: intIn(1, 1000),
});

const registrySchema = z.strictObject({
  /** DynamoDB deletion protection of the member registry table. */
  deletionProtection: bool,
  /** Timeout of the registry export function (s). @default 300 */
  exportTimeoutSeconds: intIn(30, 900).default(300),
});

const glueSchema = z.strictObject({
  /** Glue 5.0 worker type (https://docs.aws.amazon.com/glue/latest/dg/add-job.html). */
  workerType: z.enum(["G.1X", "G.2X", "G.4X", "G.8X"], {
    error: "must be G.1X, G.2X, G.4X or G.8X",
  }),
  numberOfWorkers: intIn(2, 299),
  timeoutMinutes: intIn(1, 2880),
  maxConcurrentRuns: intIn(1, 100),
  /** Days quarantined records are kept before expiry. */
  quarantineRetentionDays: intIn(1, 3650),
  /** Days landing-zone objects are kept after ingestion. */
  landingRetentionDays: intIn(1, 3650),
});

const migrationSchema = z.strictObject({
  /** EventBridge schedule, e.g. `cron(0 2 * * ? *)`; used when scheduleEnabled. */
  scheduleExpression: z
    .string()
    .regex(
      /^(rate\(\d+ (minute|minutes|hour|hours|day|days)\)|cron\(.+\))$/,
      "must be rate(...) or cron(...)",
    )
    .optional(),
  scheduleEnabled: bool,
  /** The input of scheduled runs: the organisation and the prefix under its landing area. */
  scheduledOrg: z.string().regex(/^[a-z0-9-]{1,64}$/, "must be an organisation id (a-z, 0-9, -)"),
  scheduledInputPrefix: z.string().min(1),
  /** Step Functions execution log level. */
  logLevel: z.enum(["ALL", "ERROR", "FATAL", "OFF"], { error: "must be ALL, ERROR, FATAL or OFF" }),
});

/** A decimal number in (0, 100]. */
const percent = z.coerce
  .number({ error: "must be a number" })
  .gt(0, "must be more than 0")
  .max(100, "must be at most 100");

const auditSchema = z.strictObject({
  /**
   * Days CloudTrail log files (and the access logs of their bucket) are kept.
   * At least CloudTrail's own 90-day event history; HIPAA keeps compliance
   * documentation six years (45 CFR 164.316(b)(2)), hence 2192 in prod.
   */
  retentionDays: intIn(90, 3653),
});

const alarmsSchema = z.strictObject({
  /** Share of API requests answered 5XX (percent of the period's requests). */
  api5xxRatePercent: percent,
  /** p99 of API Gateway's end-to-end latency (ms); API Gateway gives up at 29 s. */
  apiLatencyP99Ms: intIn(50, 29_000),
  /** Errors of one function in one period that alarm (the authorizer's included). */
  lambdaErrors: intIn(1, 100_000),
  /** Throttled invocations of one function in one period that alarm. */
  lambdaThrottles: intIn(1, 100_000),
  /** A function's maximum duration above this share of its timeout alarms. @default 80 */
  lambdaDurationPercentOfTimeout: intIn(10, 100).default(80),
  /** Period of every metric alarm (s): CloudWatch takes 10, 20, 30 or a multiple of 60. */
  periodSeconds: intIn(60, 86_400).refine((n) => n % 60 === 0, "must be a multiple of 60"),
  /** Consecutive breaching periods before an alarm fires. */
  evaluationPeriods: intIn(1, 100),
});

/** Pre-signed upload forms (POST /uploads). */
const uploadsSchema = z.strictObject({
  /** The largest extract one form admits; S3 takes at most 5 GiB in one POST. */
  maxBytes: intIn(1, 5 * 1024 ** 3),
  /** How long a form is valid (s): at most 15 minutes. */
  expiresSeconds: intIn(60, 900),
});

/** https, or http on the loopback address (the local stack's Bulk Data source). */
const sourceUrl = z
  .url({ protocol: /^https?$/, error: "must be an https:// URL" })
  .refine(
    (u) => u.startsWith("https://") || /^http:\/\/(127\.0\.0\.1|localhost)(:\d+)?\//.test(`${u}/`),
    "must be an https:// URL (http only on 127.0.0.1, for the local stack)",
  );

/** A Bulk Data source server (https://hl7.org/fhir/uv/bulkdata/export.html). */
const bulkSourceSchema = z.strictObject({
  name: z.string().regex(/^[a-z][a-z0-9-]{1,30}$/, "must be 2-31 characters of a-z, 0-9 and '-'"),
  fhirBaseUrl: sourceUrl,
  tokenUrl: sourceUrl,
  clientId: z.string().regex(/^[\x21-\x7e]{1,255}$/, "must be the client id the source registered"),
  scopes: z
    .array(
      z
        .string()
        .regex(
          /^system\/(\*|[A-Z][A-Za-z]{1,63})\.(read|rs|r)$/,
          "must be a SMART system read scope like system/Patient.rs",
        ),
    )
    .min(1, "must list at least one scope"),
  /** Group-level export when set, system-level otherwise. */
  groupId: z
    .string()
    .regex(/^[A-Za-z0-9\-.]{1,64}$/, "must be a FHIR id")
    .optional(),
  /** `_type`; every type the source has when absent. */
  types: z
    .array(z.string().regex(/^[A-Z][A-Za-z]{1,63}$/, "must be a FHIR resource type"))
    .optional(),
});

/** Room for BULK_SOURCES in the bulk functions' 4 KB environment, beside the key and settings. */
export const BULK_SOURCES_MAX_CHARS = 2800;

/** Bulk Data sources pulled with SMART Backend Services (a KMS key signs the client assertions). */
const bulkSchema = z
  .strictObject({
    /** The asymmetric KMS key HOTH signs with: ES384 or RS384. @default ECC_NIST_P384 */
    signingKeySpec: z
      .enum(["ECC_NIST_P384", "RSA_3072"], { error: "must be ECC_NIST_P384 or RSA_3072" })
      .default("ECC_NIST_P384"),
    /**
     * From kick-off to a complete manifest (s). The polls of a run are at
     * least deadlineSeconds / (MAX_POLLS - 1) apart (contracts/budgets.ts):
     * 80 s at the default, 2,232 s at the 7-day most. @default 21600
     */
    deadlineSeconds: intIn(60, 7 * 86400).default(21600),
    /**
     * Files downloaded at once: one download batch (one invocation) takes
     * this many, and a run at most MAX_DOWNLOAD_BATCHES batches
     * (contracts/budgets.ts). @default 4
     */
    downloadConcurrency: intIn(1, 40).default(4),
    sources: z.array(bulkSourceSchema).default([]),
  })
  .superRefine((b, ctx) => {
    // The bulk functions receive the sources as one environment variable;
    // Lambda caps a function's whole environment at 4 KB.
    const size = JSON.stringify(b.sources).length;
    if (size > BULK_SOURCES_MAX_CHARS) {
      ctx.addIssue({
        code: "custom",
        path: ["sources"],
        message: `take ${size} characters as JSON, more than the ${BULK_SOURCES_MAX_CHARS} that fit a Lambda environment (4 KB in all); split the sources across stacks`,
      });
    }
    const seen = new Set<string>();
    b.sources.forEach((src, i) => {
      if (seen.has(src.name)) {
        ctx.addIssue({
          code: "custom",
          path: ["sources", i, "name"],
          message: "must be unique among the sources",
        });
      }
      seen.add(src.name);
    });
  });

const pipelineSchema = z.strictObject({
  /** `owner/name` of the repository the CodeStar connection reads. */
  repository: z.string().regex(/^[\w.-]+\/[\w.-]+$/, "must be owner/name"),
  branch: z.string().min(1, "must name a branch"),
  /** The CodeStar (CodeConnections) connection created by bootstrap/. */
  connectionArn: z
    .string()
    .regex(
      /^arn:aws:(codestar-connections|codeconnections):[a-z0-9-]+:\d{12}:connection\/[\w-]+$/,
      "must be a CodeStar connection ARN (bootstrap output connectionArn)",
    ),
  /** Bucket holding Pulumi state (bootstrap output stateBucket). */
  stateBucket: z.string().regex(/^[a-z0-9][a-z0-9.-]{2,62}$/, "must be an S3 bucket name"),
  /** ARN of the KMS key of the Pulumi secrets provider (bootstrap output secretsKeyArn). */
  secretsKeyArn: z
    .string()
    .regex(/^arn:aws:kms:[a-z0-9-]+:\d{12}:key\/[\w-]+$/, "must be a KMS key ARN"),
  /** A manual approval stage between Build and Deploy. */
  approval: bool,
  buildImage: z.string().min(1),
  computeType: z.enum(["BUILD_GENERAL1_SMALL", "BUILD_GENERAL1_MEDIUM", "BUILD_GENERAL1_LARGE"], {
    error: "must be BUILD_GENERAL1_SMALL, _MEDIUM or _LARGE",
  }),
  buildTimeoutMinutes: intIn(5, 480),
  deployTimeoutMinutes: intIn(5, 480),
  /** Pulumi CLI the deploy stage installs, and the SHA-256 of its linux-x64 tarball. */
  pulumiVersion: z.string().regex(/^\d+\.\d+\.\d+$/, "must be a version like 3.132.0"),
  pulumiSha256: z.string().regex(/^[0-9a-f]{64}$/, "must be a hex SHA-256"),
});

const schema = z
  .object({
    region: z.string().regex(/^[a-z]{2}(-gov)?-[a-z]+-\d$/, "must be an AWS region like us-east-1"),
    prefix: z
      .string()
      .regex(
        /^[a-z][a-z0-9-]{2,19}$/,
        "must be 3-20 characters of a-z, 0-9 and '-', starting with a letter",
      ),
    owner: z.string().min(1, "must name the owning team"),
    dataClassification: z.enum(["phi", "pii", "confidential", "internal"], {
      error: "must be one of phi, pii, confidential, internal",
    }),
    protect: bool,
    logRetentionDays: z.coerce
      .number({ error: "must be a number" })
      .refine(
        (n) => (LOG_RETENTION_DAYS as readonly number[]).includes(n),
        `must be one of ${LOG_RETENTION_DAYS.join(", ")}`,
      ),
    logLevel: z.enum(["DEBUG", "INFO", "WARN", "ERROR"], {
      error: "must be one of DEBUG, INFO, WARN, ERROR",
    }),
    /** KMS accepts a pending-deletion window of 7..30 days. */
    kmsDeletionWindowDays: intIn(7, 30),
    /** How long handlers cache a secret value. @default 300 */
    secretCacheTtlSeconds: intIn(0, 3600).default(300),
    okta: oktaSchema,
    api: apiSchema,
    lambda: lambdaSchema,
    registry: registrySchema,
    glue: glueSchema,
    migration: migrationSchema,
    audit: auditSchema,
    alarms: alarmsSchema,
    /** @default { maxBytes: 1 GiB, expiresSeconds: 900 } */
    uploads: uploadsSchema.default({ maxBytes: 1024 ** 3, expiresSeconds: 900 }),
    /** @default no sources, ECC_NIST_P384, 6 h deadline, 4 downloads at once */
    bulk: bulkSchema.default({
      signingKeySpec: "ECC_NIST_P384",
      deadlineSeconds: 21600,
      downloadConcurrency: 4,
      sources: [],
    }),
    /** The delivery pipeline; a stack without it is deployed by hand. */
    pipeline: pipelineSchema.optional(),
  })
  .superRefine((c, ctx) => {
    if (c.migration.scheduleEnabled && !c.migration.scheduleExpression) {
      ctx.addIssue({
        code: "custom",
        path: ["migration", "scheduleExpression"],
        message:
          "must be set when migration.scheduleEnabled is true (or set scheduleEnabled: false)",
      });
    }
    if (c.api.throttlingBurstLimit < c.api.throttlingRateLimit) {
      ctx.addIssue({
        code: "custom",
        path: ["api", "throttlingBurstLimit"],
        message: `must be at least api.throttlingRateLimit (${c.api.throttlingRateLimit})`,
      });
    }
  });

export type StackConfig = z.infer<typeof schema> & {
  stack: string;
  okta: z.infer<typeof oktaSchema> & { jwksUri: string };
  tags: Record<string, string>;
};

/** Example values shown in error messages, by top-level key. */
const EXAMPLES: Record<string, string> = {
  region: "us-east-1",
  prefix: "hoth-dev",
  owner: "data-platform-team",
  dataClassification: "phi",
  protect: "true",
  logRetentionDays: "30",
  logLevel: "INFO",
  kmsDeletionWindowDays: "30",
  secretCacheTtlSeconds: "300",
  "okta.issuer": "https://example.okta.com/oauth2/default",
  "okta.audience": "api://hoth",
  "okta.allowedClientIds[0]": "0oa1b2c3d4",
  "audit.retentionDays": "2192",
  "alarms.api5xxRatePercent": "1",
  "alarms.apiLatencyP99Ms": "2000",
  "alarms.periodSeconds": "60",
};

export class ConfigError extends Error {
  constructor(
    message: string,
    readonly problems: string[],
  ) {
    super(message);
    this.name = "ConfigError";
  }
}

/** Where each setting lives: `aws:region` belongs to the AWS provider. */
function configKey(path: PropertyKey[]): { key: string; dotted: string; setPath: string } {
  const [head, ...rest] = path.map(String);
  const ns = head === "region" ? "aws" : "hoth";
  const dotted = [head, ...rest].reduce((acc, p) =>
    /^\d+$/.test(p) ? `${acc}[${p}]` : `${acc}.${p}`,
  );
  const key = `${ns}:${dotted}`;
  return { key, dotted, setPath: rest.length ? `--path '${key}'` : key };
}

function valueAt(input: unknown, path: PropertyKey[]): unknown {
  return path.reduce<unknown>(
    (node, p) =>
      node && typeof node === "object" ? (node as Record<PropertyKey, unknown>)[p] : undefined,
    input,
  );
}

function decode(value: string | undefined): unknown {
  if (value === undefined) return undefined;
  const t = value.trim();
  if (t.startsWith("{") || t.startsWith("[")) {
    try {
      return JSON.parse(t);
    } catch {
      return value;
    }
  }
  return value;
}

/**
 * Parses a stack's configuration as Pulumi hands it over (`namespace:key` ->
 * string, structured values as JSON) and throws a ConfigError whose message
 * names every offending key and the command that fixes it.
 */
export function parseStackConfig(stack: string, raw: Record<string, string>): StackConfig {
  const input: Record<string, unknown> = { region: decode(raw["aws:region"]) };
  for (const [k, v] of Object.entries(raw)) {
    if (k.startsWith("hoth:")) input[k.slice(5)] = decode(v);
  }
  const known = new Set(Object.keys(schema.shape));
  const problems: string[] = [];
  for (const k of Object.keys(input)) {
    if (!known.has(k)) {
      problems.push(
        `hoth:${k}: is not a setting of this project; remove it (pulumi config rm hoth:${k} --stack ${stack})`,
      );
    }
  }
  const result = schema.safeParse(input);
  if (!result.success) {
    for (const issue of result.error.issues) {
      if (issue.code === "unrecognized_keys") {
        // A key inside a structured setting that the project does not know: remove it.
        for (const extra of issue.keys) {
          const { key } = configKey([...issue.path, extra]);
          problems.push(
            `${key}: is not a setting of this project; remove it (pulumi config rm --path '${key}' --stack ${stack})`,
          );
        }
        continue;
      }
      const { key, dotted, setPath } = configKey(issue.path);
      // Absent (a typo of its name included) is "required", whatever the type check said.
      const missing = valueAt(input, issue.path) === undefined;
      const what = missing ? "is required" : issue.message;
      const example = EXAMPLES[dotted] ?? "<value>";
      problems.push(
        `${key}: ${what}; set it with: pulumi config set ${setPath} ${example} --stack ${stack}`,
      );
    }
  }
  if (problems.length || !result.success) {
    throw new ConfigError(
      `Invalid configuration for stack '${stack}':\n  - ${problems.join("\n  - ")}`,
      problems,
    );
  }
  const c = result.data;
  return {
    ...c,
    stack,
    okta: { ...c.okta, jwksUri: c.okta.jwksUri ?? `${c.okta.issuer}/v1/keys` },
    tags: {
      project: "hoth",
      stack,
      owner: c.owner,
      "data-classification": c.dataClassification,
    },
  };
}

/** The tag keys every taggable resource must carry (enforced by the policy pack). */
export const REQUIRED_TAGS = ["project", "stack", "owner", "data-classification"] as const;
