import type { APIGatewayProxyEvent } from "aws-lambda";
import { BadRequestError, ForbiddenError } from "./errors";
import {
  type ApiResourceType,
  type Interaction,
  isApiResourceType,
  type Permission,
  parseScopes,
  permits,
  requiredScope,
} from "./scopes";

/** A header value, case-insensitively (API Gateway keeps the client's case). */
export function header(event: APIGatewayProxyEvent, name: string): string | undefined {
  const wanted = name.toLowerCase();
  return (
    Object.entries(event.headers ?? {}).find(([k]) => k.toLowerCase() === wanted)?.[1] ?? undefined
  );
}

/**
 * The media type of the request body (`Content-Type` without parameters,
 * lower-cased), or undefined when none was sent.
 */
export function mediaType(event: APIGatewayProxyEvent): string | undefined {
  const value = header(event, "Content-Type");
  return value?.split(";")[0].trim().toLowerCase() || undefined;
}

/** The request body as JSON; 400 when it is absent or not JSON. */
export function jsonBody(event: APIGatewayProxyEvent): unknown {
  if (!event.body) throw new BadRequestError("The request has no body", "required");
  const text = event.isBase64Encoded
    ? Buffer.from(event.body, "base64").toString("utf8")
    : event.body;
  try {
    return JSON.parse(text);
  } catch {
    throw new BadRequestError("The body is not valid JSON", "structure");
  }
}

/**
 * The caller's organisation, from the authorizer context (never from the
 * request): 403 when the token named none.
 */
export function tenant(event: APIGatewayProxyEvent): string {
  const org = event.requestContext.authorizer?.org;
  if (typeof org !== "string" || org === "") {
    throw new ForbiddenError("The access token names no organisation");
  }
  return org;
}

/**
 * The caller's SMART permissions: the scopes the authorizer verified in the
 * token, from its context (`scopes`, space-separated), never from the request.
 */
export function callerPermissions(event: APIGatewayProxyEvent): Permission[] {
  const scopes = event.requestContext.authorizer?.scopes;
  return typeof scopes === "string" ? parseScopes(scopes.split(" ").filter(Boolean)) : [];
}

/**
 * The 403 for an interaction the caller's scopes do not grant. It names the
 * narrowest scope that would (e.g. `system/Coverage.c`), built only from the
 * API's own resource types and interactions, never from request data.
 */
export function accessDenied(
  resourceType: ApiResourceType,
  interaction: Interaction,
): ForbiddenError {
  if (!isApiResourceType(resourceType)) throw new TypeError("not a resource type the API serves");
  return new ForbiddenError(
    `The access token's scopes do not grant ${interaction} on ${resourceType}; it needs ${requiredScope(resourceType, interaction)} (or a SMART v1 or wildcard scope that includes it)`,
  );
}

/**
 * Throws `accessDenied(...)` (403 OperationOutcome, `forbidden`) unless the
 * caller's scopes grant `interaction` on `resourceType`. Routes call it for
 * each resource they touch: the gateway checks only the route.
 *
 *   requireAccess(event, "Coverage", "create");
 */
export function requireAccess(
  event: APIGatewayProxyEvent,
  resourceType: ApiResourceType,
  interaction: Interaction,
): void {
  if (!permits(callerPermissions(event), resourceType, interaction)) {
    throw accessDenied(resourceType, interaction);
  }
}
