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
import { GATEWAY_RESPONSES } from "../components/gatewayResponses";
import { IDENTITY_SOURCES, type Route, resolveRoute } from "../components/routes";

/**
 * An API Gateway (REST) emulator on loopback with the semantics HOTH relies
 * on: the REQUEST authorizer invoked with API Gateway's event shape after the
 * identity-source check, its result cached per identity sources for the TTL,
 * the returned policy evaluated against the method ARN (Allow -> integration,
 * explicit or implicit deny -> 403, `Unauthorized` -> 401, other errors ->
 * 500), Lambda proxy events with `requestContext.authorizer`, the gateway
 * responses of components/gatewayResponses.ts, the 10 MB payload limit and the
 * integration timeout.
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
  INTEGRATION_TIMEOUT: "Endpoint request timed out",
  DEFAULT_5XX: "Internal server error",
};

function gatewayResponse(type: string): APIGatewayProxyResult {
  const spec =
    GATEWAY_RESPONSES.find((r) => r.type === type) ??
    GATEWAY_RESPONSES.find((r) => r.type === "DEFAULT_5XX");
  const headers: Record<string, string> = { "Content-Type": "application/fhir+json" };
  for (const [k, v] of Object.entries(spec?.headers ?? {})) headers[k] = v.replace(/^'|'$/g, "");
  return {
    statusCode: spec?.statusCode ?? 500,
    headers,
    body: JSON.stringify({
      resourceType: "OperationOutcome",
      issue: [
        {
          severity: "error",
          code: spec?.code ?? "exception",
          diagnostics: MESSAGES[type] ?? MESSAGES.DEFAULT_5XX,
        },
      ],
    }),
  };
}

/** IAM-style match of an execute-api resource pattern (`*` spans any characters). */
function matches(pattern: string, arn: string): boolean {
  const re = new RegExp(
    `^${pattern
      .split("*")
      .map((p) => p.replace(/[.+?^${}()|[\]\\]/g, "\\$&"))
      .join(".*")}$`,
  );
  return re.test(arn);
}

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

export async function startApiGateway(o: EmulatorOptions) {
  const cache = new Map<string, { result: APIGatewayAuthorizerResult; until: number }>();

  async function handle(req: http.IncomingMessage, body: Buffer): Promise<APIGatewayProxyResult> {
    const url = new URL(req.url ?? "/", "http://localhost");
    const prefix = `/${o.stage}`;
    if (!url.pathname.startsWith(`${prefix}/`))
      return gatewayResponse("MISSING_AUTHENTICATION_TOKEN");
    const path = url.pathname.slice(prefix.length);
    const method = req.method ?? "GET";
    const resolved = resolveRoute(method, path, o.routes);
    if (resolved.kind !== "route") return gatewayResponse("MISSING_AUTHENTICATION_TOKEN");
    if (body.length > MAX_PAYLOAD) return gatewayResponse("REQUEST_TOO_LARGE");
    const headers = Object.fromEntries(
      Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(",") : (v ?? "")]),
    );
    const identity = IDENTITY_SOURCES.map((h) => headers[h.toLowerCase()]);
    // A missing identity source is refused before the authorizer runs.
    if (identity.some((v) => !v)) return gatewayResponse("UNAUTHORIZED");
    const requestId = randomUUID();
    const methodArn = `arn:aws:execute-api:${REGION}:${ACCOUNT}:${API_ID}/${o.stage}/${method}${path}`;
    const key = identity.join("\n");
    let decision = cache.get(key);
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
        decision = { result, until: Date.now() + o.cacheTtlSeconds * 1000 };
        if (o.cacheTtlSeconds > 0) cache.set(key, decision);
      } catch (error) {
        return gatewayResponse(
          (error as Error).message === "Unauthorized" ? "UNAUTHORIZED" : "AUTHORIZER_FAILURE",
        );
      }
    }
    if (evaluate(decision.result.policyDocument, methodArn) !== "allow")
      return gatewayResponse("ACCESS_DENIED");
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
        authorizer: { ...decision.result.context, principalId: decision.result.principalId },
      },
    } as unknown as APIGatewayProxyEvent;
    const context = {
      awsRequestId: requestId,
      getRemainingTimeInMillis: () => o.timeoutMs ?? 29_000,
    } as Context;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<APIGatewayProxyResult>((resolve) => {
      timer = setTimeout(
        () => resolve(gatewayResponse("INTEGRATION_TIMEOUT")),
        o.timeoutMs ?? 29_000,
      );
    });
    try {
      return await Promise.race([o.app(event, context), timeout]);
    } catch {
      return gatewayResponse("DEFAULT_5XX");
    } finally {
      clearTimeout(timer);
    }
  }

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size <= MAX_PAYLOAD + 1) chunks.push(c);
    });
    req.on("end", async () => {
      const result = await handle(req, Buffer.concat(chunks));
      res.writeHead(result.statusCode, result.headers as http.OutgoingHttpHeaders);
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
    stop: () => new Promise<void>((r) => server.close(() => r())),
  };
}
