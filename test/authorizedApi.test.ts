import * as assert from "node:assert/strict";

import program = require("../index");

import { ACCESS_LOG_FORMAT, AuthorizedApi } from "../components/authorizedApi";
import { SecretStore } from "../components/secretStore";
import { parseStackConfig } from "../contracts/config";
import { ROUTES } from "../contracts/routes";
import { jwks, publicJwk } from "../handlers/lib/smartBackend";
import {
  ACCOUNT_ID,
  DEPLOYER_ROLE_ARN,
  doc,
  find,
  ofType,
  recorded,
  SIGNING_PUBLIC_KEY,
  settle,
  stackConfig,
  useStack,
} from "./harness";

const EXEC = `arn:aws:execute-api:us-east-1:${ACCOUNT_ID}:hoth-api-id`;
const KEY_ARN = `arn:aws:kms:us-east-1:${ACCOUNT_ID}:key/hoth-key-key-id`;
const secretArn = (n: string, stack = "dev") =>
  `arn:aws:secretsmanager:us-east-1:${ACCOUNT_ID}:secret:hoth-${stack}/${n}-AbCdEf`;

async function deploy(stack: string) {
  useStack(stack);
  const platform = program.compose(parseStackConfig(stack, stackConfig(stack)));
  await settle();
  return platform;
}

