import { randomUUID } from "node:crypto";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import type {
  APIGatewayAuthorizerResult,
  APIGatewayProxyEvent,
  APIGatewayProxyResult,
  APIGatewayRequestAuthorizerEvent,
  Context,
} from "aws-lambda";
import {
  GATEWAY_RESPONSES,
  type GatewayResponseSpec,
  outcomeTemplate,
  renderTemplate,
} from "../contracts/gatewayResponses";
import { IDENTITY_SOURCES, type Route, resolveRoute } from "../contracts/routes";

/**
 * An API Gateway (REST) emulator on loopback with the semantics HOTH relies
 * on: the REQUEST authorizer invoked with API Gateway's event shape after the
 * identity-source check, its result cached per identity sources and route
 * (contracts/routes.ts IDENTITY_CONTEXT) for the TTL,
 * the returned policy evaluated against the method ARN (Allow -> integration,
 * explicit or implicit deny -> 403, `Unauthorized` -> 401, other errors ->
 * 500), Lambda proxy events with `requestContext.authorizer`, the gateway
 * responses of contracts/gatewayResponses.ts, the 10 MB payload limit, the
 * integration timeout, and 502 for a function error or a malformed proxy
 * result (https://docs.aws.amazon.com/lambda/latest/dg/services-apigateway-errors.html).
 */

type Authorizer = (e: APIGatewayRequestAuthorizerEvent) => Promise<APIGatewayAuthorizerResult>;
type App = (e: APIGatewayProxyEvent, c: Context) => Promise<APIGatewayProxyResult>;

export interface EmulatorOptions {
  routes: readonly Route[];
  stage: string;
  authorizer: Authorizer;
  app: App;
  /** Authorizer result cache TTL (s). */
  cacheTtlSeconds: number;
  /** @default 29000 */
  timeoutMs?: number;
  port: number;
}

const MAX_PAYLOAD = 10 * 1024 * 1024;
const API_ID = "local";
const ACCOUNT = "000000000000";
const REGION = "us-east-1";

/** API Gateway's own messages for its responses. */
const MESSAGES: Record<string, string> = {
  UNAUTHORIZED: "Unauthorized",
  ACCESS_DENIED: "User is not authorized to access this resource",
  MISSING_AUTHENTICATION_TOKEN: "Missing Authentication Token",
  REQUEST_TOO_LARGE: "Request Too Long",
  AUTHORIZER_FAILURE: "Internal server error",
  AUTHORIZER_CONFIGURATION_ERROR: "Internal server error",
  INTEGRATION_TIMEOUT: "Endpoint request timed out",
  DEFAULT_4XX: "Bad Request",
  DEFAULT_5XX: "Internal server error",
};

/**
 * The gateway response of a type. `status` is the status API Gateway itself
 * would send; it applies where the spec sets none (the DEFAULT_* families keep
 * API Gateway's own status, e.g. 502 for a Lambda function error). The body
 * is the template AuthorizedApi deploys, rendered as API Gateway renders it
 * (`$context` substitution only); `authorizer` is the authorizer's context,
 * if it returned one.
 */
function gatewayResponse(
  type: string,
  status = 500,
  authorizer: Record<string, unknown> = {},
): APIGatewayProxyResult {
  const spec =
    GATEWAY_RESPONSES.find((r) => r.type === type) ??
    (GATEWAY_RESPONSES.find(
      (r) => r.type === (status < 500 ? "DEFAULT_4XX" : "DEFAULT_5XX"),
    ) as GatewayResponseSpec);
  const headers: Record<string, string> = { "Content-Type": "application/fhir+json" };
  for (const [k, v] of Object.entries(spec.headers ?? {})) headers[k] = v.replace(/^'|'$/g, "");
  const vars: Record<string, string> = {
    "error.messageString": JSON.stringify(MESSAGES[type] ?? MESSAGES.DEFAULT_5XX),
  };
  for (const [k, v] of Object.entries(authorizer)) vars[`authorizer.${k}`] = String(v);
  return {
    statusCode: spec.statusCode ?? status,
    headers,
    body: renderTemplate(outcomeTemplate(spec), vars),
  };
}

/** Compiled resource patterns: a policy's few patterns recur on every request. */
const compiled = new Map<string, RegExp>();

