import type { Logger } from "@aws-lambda-powertools/logger";
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from "aws-lambda";

/** What a route implementation receives from the router. */
export interface RouteRequest {
  event: APIGatewayProxyEvent;
  params: Record<string, string>;
  correlationId: string;
  logger: Logger;
  /** The invocation's context (its remaining time bounds the request's budget). */
  context?: Context;
}

export type RouteImpl = (req: RouteRequest) => Promise<APIGatewayProxyResult>;

export function jsonResponse(
  statusCode: number,
  body: unknown,
  headers: Record<string, string> = {},
): APIGatewayProxyResult {
  return {
    statusCode,
    headers: { "Content-Type": "application/json", ...headers },
    body: JSON.stringify(body),
  };
}
