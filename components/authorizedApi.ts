import { createHash } from "node:crypto";
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { GATEWAY_RESPONSES, outcomeTemplate } from "../contracts/gatewayResponses";
import { policy, type Statement } from "../contracts/iam";
import { arnPath, identitySource, ROUTES, type Route } from "../contracts/routes";
import { handlerFunction } from "./handlerFunction";
import type { SecretStore } from "./secretStore";

export interface AuthorizedApiArgs {
  prefix: string;
  /** Stage name (the stack). */
  stageName: string;
  accountId: pulumi.Input<string>;
  secrets: SecretStore;
  /** @default ROUTES */
  routes?: readonly Route[];
  logRetentionDays: number;
  logLevel: string;
  /** How long handlers cache secrets (s). */
  secretCacheTtlSeconds: number;
  lambda: { memorySizeMb: number; timeoutSeconds: number; reservedConcurrency: number };
  throttling: { rateLimit: number; burstLimit: number };
  /** API Gateway's authorizer result cache TTL (0..3600 s). @default 300 */
  authorizerCacheTtlSeconds?: number;
  /** The access-token claim carrying the caller's organisation. @default "org" */
  orgClaim?: string;
  /** A WAF web ACL in front of the stage. @default { enabled: true, rateLimitPer5Min: 2000 } */
  waf?: { enabled: boolean; rateLimitPer5Min: number };
  /** Extra environment of the app function (what its routes need). @default {} */
  appEnvironment?: Record<string, pulumi.Input<string>>;
  /** Extra IAM statements for the app function's routes, scoped to concrete ARNs. @default [] */
  appStatements?: pulumi.Input<Statement[]>;
}

/** Access log line: ids and status only; never a path with an id, a header or a body. */
export const ACCESS_LOG_FORMAT = JSON.stringify({
  requestId: "$context.requestId",
  extendedRequestId: "$context.extendedRequestId",
  requestTime: "$context.requestTime",
  httpMethod: "$context.httpMethod",
  resourcePath: "$context.resourcePath",
  status: "$context.status",
  responseLength: "$context.responseLength",
  integrationLatency: "$context.integrationLatency",
  responseLatency: "$context.responseLatency",
  sourceIp: "$context.identity.sourceIp",
  clientId: "$context.authorizer.clientId",
  authorizerError: "$context.authorizer.error",
  wafStatus: "$context.waf.status",
  errorType: "$context.error.responseType",
});

/**
 * The REST API: routes from the route table with Lambda proxy integrations
 * to the app function, a REQUEST authorizer (Okta + SMART scopes) in front of
 * every route, OperationOutcome gateway responses, a stage with JSON access
 * logs, X-Ray and throttling, and optionally a WAF web ACL.
 */
export class AuthorizedApi extends pulumi.ComponentResource {
  readonly url: pulumi.Output<string>;
  readonly restApiId: pulumi.Output<string>;
  /** The REST API's name (the ApiName dimension of its metrics). */
  readonly apiName: pulumi.Output<string>;
  readonly stageName: pulumi.Output<string>;
  readonly executionArn: pulumi.Output<string>;
  readonly appRole: aws.iam.Role;
  readonly appFunctionName: pulumi.Output<string>;
  readonly authorizerFunctionName: pulumi.Output<string>;