/** IAM-style match of an execute-api resource pattern (`*` spans any characters). */
function matches(pattern: string, arn: string): boolean {
  let re = compiled.get(pattern);
  if (!re) {
    re = new RegExp(
      `^${pattern
        .split("*")
        .map((p) => p.replace(/[.+?^${}()|[\]\\]/g, "\\$&"))
        .join(".*")}$`,
    );
    // Bounded: an authorizer minting per-caller patterns must not grow it forever.
    if (compiled.size >= 1024) compiled.clear();
    compiled.set(pattern, re);
  }
  return re.test(arn);
}

/** A policy's answer for one method ARN: a matching Deny wins, then a matching Allow; else deny. */
export function evaluate(
  policy: APIGatewayAuthorizerResult["policyDocument"],
  methodArn: string,
): "allow" | "deny" {
  let allowed = false;
  for (const s of policy.Statement as { Effect: string; Resource?: string | string[] }[]) {
    const resources = [s.Resource ?? []].flat();
    if (!resources.some((r) => matches(r, methodArn))) continue;
    if (s.Effect === "Deny") return "deny";
    if (s.Effect === "Allow") allowed = true;
  }
  return allowed ? "allow" : "deny";
}

/**
 * Whether an authorizer result is one API Gateway accepts: a policy with
 * statements, and a context of primitive values only
 * (https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-lambda-authorizer-output.html).
 */
function isValidAuthorizerResult(result: APIGatewayAuthorizerResult | undefined): boolean {
  if (!Array.isArray(result?.policyDocument?.Statement)) return false;
  return Object.values(result.context ?? {}).every((v) =>
    ["string", "number", "boolean"].includes(typeof v),
  );
}

/** Whether a Lambda proxy result is well-formed; API Gateway answers 502 otherwise. */
function isValidProxyResult(result: APIGatewayProxyResult | undefined): boolean {
  return (
    typeof result === "object" &&
    result !== null &&
    Number.isInteger(result.statusCode) &&
    result.statusCode >= 100 &&
    result.statusCode <= 599 &&
    (result.body === undefined || result.body === null || typeof result.body === "string")
  );
}

/** A method with authorization NONE: no authorizer runs, its context is empty. */
const PUBLIC_DECISION = {
  result: { principalId: "", policyDocument: { Version: "2012-10-17", Statement: [] } },
  until: Number.POSITIVE_INFINITY,
} as { result: APIGatewayAuthorizerResult; until: number };

