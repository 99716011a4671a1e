import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { S3Client } from "@aws-sdk/client-s3";
import { SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { SFNClient } from "@aws-sdk/client-sfn";
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from "aws-lambda";
import { resolveRoute } from "../contracts/routes";
import { clientOptions } from "./lib/aws";
import { envSeconds, requireEnv, requirePositiveInt } from "./lib/env";
import { HttpError } from "./lib/errors";
import type { RouteImpl } from "./lib/http";
import { correlationId, createLogger } from "./lib/logger";
import { outcomeResponse } from "./lib/outcome";
import { MemberRegistry } from "./lib/registry";
import { SecretCache, SecretUnavailableError } from "./lib/secrets";
import { health } from "./routes/health";
import { publicJwks, publicKeySet } from "./routes/jwks";
import { getMember, memberHistory, readMemberVersion, searchMembers } from "./routes/memberReads";
import { registerMembers } from "./routes/members";
import { getMigration, startMigration } from "./routes/migrations";
import { createUpload } from "./routes/uploads";

// Clients, settings and caches live at module scope: one per container.
const logger = createLogger("hoth-app");
const settings = {
  stack: process.env.STACK ?? "local",
  version: process.env.HOTH_VERSION ?? "dev",
  appSecretId: requireEnv("APP_SECRET_ID"),
  stateMachineArn: requireEnv("STATE_MACHINE_ARN"),
  lakeBucket: requireEnv("LAKE_BUCKET"),
  registryTable: requireEnv("REGISTRY_TABLE"),
  uploadKeyArn: requireEnv("UPLOAD_KEY_ARN"),
  uploadMaxBytes: requirePositiveInt("UPLOAD_MAX_BYTES"),
  uploadExpiresSeconds: envSeconds("UPLOAD_EXPIRES_SECONDS", 900),
  /** The names of the stack's Bulk Data sources (POST /migrations checks `server` against them). */
  bulkSources: (process.env.BULK_SOURCE_NAMES ?? "").split(",").filter(Boolean),
  /** HOTH's public JWKS (the bulk signing key), served at /.well-known/jwks.json. */
  jwks: publicKeySet(process.env.BULK_JWKS),
};
const secrets = new SecretCache(
  new SecretsManagerClient(clientOptions()),
  envSeconds("SECRET_CACHE_TTL_SECONDS", 300),
);

const sfn = new SFNClient(clientOptions());
// An emulator on a loopback address (AWS_ENDPOINT_URL, never set in Lambda)
// cannot serve virtual-hosted bucket names.
const s3 = new S3Client({
  ...clientOptions(),
  forcePathStyle: process.env.AWS_ENDPOINT_URL !== undefined,
});

const members = {
  registry: new MemberRegistry(new DynamoDBClient(clientOptions()), settings.registryTable),
};

/** Route implementations by "METHOD path", matching contracts/routes.ts. */
const implementations: Record<string, RouteImpl> = {
  "POST /health": health(settings, secrets),
  "GET /.well-known/jwks.json": publicJwks(settings.jwks),
  "POST /members": registerMembers(members),
  "GET /members": searchMembers(members),
  "GET /members/{id}": getMember(members),
  "GET /members/{id}/_history": memberHistory(members),
  "GET /members/{id}/_history/{vid}": readMemberVersion(members),
  "POST /uploads": createUpload(settings, s3),
  "POST /migrations": startMigration(settings, sfn, s3),
  "GET /migrations/{id}": getMigration(settings, sfn, s3),
};

export const handler = async (
  event: APIGatewayProxyEvent,
  context: Context,
): Promise<APIGatewayProxyResult> => {
  const cid = correlationId(event.headers, event.requestContext?.requestId ?? context.awsRequestId);
  logger.addContext(context);
  logger.appendKeys({ correlationId: cid });
  const echo = { "X-Correlation-Id": cid };
  try {
    const resolved = resolveRoute(event.httpMethod, event.path);
    if (resolved.kind === "not-found") {
      // Diagnostics never repeat the request's method or path (nor any value from it).
      return outcomeResponse(404, "not-found", "No route matches this method and path", echo);
    }
    if (resolved.kind === "method-not-allowed") {
      return outcomeResponse(
        405,
        "not-supported",
        "This method is not allowed on this path; the Allow header lists those that are",
        {
          ...echo,
          Allow: resolved.allow.join(", "),
        },
      );
    }
    const { route, params } = resolved;
    const impl = implementations[`${route.method} ${route.path}`];
    const response = await impl({ event, params, correlationId: cid, logger, context });
    return { ...response, headers: { ...response.headers, ...echo } };
  } catch (error) {
    return errorResponse(error, echo);
  } finally {
    logger.removeKeys(["correlationId"]);
  }
};

/** The one place where errors become responses. Logs the class, never a value. */
function errorResponse(error: unknown, headers: Record<string, string>): APIGatewayProxyResult {
  const errorClass = error instanceof Error ? error.name : typeof error;
  if (error instanceof HttpError) {
    const cause = error.cause instanceof Error ? error.cause.name : undefined;
    if (error.statusCode >= 500) logger.error("dependency failed", { errorClass, cause });
    else logger.info("request refused", { errorClass, status: error.statusCode });
    const issues = error.issues;
    return outcomeResponse(
      error.statusCode,
      error.code,
      error.message,
      { ...headers, ...error.headers },
      issues,
    );
  }
  if (error instanceof SecretUnavailableError) {
    const cause = error.cause instanceof Error ? error.cause.name : undefined;
    logger.error("secret unavailable", { errorClass, cause });
    return outcomeResponse(
      503,
      "transient",
      "A required secret is unavailable; retry later",
      headers,
    );
  }
  logger.error("unhandled error", { errorClass });
  return outcomeResponse(500, "exception", "Internal error", headers);
}
