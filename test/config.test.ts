import * as assert from "node:assert/strict";
import { ConfigError, parseStackConfig } from "../contracts/config";
import { stackConfig } from "./harness";

function problemsOf(stack: string, overrides: Record<string, string | undefined>): string[] {
  const raw = { ...stackConfig(stack), ...overrides };
  for (const [k, v] of Object.entries(overrides)) if (v === undefined) delete raw[k];
  try {
    parseStackConfig(stack, raw as Record<string, string>);
  } catch (e) {
    assert.ok(e instanceof ConfigError);
    assert.ok(e.message.startsWith(`Invalid configuration for stack '${stack}':`));
    return e.problems;
  }
  assert.fail("expected a ConfigError");
}

const okta = (o: Record<string, unknown>) =>
  JSON.stringify({
    issuer: "https://x.okta.com/oauth2/default",
    audience: "api://hoth",
    allowedClientIds: ["0oa1"],
    ...o,
  });

describe("stack configuration", () => {
  it("parses the three stack files into typed settings that differ only in data", () => {
    const [dev, test, prod] = ["dev", "test", "prod"].map((s) =>
      parseStackConfig(s, stackConfig(s)),
    );
    assert.deepEqual(
      [dev, test, prod].map((c) => [
        c.prefix,
        c.protect,
        c.logRetentionDays,
        c.api.wafEnabled,
        c.kmsDeletionWindowDays,
      ]),
      [
        ["hoth-dev", false, 14, false, 7],
        ["hoth-test", false, 30, true, 14],
        ["hoth-prod", true, 365, true, 30],
      ],
    );
    assert.deepEqual(
      [dev, test, prod].map((c) => [c.audit.retentionDays, c.alarms]),
      [
        [
          90,
          {
            api5xxRatePercent: 5,
            apiLatencyP99Ms: 5000,
            lambdaErrors: 5,
            lambdaThrottles: 5,
            lambdaDurationPercentOfTimeout: 80,
            periodSeconds: 300,
            evaluationPeriods: 1,
          },
        ],
        [
          365,
          {
            api5xxRatePercent: 2,
            apiLatencyP99Ms: 3000,
            lambdaErrors: 2,
            lambdaThrottles: 2,
            lambdaDurationPercentOfTimeout: 80,
            periodSeconds: 300,
            evaluationPeriods: 1,
          },
        ],
        [
          2192,
          {
            api5xxRatePercent: 1,
            apiLatencyP99Ms: 2000,
            lambdaErrors: 1,
            lambdaThrottles: 1,
            lambdaDurationPercentOfTimeout: 80,
            periodSeconds: 60,
            evaluationPeriods: 3,
          },
        ],
      ],
    );
    assert.equal(prod.okta.jwksUri, "https://hoth.okta.com/oauth2/default/v1/keys");
    assert.equal(prod.okta.orgClaim, "org");
    assert.deepEqual(prod.tags, {
      project: "hoth",
      stack: "prod",
      owner: "data-platform-team",
      "data-classification": "phi",
    });
  });

  it("keeps an explicit jwksUri", () => {
    const c = parseStackConfig("dev", {
      ...stackConfig("dev"),
      "hoth:okta": okta({ jwksUri: "https://keys.example.com/jwks" }),
    });
    assert.equal(c.okta.jwksUri, "https://keys.example.com/jwks");
  });

  it("keeps prod's alarm thresholds at least as tight as test's, and test's as dev's", () => {
    const [dev, test, prod] = ["dev", "test", "prod"].map(
      (s) => parseStackConfig(s, stackConfig(s)).alarms,
    );
    const tighterKeys = [
      "api5xxRatePercent",
      "apiLatencyP99Ms",
      "lambdaErrors",
      "lambdaThrottles",
      "lambdaDurationPercentOfTimeout",
    ] as const;
    for (const k of tighterKeys) {
      assert.ok(prod[k] <= test[k] && test[k] <= dev[k], `alarms.${k}`);
    }
    // Time to page: periods x period
    const delay = (a: typeof dev) => a.evaluationPeriods * a.periodSeconds;
    assert.ok(delay(prod) <= delay(test) && delay(test) <= delay(dev));
  });

  it("alarms on a function's duration at 80 % of its timeout unless told otherwise", () => {
    const c = parseStackConfig("dev", {
      ...stackConfig("dev"),
      "hoth:alarms": JSON.stringify({
        api5xxRatePercent: 5,
        apiLatencyP99Ms: 5000,
        lambdaErrors: 5,
        lambdaThrottles: 5,
        periodSeconds: 300,
        evaluationPeriods: 1,
      }),
    });
    assert.equal(c.alarms.lambdaDurationPercentOfTimeout, 80);
  });

  const alarms = (o: Record<string, unknown>) =>
    JSON.stringify({
      api5xxRatePercent: 5,
      apiLatencyP99Ms: 5000,
      lambdaErrors: 5,
      lambdaThrottles: 5,
      periodSeconds: 300,
      evaluationPeriods: 1,
      ...o,
    });

  const cases: [string, Record<string, string | undefined>, string][] = [
    [
      "a missing prefix",
      { "hoth:prefix": undefined },
      "hoth:prefix: is required; set it with: pulumi config set hoth:prefix hoth-dev --stack dev",
    ],
    [
      "a prefix with capitals",
      { "hoth:prefix": "Hoth" },
      "hoth:prefix: must be 3-20 characters of a-z, 0-9 and '-', starting with a letter; set it with: pulumi config set hoth:prefix hoth-dev --stack dev",
    ],
    [
      "a missing region",
      { "aws:region": undefined },
      "aws:region: is required; set it with: pulumi config set aws:region us-east-1 --stack dev",
    ],
    [
      "a retention CloudWatch does not offer",
      { "hoth:logRetentionDays": "10" },
      "hoth:logRetentionDays: must be one of 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653; set it with: pulumi config set hoth:logRetentionDays 30 --stack dev",
    ],
    [
      "a KMS deletion window over 30 days",
      { "hoth:kmsDeletionWindowDays": "45" },
      "hoth:kmsDeletionWindowDays: must be at most 30; set it with: pulumi config set hoth:kmsDeletionWindowDays 30 --stack dev",
    ],
    [
      "protect that is not a boolean",
      { "hoth:protect": "yes" },
      "hoth:protect: must be true or false; set it with: pulumi config set hoth:protect true --stack dev",
    ],
    [
      "an http issuer",
      { "hoth:okta": okta({ issuer: "http://x.okta.com/oauth2/default" }) },
      "hoth:okta.issuer: must be an https:// URL; set it with: pulumi config set --path 'hoth:okta.issuer' https://example.okta.com/oauth2/default --stack dev",
    ],
    [
      "an issuer with a trailing slash",
      { "hoth:okta": okta({ issuer: "https://x.okta.com/oauth2/default/" }) },
      "hoth:okta.issuer: must not end with '/'; set it with: pulumi config set --path 'hoth:okta.issuer' https://example.okta.com/oauth2/default --stack dev",
    ],
    [
      "no allowed client ids",
      { "hoth:okta": okta({ allowedClientIds: [] }) },
      "hoth:okta.allowedClientIds: must list at least one client id; set it with: pulumi config set --path 'hoth:okta.allowedClientIds' <value> --stack dev",
    ],
    [
      "a malformed client id",
      { "hoth:okta": okta({ allowedClientIds: ["bad id!"] }) },
      "hoth:okta.allowedClientIds[0]: must be an Okta client id; set it with: pulumi config set --path 'hoth:okta.allowedClientIds[0]' 0oa1b2c3d4 --stack dev",
    ],
    [
      "a burst limit below the rate limit",
      {
        "hoth:api": JSON.stringify({
          throttlingRateLimit: 100,
          throttlingBurstLimit: 10,
          wafEnabled: false,
          wafRateLimitPer5Min: 100,
        }),
      },
      "hoth:api.throttlingBurstLimit: must be at least api.throttlingRateLimit (100); set it with: pulumi config set --path 'hoth:api.throttlingBurstLimit' <value> --stack dev",
    ],
    [
      "a Lambda timeout over API Gateway's 29 s",
      {
        "hoth:lambda": JSON.stringify({
          memorySizeMb: 512,
          timeoutSeconds: 60,
          reservedConcurrency: 5,
        }),
      },
      "hoth:lambda.timeoutSeconds: must be at most 29; set it with: pulumi config set --path 'hoth:lambda.timeoutSeconds' <value> --stack dev",
    ],
    [
      "missing audit settings",
      { "hoth:audit": undefined },
      "hoth:audit: is required; set it with: pulumi config set hoth:audit <value> --stack dev",
    ],
    [
      "an audit retention shorter than CloudTrail's 90-day event history",
      { "hoth:audit": JSON.stringify({ retentionDays: 30 }) },
      "hoth:audit.retentionDays: must be at least 90; set it with: pulumi config set --path 'hoth:audit.retentionDays' 2192 --stack dev",
    ],
    [
      "a 5XX rate of 0 %",
      { "hoth:alarms": alarms({ api5xxRatePercent: 0 }) },
      "hoth:alarms.api5xxRatePercent: must be more than 0; set it with: pulumi config set --path 'hoth:alarms.api5xxRatePercent' 1 --stack dev",
    ],
    [
      "a 5XX rate over 100 %",
      { "hoth:alarms": alarms({ api5xxRatePercent: 150 }) },
      "hoth:alarms.api5xxRatePercent: must be at most 100; set it with: pulumi config set --path 'hoth:alarms.api5xxRatePercent' 1 --stack dev",
    ],
    [
      "an alarm period that is not a whole number of minutes",
      { "hoth:alarms": alarms({ periodSeconds: 90 }) },
      "hoth:alarms.periodSeconds: must be a multiple of 60; set it with: pulumi config set --path 'hoth:alarms.periodSeconds' 60 --stack dev",
    ],
    [
      "a p99 latency threshold past API Gateway's 29 s",
      { "hoth:alarms": alarms({ apiLatencyP99Ms: 30_000 }) },
      "hoth:alarms.apiLatencyP99Ms: must be at most 29000; set it with: pulumi config set --path 'hoth:alarms.apiLatencyP99Ms' 2000 --stack dev",
    ],
    [
      "an unknown alarm setting",
      { "hoth:alarms": alarms({ cpu: 90 }) },
      "hoth:alarms.cpu: is not a setting of this project; remove it (pulumi config rm --path 'hoth:alarms.cpu' --stack dev)",
    ],
    [
      "a Lambda timeout shorter than one AWS call with its retries",
      {
        "hoth:lambda": JSON.stringify({
          memorySizeMb: 512,
          timeoutSeconds: 5,
          reservedConcurrency: 5,
        }),
      },
      "hoth:lambda.timeoutSeconds: must be at least 10; set it with: pulumi config set --path 'hoth:lambda.timeoutSeconds' <value> --stack dev",
    ],
    [
      "a key inside okta the project does not know",
      { "hoth:okta": okta({ audiences: ["api://hoth"] }) },
      "hoth:okta.audiences: is not a setting of this project; remove it (pulumi config rm --path 'hoth:okta.audiences' --stack dev)",
    ],
    [
      "a number that is not one",
      { "hoth:kmsDeletionWindowDays": "ten" },
      "hoth:kmsDeletionWindowDays: must be a number; set it with: pulumi config set hoth:kmsDeletionWindowDays 30 --stack dev",
    ],
    [
      "a retention that is not a number",
      { "hoth:logRetentionDays": "a week" },
      "hoth:logRetentionDays: must be a number; set it with: pulumi config set hoth:logRetentionDays 30 --stack dev",
    ],
    [
      "an upload size above S3's 5 GiB for one POST",
      { "hoth:uploads": JSON.stringify({ maxBytes: 6 * 1024 ** 3, expiresSeconds: 900 }) },
      "hoth:uploads.maxBytes: must be at most 5368709120; set it with: pulumi config set --path 'hoth:uploads.maxBytes' <value> --stack dev",
    ],
    [
      "an upload form valid longer than 15 minutes",
      { "hoth:uploads": JSON.stringify({ maxBytes: 1024, expiresSeconds: 3600 }) },
      "hoth:uploads.expiresSeconds: must be at most 900; set it with: pulumi config set --path 'hoth:uploads.expiresSeconds' <value> --stack dev",
    ],
    [
      "a bulk source over plain http on another host",
      {
        "hoth:bulk": JSON.stringify({
          sources: [
            {
              name: "ehr",
              fhirBaseUrl: "http://ehr.example.org/fhir",
              tokenUrl: "https://ehr.example.org/token",
              clientId: "hoth",
              scopes: ["system/Patient.rs"],
            },
          ],
        }),
      },
      "hoth:bulk.sources[0].fhirBaseUrl: must be an https:// URL (http only on 127.0.0.1, for the local stack); set it with: pulumi config set --path 'hoth:bulk.sources[0].fhirBaseUrl' <value> --stack dev",
    ],
    [
      "a bulk source scope that writes",
      {
        "hoth:bulk": JSON.stringify({
          sources: [
            {
              name: "ehr",
              fhirBaseUrl: "https://ehr.example.org/fhir",
              tokenUrl: "https://ehr.example.org/token",
              clientId: "hoth",
              scopes: ["system/Patient.cruds"],
            },
          ],
        }),
      },
      "hoth:bulk.sources[0].scopes[0]: must be a SMART system read scope like system/Patient.rs; set it with: pulumi config set --path 'hoth:bulk.sources[0].scopes[0]' <value> --stack dev",
    ],
    [
      "a signing key KMS cannot sign ES384 or RS384 with",
      { "hoth:bulk": JSON.stringify({ signingKeySpec: "RSA_2048" }) },
      "hoth:bulk.signingKeySpec: must be ECC_NIST_P384 or RSA_3072; set it with: pulumi config set --path 'hoth:bulk.signingKeySpec' <value> --stack dev",
    ],
    [
      "an unknown setting",
      { "hoth:retention": "30" },
      "hoth:retention: is not a setting of this project; remove it (pulumi config rm hoth:retention --stack dev)",
    ],
  ];
  for (const [what, overrides, message] of cases) {
    it(`rejects ${what}, naming the key and the fix`, () => {
      assert.deepEqual(problemsOf("dev", overrides), [message]);
    });
  }

  it("rejects two bulk sources with one name", () => {
    const source = {
      name: "ehr",
      fhirBaseUrl: "https://ehr.example.org/fhir",
      tokenUrl: "https://ehr.example.org/token",
      clientId: "hoth",
      scopes: ["system/Patient.rs"],
    };
    assert.deepEqual(
      problemsOf("dev", { "hoth:bulk": JSON.stringify({ sources: [source, source] }) }),
      [
        "hoth:bulk.sources[1].name: must be unique among the sources; set it with: pulumi config set --path 'hoth:bulk.sources[1].name' <value> --stack dev",
      ],
    );
  });

  it("rejects bulk sources too large for a Lambda environment, saying why", () => {
    const source = (i: number) => ({
      name: `ehr-${i}`,
      fhirBaseUrl: `https://ehr-${i}.example.org/fhir/r4/with/a/long/path`,
      tokenUrl: `https://ehr-${i}.example.org/oauth2/v1/token/with/a/long/path`,
      clientId: `hoth-production-client-${i}`,
      scopes: ["system/Patient.read", "system/Coverage.read", "system/Condition.read"],
    });
    const sources = Array.from({ length: 12 }, (_, i) => source(i));
    const [problem] = problemsOf("dev", { "hoth:bulk": JSON.stringify({ sources }) });
    assert.match(
      problem,
      /^hoth:bulk\.sources: take \d+ characters as JSON, more than the 2800 that fit a Lambda environment \(4 KB in all\); split the sources across stacks; set it with/,
    );
  });

  it("defaults uploads and bulk when a stack leaves them out", () => {
    const raw = { ...stackConfig("dev") };
    delete raw["hoth:uploads"];
    delete raw["hoth:bulk"];
    const c = parseStackConfig("dev", raw);
    assert.deepEqual(c.uploads, { maxBytes: 1024 ** 3, expiresSeconds: 900 });
    assert.deepEqual(c.bulk, {
      signingKeySpec: "ECC_NIST_P384",
      deadlineSeconds: 21600,
      downloadConcurrency: 4,
      sources: [],
    });
  });

  it("reports a one-letter typo of a key as the unknown key plus the required one", () => {
    assert.deepEqual(problemsOf("dev", { "hoth:logLevel": undefined, "hoth:logLevl": "INFO" }), [
      "hoth:logLevl: is not a setting of this project; remove it (pulumi config rm hoth:logLevl --stack dev)",
      "hoth:logLevel: is required; set it with: pulumi config set hoth:logLevel INFO --stack dev",
    ]);
  });

  it("reports every problem at once", () => {
    const problems = problemsOf("prod", { "hoth:prefix": "X", "hoth:logLevel": "LOUD" });
    assert.deepEqual(
      problems.map((p) => p.split(":").slice(0, 2).join(":")),
      ["hoth:prefix", "hoth:logLevel"],
    );
  });
});
