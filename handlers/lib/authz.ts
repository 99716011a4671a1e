import type { APIGatewayAuthorizerResult } from "aws-lambda";
import { arnPath, type Route } from "../../contracts/routes";
import { grants, type Permission } from "./scopes";

/**
 * The routes a caller with these permissions may use (routes with no
 * requirement: any valid token). Public routes never reach the authorizer.
 */
export function allowedRoutes(permissions: Permission[], routes: readonly Route[]): Route[] {
  return routes.filter(
    (r) =>
      !r.public &&
      (r.anyOf.length === 0 || r.anyOf.some((req) => permissions.some((p) => grants(p, req)))),
  );
}

/** `arn:aws:execute-api:<region>:<account>:<api>/<stage>/<METHOD>/<path>` -> its API prefix. */
export function apiPrefix(methodArn: string): string {
  const m = /^(arn:aws[a-z-]*:execute-api:[a-z0-9-]+:\d{12}:[a-z0-9]+\/[^/]+)\//.exec(methodArn);
  if (!m) throw new Error("methodArn is not an execute-api method ARN");
  return m[1];
}

/**
 * The IAM policy for a caller. It lists every route the caller's scopes
 * grant, not only the one called, because API Gateway caches it per identity
 * source (token + client id) and reuses it for the caller's other routes.
 * No route at all: an explicit Deny on the whole API.
 */
export function policyFor(
  principalId: string,
  methodArn: string,
  routes: Route[],
  context: Record<string, string>,
): APIGatewayAuthorizerResult {
  const prefix = apiPrefix(methodArn);
  const statement = routes.length
    ? {
        Action: "execute-api:Invoke",
        Effect: "Allow" as const,
        Resource: routes.map((r) => `${prefix}/${r.method}${arnPath(r.path)}`),
      }
    : { Action: "execute-api:Invoke", Effect: "Deny" as const, Resource: [`${prefix}/*/*`] };
  return {
    principalId,
    policyDocument: { Version: "2012-10-17", Statement: [statement] },
    context,
  };
}
