import type { APIGatewayProxyEvent } from "aws-lambda";
import { BadRequestError, ForbiddenError } from "./errors";

/** A header value, case-insensitively (API Gateway keeps the client's case). */
export function header(event: APIGatewayProxyEvent, name: string): string | undefined {
  const wanted = name.toLowerCase();
  return (
    Object.entries(event.headers ?? {}).find(([k]) => k.toLowerCase() === wanted)?.[1] ?? undefined
  );
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