  constructor(name: string, args: AuthorizedApiArgs, opts?: pulumi.ComponentResourceOptions) {
    super("hoth:api:AuthorizedApi", name, {}, opts);
    const routes = args.routes ?? ROUTES;
    const ttl = args.authorizerCacheTtlSeconds ?? 300;
    const orgClaim = args.orgClaim ?? "org";
    const waf = args.waf ?? { enabled: true, rateLimitPer5Min: 2000 };
    const child = { parent: this };
    const common = {
      accountId: args.accountId,
      keyArn: args.secrets.keyArn,
      logRetentionDays: args.logRetentionDays,
      ...args.lambda,
    };

    const app = handlerFunction(
      `${name}-app`,
      {
        ...common,
        handler: "app",
        functionName: `${args.prefix}-app`,
        environment: {
          APP_SECRET_ID: args.secrets.secretArns.app,
          STACK: args.stageName,
          SECRET_CACHE_TTL_SECONDS: String(args.secretCacheTtlSeconds),
          LOG_LEVEL: args.logLevel,
          ...args.appEnvironment,
        },
      },
      child,
    );
    if (args.appStatements) {
      new aws.iam.RolePolicy(
        `${name}-app-routes`,
        {
          role: app.role.name,
          policy: pulumi
            .output(args.appStatements)
            .apply((s) => JSON.stringify(policy(...(s as Statement[])))),
        },
        child,
      );
    }
    const authorizer = handlerFunction(
      `${name}-authorizer`,
      {
        ...common,
        handler: "authorizer",
        functionName: `${args.prefix}-authorizer`,
        environment: {
          OKTA_SECRET_ID: args.secrets.secretArns.okta,
          OKTA_SETTINGS_TTL_SECONDS: String(args.secretCacheTtlSeconds),
          ORG_CLAIM: orgClaim,
          LOG_LEVEL: args.logLevel,
        },
      },
      child,
    );
    args.secrets.grantRead("app", app.role, `${name}-app-reads-app-secret`, child);
    args.secrets.grantRead(
      "okta",
      authorizer.role,
      `${name}-authorizer-reads-okta-settings`,
      child,
    );

    const api = new aws.apigateway.RestApi(
      `${name}-api`,
      {
        name: `${args.prefix}-api`,
        description: "HOTH FHIR member-migration API",
        endpointConfiguration: { types: "REGIONAL" },
        disableExecuteApiEndpoint: false,
      },
      child,
    );

    const requestAuthorizer = new aws.apigateway.Authorizer(
      `${name}-authorizer`,
      {
        restApi: api.id,
        name: `${args.prefix}-okta-smart`,
        type: "REQUEST",
        authorizerUri: authorizer.fn.invokeArn,
        identitySource: identitySource(),
        authorizerResultTtlInSeconds: ttl,
      },
      child,
    );
    new aws.lambda.Permission(
      `${name}-authorizer-invoke`,
      {
        function: authorizer.fn.name,
        action: "lambda:InvokeFunction",
        principal: "apigateway.amazonaws.com",
        sourceArn: pulumi.interpolate`${api.executionArn}/authorizers/${requestAuthorizer.id}`,
      },
      child,
    );

    // One API Gateway resource per path segment, shared by the routes under it.
    const resources = new Map<string, aws.apigateway.Resource>();
    const resourceFor = (path: string): pulumi.Input<string> => {
      if (path === "/") return api.rootResourceId;
      const existing = resources.get(path);
      if (existing) return existing.id;
      const parentPath = path.slice(0, path.lastIndexOf("/")) || "/";
      const resource = new aws.apigateway.Resource(
        `${name}-res${path.replace(/[{}]/g, "").replace(/\//g, "-")}`,
        {
          restApi: api.id,
          parentId: resourceFor(parentPath),
          pathPart: path.slice(path.lastIndexOf("/") + 1),
        },
        child,
      );
      resources.set(path, resource);
      return resource.id;
    };

    const integrations: aws.apigateway.Integration[] = [];
    const methods: aws.apigateway.Method[] = [];
    for (const route of routes) {
      const id = `${route.method.toLowerCase()}${route.path.replace(/[{}]/g, "").replace(/\//g, "-")}`;
      const resourceId = resourceFor(route.path);
      const params = [...route.path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]);
      const method = new aws.apigateway.Method(
        `${name}-${id}`,
        {
          restApi: api.id,
          resourceId,
          httpMethod: route.method,
          // A public route (HOTH's JWKS) is for anyone: no authorizer.
          authorization: route.public ? "NONE" : "CUSTOM",
          authorizerId: route.public ? undefined : requestAuthorizer.id,
          requestParameters: Object.fromEntries(
            params.map((p) => [`method.request.path.${p}`, true]),
          ),
        },
        child,
      );
      methods.push(method);
      integrations.push(
        new aws.apigateway.Integration(
          `${name}-${id}-integration`,
          {
            restApi: api.id,
            resourceId,
            httpMethod: method.httpMethod,
            type: "AWS_PROXY",
            integrationHttpMethod: "POST",
            uri: app.fn.invokeArn,
            timeoutMilliseconds: Math.min(29_000, args.lambda.timeoutSeconds * 1000),
          },
          child,
        ),
      );
      new aws.lambda.Permission(
        `${name}-${id}-invoke`,
        {
          function: app.fn.name,
          action: "lambda:InvokeFunction",
          principal: "apigateway.amazonaws.com",
          sourceArn: pulumi.interpolate`${api.executionArn}/*/${route.method}${arnPath(route.path)}`,
        },
        child,
      );
    }