export async function startApiGateway(o: EmulatorOptions) {
  const cache = new Map<string, { result: APIGatewayAuthorizerResult; until: number }>();
  const timeoutMs = o.timeoutMs ?? 29_000;

  async function handle(
    req: http.IncomingMessage,
    body: Buffer,
    received: number,
  ): Promise<APIGatewayProxyResult> {
    const url = new URL(req.url ?? "/", "http://localhost");
    const prefix = `/${o.stage}`;
    if (!url.pathname.startsWith(`${prefix}/`))
      return gatewayResponse("MISSING_AUTHENTICATION_TOKEN");
    const path = url.pathname.slice(prefix.length);
    const method = req.method ?? "GET";
    let resolved: ReturnType<typeof resolveRoute>;
    try {
      resolved = resolveRoute(method, path, o.routes);
    } catch (error) {
      // A path parameter that is not valid percent-encoding.
      if (error instanceof URIError) return gatewayResponse("DEFAULT_4XX", 400);
      throw error;
    }
    if (resolved.kind !== "route") return gatewayResponse("MISSING_AUTHENTICATION_TOKEN");
    // Counted on the bytes received: the buffered body stops growing at the limit.
    if (received > MAX_PAYLOAD) return gatewayResponse("REQUEST_TOO_LARGE");
    const headers = Object.fromEntries(
      Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(",") : (v ?? "")]),
    );
    const identity = IDENTITY_SOURCES.map((h) => headers[h.toLowerCase()]);
    const open = resolved.route.public === true;
    // A missing identity source is refused before the authorizer runs (a public route has none).
    if (!open && identity.some((v) => !v)) return gatewayResponse("UNAUTHORIZED");
    const requestId = randomUUID();
    const methodArn = `arn:aws:execute-api:${REGION}:${ACCOUNT}:${API_ID}/${o.stage}/${method}${path}`;
    // The cache key: the identity sources, headers and route (IDENTITY_CONTEXT).
    const key = [...identity, method, resolved.route.path].join("\n");
    let decision = open ? PUBLIC_DECISION : cache.get(key);
    if (!decision || decision.until < Date.now()) {
      try {
        const result = await o.authorizer({
          type: "REQUEST",
          methodArn,
          resource: resolved.route.path,
          path,
          httpMethod: method,
          headers,
          multiValueHeaders: {},
          pathParameters: resolved.params,
          queryStringParameters: Object.fromEntries(url.searchParams),
          multiValueQueryStringParameters: null,
          stageVariables: null,
          requestContext: { requestId, stage: o.stage, apiId: API_ID, accountId: ACCOUNT } as never,
        } as APIGatewayRequestAuthorizerEvent);
        if (!isValidAuthorizerResult(result))
          return gatewayResponse("AUTHORIZER_CONFIGURATION_ERROR");
        decision = { result, until: Date.now() + o.cacheTtlSeconds * 1000 };
        if (o.cacheTtlSeconds > 0) cache.set(key, decision);
      } catch (error) {
        return gatewayResponse(
          (error as Error).message === "Unauthorized" ? "UNAUTHORIZED" : "AUTHORIZER_FAILURE",
        );
      }
    }
    if (!open && evaluate(decision.result.policyDocument, methodArn) !== "allow")
      return gatewayResponse("ACCESS_DENIED", 403, decision.result.context ?? {});
    const event = {
      resource: resolved.route.path,
      path,
      httpMethod: method,
      headers,
      multiValueHeaders: {},
      queryStringParameters: url.searchParams.size ? Object.fromEntries(url.searchParams) : null,
      multiValueQueryStringParameters: null,
      pathParameters: Object.keys(resolved.params).length ? resolved.params : null,
      stageVariables: null,
      body: body.length ? body.toString("utf8") : null,
      isBase64Encoded: false,
      requestContext: {
        requestId,
        stage: o.stage,
        apiId: API_ID,
        accountId: ACCOUNT,
        httpMethod: method,
        resourcePath: resolved.route.path,
        path: `${prefix}${path}`,
        identity: { sourceIp: req.socket.remoteAddress ?? "127.0.0.1" },
        authorizer: open
          ? null
          : { ...decision.result.context, principalId: decision.result.principalId },
      },
    } as unknown as APIGatewayProxyEvent;
    const deadline = Date.now() + timeoutMs;
    const context = {
      awsRequestId: requestId,
      getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    } as Context;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), timeoutMs);
    });
    try {
      const result = await Promise.race([o.app(event, context), timeout]);
      if (result === "timeout") return gatewayResponse("INTEGRATION_TIMEOUT");
      // A malformed proxy result is a 502, as is a function error below.
      return isValidProxyResult(result) ? result : gatewayResponse("DEFAULT_5XX", 502);
    } catch {
      return gatewayResponse("DEFAULT_5XX", 502);
    } finally {
      clearTimeout(timer);
    }
  }

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    let received = 0;
    req.on("data", (c: Buffer) => {
      received += c.length;
      // Keep at most the limit; past it the request is refused whatever it holds.
      if (received <= MAX_PAYLOAD) chunks.push(c);
    });
    req.on("end", async () => {
      let result: APIGatewayProxyResult;
      try {
        result = await handle(req, Buffer.concat(chunks), received);
      } catch {
        // An emulator fault answers 500 rather than leaving the request hanging.
        result = gatewayResponse("DEFAULT_5XX");
      }
      try {
        res.writeHead(result.statusCode, result.headers as http.OutgoingHttpHeaders);
      } catch {
        // Headers Node cannot send (e.g. a control character): a malformed proxy result.
        result = gatewayResponse("DEFAULT_5XX", 502);
        res.writeHead(result.statusCode, result.headers as http.OutgoingHttpHeaders);
      }
      res.end(result.body);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(o.port, "127.0.0.1", resolve);
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/${o.stage}`,
    stop: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        // Keep-alive and in-flight connections would otherwise hold close() open.
        server.closeAllConnections();
      }),
  };
}
