import type { Logger } from "@aws-lambda-powertools/logger";
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from "aws-lambda";

/** What a route implementation receives from the router. */
export interface RouteRequest {
  event: APIGatewayProxyEvent;
  params: Record<string, string>;
  correlationId: string;
  logger: Logger;
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