    const responses = GATEWAY_RESPONSES.map(
      (r) =>
        new aws.apigateway.Response(
          `${name}-response-${r.type.toLowerCase().replace(/_/g, "-")}`,
          {
            restApiId: api.id,
            responseType: r.type,
            statusCode: r.statusCode === undefined ? undefined : String(r.statusCode),
            responseTemplates: { "application/json": outcomeTemplate(r) },
            responseParameters: {
              "gatewayresponse.header.Content-Type": "'application/fhir+json'",
              ...Object.fromEntries(
                Object.entries(r.headers ?? {}).map(([k, v]) => [`gatewayresponse.header.${k}`, v]),
              ),
            },
          },
          child,
        ),
    );

    // Redeploy whenever the API definition changes.
    const definition = JSON.stringify({
      routes,
      GATEWAY_RESPONSES,
      ttl,
      identity: identitySource(),
    });
    const deployment = new aws.apigateway.Deployment(
      `${name}-deployment`,
      {
        restApi: api.id,
        description: `routes ${routes.map((r) => `${r.method} ${r.path}`).join(", ")}`,
        triggers: pulumi.all([app.fn.invokeArn, authorizer.fn.invokeArn]).apply((arns) => ({
          redeployment: createHash("sha256")
            .update(definition + arns.join())
            .digest("hex"),
        })),
      },
      { ...child, dependsOn: [...methods, ...integrations, ...responses] },
    );

    const accessLogs = new aws.cloudwatch.LogGroup(
      `${name}-access-logs`,
      {
        name: `/aws/apigateway/${args.prefix}-api-access`,
        retentionInDays: args.logRetentionDays,
        kmsKeyId: args.secrets.keyArn,
      },
      child,
    );
    const stage = new aws.apigateway.Stage(
      `${name}-stage`,
      {
        restApi: api.id,
        deployment: deployment.id,
        stageName: args.stageName,
        xrayTracingEnabled: true,
        accessLogSettings: { destinationArn: accessLogs.arn, format: ACCESS_LOG_FORMAT },
      },
      child,
    );
    new aws.apigateway.MethodSettings(
      `${name}-method-settings`,
      {
        restApi: api.id,
        stageName: stage.stageName,
        methodPath: "*/*",
        settings: {
          throttlingRateLimit: args.throttling.rateLimit,
          throttlingBurstLimit: args.throttling.burstLimit,
          metricsEnabled: true,
          // Execution logs and data traces could carry PHI; access logs suffice.
          loggingLevel: "OFF",
          dataTraceEnabled: false,
        },
      },
      child,
    );

    if (waf.enabled) {
      const visibility = (metric: string) => ({
        cloudwatchMetricsEnabled: true,
        sampledRequestsEnabled: false,
        metricName: `${args.prefix}-${metric}`,
      });
      const acl = new aws.wafv2.WebAcl(
        `${name}-waf`,
        {
          name: `${args.prefix}-api`,
          scope: "REGIONAL",
          defaultAction: { allow: {} },
          visibilityConfig: visibility("api"),
          rules: [
            {
              name: "aws-common-rule-set",
              priority: 1,
              overrideAction: { none: {} },
              statement: {
                managedRuleGroupStatement: {
                  vendorName: "AWS",
                  name: "AWSManagedRulesCommonRuleSet",
                },
              },
              visibilityConfig: visibility("common"),
            },
            {
              name: "rate-limit-per-ip",
              priority: 2,
              action: { block: {} },
              statement: {
                rateBasedStatement: { limit: waf.rateLimitPer5Min, aggregateKeyType: "IP" },
              },
              visibilityConfig: visibility("rate"),
            },
          ],
        },
        child,
      );
      new aws.wafv2.WebAclAssociation(
        `${name}-waf-association`,
        { resourceArn: stage.arn, webAclArn: acl.arn },
        child,
      );
    }

    this.url = stage.invokeUrl;
    this.restApiId = api.id;
    this.apiName = api.name;
    this.stageName = stage.stageName;
    this.executionArn = api.executionArn;
    this.appRole = app.role;
    this.appFunctionName = app.fn.name;
    this.authorizerFunctionName = authorizer.fn.name;
    this.registerOutputs({
      url: this.url,
      restApiId: this.restApiId,
      stageName: this.stageName,
      executionArn: this.executionArn,
    });
  }
}