describe("AuthorizedApi", () => {
  describe("in the dev stack", () => {
    before(() => deploy("dev"));

    it("puts a REQUEST authorizer keyed on Authorization, X-Client-Id and the route in front of every route but the public JWKS", () => {
      const authorizer = find("aws:apigateway/authorizer:Authorizer", "hoth-authorizer");
      assert.equal(authorizer.inputs.type, "REQUEST");
      assert.equal(
        authorizer.inputs.identitySource,
        "method.request.header.Authorization,method.request.header.X-Client-Id,context.httpMethod,context.resourcePath",
      );
      assert.equal(authorizer.inputs.authorizerResultTtlInSeconds, 300);
      assert.equal(
        authorizer.inputs.authorizerUri,
        `arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:${ACCOUNT_ID}:function:hoth-dev-authorizer/invocations`,
      );
      const methods = ofType("aws:apigateway/method:Method");
      assert.equal(methods.length, ROUTES.length);
      const open = methods.filter((m) => m.inputs.authorization === "NONE");
      assert.deepEqual(
        open.map((m) => [m.name, m.inputs.httpMethod, m.inputs.authorizerId]),
        [["hoth-get-.well-known-jwks.json", "GET", undefined]],
      );
      for (const m of methods.filter((m) => !open.includes(m))) {
        assert.equal(m.inputs.authorization, "CUSTOM");
        assert.equal(m.inputs.authorizerId, "hoth-dev-okta-smart");
      }
    });

    it("wires each route of the table to the app function with a Lambda proxy integration", () => {
      const health = find("aws:apigateway/method:Method", "hoth-post-health");
      assert.equal(health.inputs.httpMethod, "POST");
      assert.equal(
        find("aws:apigateway/resource:Resource", "hoth-res-health").inputs.pathPart,
        "health",
      );
      const integration = find(
        "aws:apigateway/integration:Integration",
        "hoth-post-health-integration",
      );
      assert.deepEqual(
        [
          integration.inputs.type,
          integration.inputs.integrationHttpMethod,
          integration.inputs.timeoutMilliseconds,
        ],
        ["AWS_PROXY", "POST", 10_000],
      );
      assert.match(integration.inputs.uri as string, /function:hoth-dev-app\/invocations$/);
    });

    it("lets only this API invoke the functions, each permission scoped to its route or authorizer", () => {
      const permissions = ofType("aws:lambda/permission:Permission")
        .map((p) => [p.name, p.inputs.function, p.inputs.principal, p.inputs.sourceArn])
        .sort();
      assert.deepEqual(permissions, [
        [
          "hoth-authorizer-invoke",
          "hoth-dev-authorizer",
          "apigateway.amazonaws.com",
          `${EXEC}/authorizers/hoth-dev-okta-smart`,
        ],
        [
          "hoth-get-.well-known-jwks.json-invoke",
          "hoth-dev-app",
          "apigateway.amazonaws.com",
          `${EXEC}/*/GET/.well-known/jwks.json`,
        ],
        [
          "hoth-get-members-id-_history-invoke",
          "hoth-dev-app",
          "apigateway.amazonaws.com",
          `${EXEC}/*/GET/members/*/_history`,
        ],
        [
          "hoth-get-members-id-_history-vid-invoke",
          "hoth-dev-app",
          "apigateway.amazonaws.com",
          `${EXEC}/*/GET/members/*/_history/*`,
        ],
        [
          "hoth-get-members-id-invoke",
          "hoth-dev-app",
          "apigateway.amazonaws.com",
          `${EXEC}/*/GET/members/*`,
        ],
        [
          "hoth-get-members-invoke",
          "hoth-dev-app",
          "apigateway.amazonaws.com",
          `${EXEC}/*/GET/members`,
        ],
        [
          "hoth-get-migrations-id-invoke",
          "hoth-dev-app",
          "apigateway.amazonaws.com",
          `${EXEC}/*/GET/migrations/*`,
        ],
        [
          "hoth-post-health-invoke",
          "hoth-dev-app",
          "apigateway.amazonaws.com",
          `${EXEC}/*/POST/health`,
        ],
        [
          "hoth-post-members-invoke",
          "hoth-dev-app",
          "apigateway.amazonaws.com",
          `${EXEC}/*/POST/members`,
        ],
        [
          "hoth-post-migrations-invoke",
          "hoth-dev-app",
          "apigateway.amazonaws.com",
          `${EXEC}/*/POST/migrations`,
        ],
        [
          "hoth-post-uploads-invoke",
          "hoth-dev-app",
          "apigateway.amazonaws.com",
          `${EXEC}/*/POST/uploads`,
        ],
      ]);
    });

    it("answers gateway errors with OperationOutcome bodies", () => {
      const responses = ofType("aws:apigateway/response:Response");
      assert.deepEqual(responses.map((r) => [r.inputs.responseType, r.inputs.statusCode]).sort(), [
        ["ACCESS_DENIED", "403"],
        ["AUTHORIZER_CONFIGURATION_ERROR", "500"],
        ["AUTHORIZER_FAILURE", "500"],
        ["DEFAULT_4XX", undefined],
        ["DEFAULT_5XX", undefined],
        ["INTEGRATION_TIMEOUT", "504"],
        ["MISSING_AUTHENTICATION_TOKEN", "404"],
        ["QUOTA_EXCEEDED", "429"],
        ["REQUEST_TOO_LARGE", "413"],
        ["THROTTLED", "429"],
        ["UNAUTHORIZED", "401"],
        ["WAF_FILTERED", "403"],
      ]);
      const unauthorized = find("aws:apigateway/response:Response", "hoth-response-unauthorized");
      assert.deepEqual(unauthorized.inputs.responseTemplates, {
        "application/json":
          '{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"login","diagnostics":$context.error.messageString}]}',
      });
      assert.deepEqual(unauthorized.inputs.responseParameters, {
        "gatewayresponse.header.Content-Type": "'application/fhir+json'",
        "gatewayresponse.header.WWW-Authenticate": "'Bearer'",
      });
      const denied = find("aws:apigateway/response:Response", "hoth-response-access-denied");
      assert.deepEqual(denied.inputs.responseTemplates, {
        "application/json":
          '{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"forbidden","diagnostics":"The access token\'s scopes do not grant this route; it needs $context.authorizer.requiredScope"}]}',
      });
      assert.deepEqual(denied.inputs.responseParameters, {
        "gatewayresponse.header.Content-Type": "'application/fhir+json'",
        "gatewayresponse.header.WWW-Authenticate": `'Bearer error="insufficient_scope"'`,
      });
    });

    it("runs both functions on nodejs22.x arm64 with tracing, bounded concurrency and their settings", () => {
      const fn = (n: string) => find("aws:lambda/function:Function", `hoth-${n}-fn`).inputs;
      for (const n of ["app", "authorizer"]) {
        const f = fn(n);
        assert.deepEqual(
          [
            f.runtime,
            f.architectures,
            f.handler,
            f.memorySize,
            f.timeout,
            f.reservedConcurrentExecutions,
          ],
          ["nodejs22.x", ["arm64"], "index.handler", 512, 10, 10],
        );
        assert.deepEqual(f.tracingConfig, { mode: "Active" });
        assert.deepEqual(f.loggingConfig, {
          logFormat: "JSON",
          logGroup: `/aws/lambda/hoth-dev-${n}`,
        });
        assert.deepEqual(f.tags, { invocation: "synchronous" });
      }
      assert.deepEqual((fn("app").environment as { variables: object }).variables, {
        NODE_OPTIONS: "--enable-source-maps",
        APP_SECRET_ID: secretArn("app"),
        STACK: "dev",
        SECRET_CACHE_TTL_SECONDS: "300",
        LOG_LEVEL: "DEBUG",
        STATE_MACHINE_ARN: `arn:aws:states:us-east-1:${ACCOUNT_ID}:stateMachine:hoth-dev-migration`,
        LAKE_BUCKET: "hoth-dev-lake",
        REGISTRY_TABLE: "hoth-dev-member-registry",
        UPLOAD_KEY_ARN: KEY_ARN,
        UPLOAD_MAX_BYTES: "104857600",
        UPLOAD_EXPIRES_SECONDS: "900",
        BULK_JWKS: JSON.stringify(
          jwks([publicJwk(new Uint8Array(Buffer.from(SIGNING_PUBLIC_KEY, "base64")), "ES384")]),
        ),
        BULK_SOURCE_NAMES: "local",
      });
      assert.deepEqual((fn("authorizer").environment as { variables: object }).variables, {
        NODE_OPTIONS: "--enable-source-maps",
        OKTA_SECRET_ID: secretArn("okta-settings"),
        OKTA_SETTINGS_TTL_SECONDS: "300",
        ORG_CLAIM: "org",
        LOG_LEVEL: "DEBUG",
      });
    });

    it("gives each function a role that can write its own logs and traces and read exactly its one secret", () => {
      const policiesOf = (role: string) =>
        ofType("aws:iam/rolePolicy:RolePolicy")
          .filter((p) => p.inputs.role === role)
          .map((p) => [p.name, doc(p).Statement])
          .sort();
      const logs = (fn: string) => ({
        Sid: "WriteLogs",
        Effect: "Allow",
        Action: ["logs:CreateLogStream", "logs:PutLogEvents"],
        Resource: `arn:aws:logs:us-east-1:${ACCOUNT_ID}:log-group:/aws/lambda/hoth-dev-${fn}:*`,
      });
      const traces = {
        Sid: "WriteTraces",
        Effect: "Allow",
        Action: ["xray:PutTraceSegments", "xray:PutTelemetryRecords"],
        Resource: "*",
      };
      const read = (secret: string) => [
        {
          Sid: "ReadSecret",
          Effect: "Allow",
          Action: ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
          Resource: secretArn(secret),
        },
        {
          Sid: "DecryptSecret",
          Effect: "Allow",
          Action: "kms:Decrypt",
          Resource: KEY_ARN,
          Condition: {
            StringEquals: {
              "kms:ViaService": "secretsmanager.us-east-1.amazonaws.com",
              "kms:EncryptionContext:SecretARN": secretArn(secret),
            },
          },
        },
      ];
      assert.deepEqual(policiesOf("hoth-dev-app"), [
        ["hoth-app-logs-traces", [logs("app"), traces]],
        ["hoth-app-reads-app-secret", read("app")],
        [
          "hoth-app-routes",
          [
            {
              Sid: "StartMigrations",
              Effect: "Allow",
              Action: "states:StartExecution",
              Resource: `arn:aws:states:us-east-1:${ACCOUNT_ID}:stateMachine:hoth-dev-migration`,
            },
            {
              Sid: "FollowMigrations",
              Effect: "Allow",
              Action: "states:DescribeExecution",
              Resource: `arn:aws:states:us-east-1:${ACCOUNT_ID}:execution:hoth-dev-migration:*`,
            },
            {
              Sid: "ReadReports",
              Effect: "Allow",
              Action: "s3:GetObject",
              Resource: "arn:aws:s3:::hoth-dev-lake/reports/*",
            },
            {
              // Reports are only read: no data key is generated.
              Sid: "LakeKey",
              Effect: "Allow",
              Action: "kms:Decrypt",
              Resource: KEY_ARN,
              Condition: { StringEquals: { "kms:ViaService": "s3.us-east-1.amazonaws.com" } },
            },
            {
              // Upload forms the app signs: only the uploads area of each landing prefix.
              Sid: "SignUploads",
              Effect: "Allow",
              Action: "s3:PutObject",
              Resource: "arn:aws:s3:::hoth-dev-lake/landing/*/uploads/*",
            },
            {
              Sid: "FindUploads",
              Effect: "Allow",
              Action: "s3:ListBucket",
              Resource: "arn:aws:s3:::hoth-dev-lake",
              Condition: { StringLike: { "s3:prefix": "landing/*/uploads/*" } },
            },
            {
              Sid: "UploadKey",
              Effect: "Allow",
              Action: "kms:GenerateDataKey",
              Resource: KEY_ARN,
              Condition: { StringEquals: { "kms:ViaService": "s3.us-east-1.amazonaws.com" } },
            },
            {
              Sid: "MemberRegistry",
              Effect: "Allow",
              Action: [
                "dynamodb:GetItem",
                "dynamodb:BatchGetItem",
                "dynamodb:Query",
                "dynamodb:PutItem",
                "dynamodb:DeleteItem",
                "dynamodb:ConditionCheckItem",
              ],
              Resource: `arn:aws:dynamodb:us-east-1:${ACCOUNT_ID}:table/hoth-dev-member-registry`,
            },
            {
              Sid: "RegistryKey",
              Effect: "Allow",
              Action: ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"],
              Resource: KEY_ARN,
              Condition: { StringEquals: { "kms:ViaService": "dynamodb.us-east-1.amazonaws.com" } },
            },
          ],
        ],
      ]);
      assert.deepEqual(policiesOf("hoth-dev-authorizer"), [
        ["hoth-authorizer-logs-traces", [logs("authorizer"), traces]],
        ["hoth-authorizer-reads-okta-settings", read("okta-settings")],
      ]);
      const trust = doc(find("aws:iam/role:Role", "hoth-app-role"), "assumeRolePolicy");
      assert.deepEqual(trust.Statement, [
        {
          Effect: "Allow",
          Principal: { Service: "lambda.amazonaws.com" },
          Action: "sts:AssumeRole",
          Condition: { StringEquals: { "aws:SourceAccount": ACCOUNT_ID } },
        },
      ]);
    });

    it("names each function's role as the only reader of its secret", () => {
      const readers = (n: string) =>
        doc(find("aws:secretsmanager/secretPolicy:SecretPolicy", `hoth-${n}-policy`)).Statement[1]
          .Condition.ArnNotEquals["aws:PrincipalArn"];
      assert.deepEqual(readers("app"), [
        `arn:aws:iam::${ACCOUNT_ID}:role/hoth-dev-app`,
        DEPLOYER_ROLE_ARN,
      ]);
      assert.deepEqual(readers("okta"), [
        `arn:aws:iam::${ACCOUNT_ID}:role/hoth-dev-authorizer`,
        DEPLOYER_ROLE_ARN,
      ]);
      assert.deepEqual(readers("tokenization"), [
        `arn:aws:iam::${ACCOUNT_ID}:role/hoth-dev-glue-ingest`,
        DEPLOYER_ROLE_ARN,
      ]);
    });

    it("logs access as JSON to a KMS-encrypted group and never logs bodies", () => {
      const stage = find("aws:apigateway/stage:Stage", "hoth-stage");
      assert.equal(stage.inputs.stageName, "dev");
      assert.equal(stage.inputs.xrayTracingEnabled, true);
      assert.deepEqual(stage.inputs.accessLogSettings, {
        destinationArn: `arn:aws:logs:us-east-1:${ACCOUNT_ID}:log-group:/aws/apigateway/hoth-dev-api-access`,
        format: ACCESS_LOG_FORMAT,
      });
      assert.ok(!ACCESS_LOG_FORMAT.includes("$context.path"));
      const group = find("aws:cloudwatch/logGroup:LogGroup", "hoth-access-logs");
      assert.deepEqual([group.inputs.retentionInDays, group.inputs.kmsKeyId], [14, KEY_ARN]);
      const settings = find(
        "aws:apigateway/methodSettings:MethodSettings",
        "hoth-method-settings",
      ).inputs;
      assert.equal(settings.methodPath, "*/*");
      assert.deepEqual(settings.settings, {
        throttlingRateLimit: 50,
        throttlingBurstLimit: 100,
        metricsEnabled: true,
        loggingLevel: "OFF",
        dataTraceEnabled: false,
      });
    });

    it("has no WAF where the stack turns it off", () => {
      assert.deepEqual(ofType("aws:wafv2/webAcl:WebAcl"), []);
      assert.deepEqual(ofType("aws:wafv2/webAclAssociation:WebAclAssociation"), []);
    });
  });

  for (const [stack, rate, burst, wafLimit, retention] of [
    ["test", 100, 200, 2000, 30],
    ["prod", 500, 1000, 5000, 365],
  ] as const) {
    it(`in ${stack}: throttles at ${rate}/${burst}, keeps logs ${retention} days, and puts a WAF in front`, async () => {
      await deploy(stack);
      const settings = find("aws:apigateway/methodSettings:MethodSettings", "hoth-method-settings")
        .inputs.settings as Record<string, unknown>;
      assert.deepEqual(
        [settings.throttlingRateLimit, settings.throttlingBurstLimit],
        [rate, burst],
      );
      assert.equal(
        find("aws:cloudwatch/logGroup:LogGroup", "hoth-app-logs").inputs.retentionInDays,
        retention,
      );
      const acl = find("aws:wafv2/webAcl:WebAcl", "hoth-waf").inputs;
      assert.equal(acl.scope, "REGIONAL");
      const rules = acl.rules as { name: string; statement: Record<string, unknown> }[];
      assert.deepEqual(
        rules.map((r) => r.name),
        ["aws-common-rule-set", "rate-limit-per-ip"],
      );
      assert.deepEqual(rules[1].statement, {
        rateBasedStatement: { limit: wafLimit, aggregateKeyType: "IP" },
      });
      const association = find(
        "aws:wafv2/webAclAssociation:WebAclAssociation",
        "hoth-waf-association",
      ).inputs;
      assert.equal(association.resourceArn, "arn:aws:apigateway:us-east-1:123456789012:hoth-stage");
    });
  }

  it("redeploys when the route table changes, and only then", async () => {
    const build = async (routes = ROUTES) => {
      useStack("dev");
      const secrets = new SecretStore("s", {
        prefix: "hoth-dev",
        region: "us-east-1",
        accountId: ACCOUNT_ID,
        adminArns: [DEPLOYER_ROLE_ARN],
        okta: { issuer: "https://x.okta.com", audience: "a", allowedClientIds: ["c"] },
      });
      new AuthorizedApi("a", {
        prefix: "hoth-dev",
        stageName: "dev",
        accountId: ACCOUNT_ID,
        secrets,
        routes,
        logRetentionDays: 14,
        logLevel: "INFO",
        secretCacheTtlSeconds: 300,
        lambda: { memorySizeMb: 512, timeoutSeconds: 10, reservedConcurrency: 5 },
        throttling: { rateLimit: 10, burstLimit: 20 },
      });
      await settle();
      return (
        find("aws:apigateway/deployment:Deployment", "a-deployment").inputs.triggers as {
          redeployment: string;
        }
      ).redeployment;
    };
    const first = await build();
    const same = await build();
    const more = await build([...ROUTES, { ...ROUTES[0], method: "GET" }]);
    assert.equal(first, same);
    assert.notEqual(first, more);
    assert.match(first, /^[0-9a-f]{64}$/);
    assert.ok(recorded.some((r) => r.name === "a-get-health"));
  });
});
