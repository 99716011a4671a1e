/**
 * The API's route table, defined once as data. It drives the API Gateway
 * resources and methods (AuthorizedApi), the authorizer's decisions, the app
 * handler's router, the OpenAPI description and the local API emulator.
 */

export type HttpMethod = "GET" | "POST" | "PUT" | "DELETE" | "PATCH";

/** SMART on FHIR access a route needs: a resource type and an interaction. */
export interface ScopeRequirement {
  /** FHIR resource type, e.g. "Patient". */
  resource: string;
  /** SMART v2 permission letter: c(reate) r(ead) u(pdate) d(elete) s(earch). */
  access: "c" | "r" | "u" | "d" | "s";
}

export interface Route {
  method: HttpMethod;
  /** API Gateway resource path; `{name}` marks a path parameter. */
  path: string;
  /** The Lambda that serves it. */
  handler: "app";
  /**
   * Scopes that grant access; any one suffices. Empty: any valid token of an
   * allowed client may call it.
   */
  anyOf: ScopeRequirement[];
  summary: string;
  /**
   * Served without the authorizer (no token, no client id), for documents
   * meant for anyone such as HOTH's public JWKS; `anyOf` is then empty.
   * @default false
   */
  public?: boolean;
}

export const ROUTES: readonly Route[] = [
  {
    method: "POST",
    path: "/health",
    handler: "app",
    anyOf: [],
    summary: "Health of the API and its secret store",
  },
  {
    method: "POST",
    path: "/members",
    handler: "app",
    anyOf: [{ resource: "Patient", access: "c" }],
    summary:
      "Register members: a FHIR Patient, or a batch/transaction Bundle of Patient and Coverage",
  },
  {
    method: "GET",
    path: "/members",
    handler: "app",
    anyOf: [{ resource: "Patient", access: "s" }],
    summary:
      "Search the caller's members by identifier (identifier=system|value): a searchset Bundle",
  },
  {
    method: "GET",
    path: "/members/{id}",
    handler: "app",
    anyOf: [{ resource: "Patient", access: "r" }],
    summary: "The latest registered version of one of the caller's members",
  },
  {
    method: "GET",
    path: "/members/{id}/_history",
    handler: "app",
    anyOf: [{ resource: "Patient", access: "r" }],
    summary: "The versions of one of the caller's members, newest first: a history Bundle",
  },
  {
    method: "GET",
    path: "/members/{id}/_history/{vid}",
    handler: "app",
    anyOf: [{ resource: "Patient", access: "r" }],
    summary: "One version of one of the caller's members (vread)",
  },
  {
    method: "GET",
    path: "/.well-known/jwks.json",
    handler: "app",
    anyOf: [],
    public: true,
    summary:
      "HOTH's public keys (JWKS) for SMART Backend Services: register this URL with a source EHR",
  },
  {
    method: "POST",
    path: "/uploads",
    handler: "app",
    anyOf: [{ resource: "Binary", access: "c" }],
    summary:
      "A pre-signed S3 POST form for one extract, pinned to the caller's landing area, size and the stack key",
  },
  {
    method: "POST",
    path: "/migrations",
    handler: "app",
    anyOf: [{ resource: "Task", access: "c" }],
    summary: "Start a migration of the caller's organisation (idempotent per Idempotency-Key)",
  },
  {
    method: "GET",
    path: "/migrations/{id}",
    handler: "app",
    anyOf: [{ resource: "Task", access: "r" }],
    summary: "Status of one of the caller's migrations, with its report when done",
  },
];

/** Headers among the REQUEST authorizer's identity sources: a request missing one is 401. */
export const IDENTITY_SOURCES = ["Authorization", "X-Client-Id"];

/**
 * `$context` variables also in the authorizer's identity sources, so that
 * API Gateway caches a decision per route: a Deny then carries, in its
 * context, the scope that route needs (`requiredScope`), which the
 * ACCESS_DENIED gateway response names. Identity sources may be headers,
 * query strings, stage variables or `context.*`:
 * https://docs.aws.amazon.com/apigateway/latest/api/API_Authorizer.html
 */
export const IDENTITY_CONTEXT = ["httpMethod", "resourcePath"];

/** The REQUEST authorizer's identitySource expression. */
export const identitySource = () =>
  [
    ...IDENTITY_SOURCES.map((h) => `method.request.header.${h}`),
    ...IDENTITY_CONTEXT.map((c) => `context.${c}`),
  ].join(",");

/** `/members/{id}` -> `/members/*`, the form `execute-api` ARNs take. */
export const arnPath = (path: string) => path.replace(/\{[^}]+\}/g, "*");

/** Matches a concrete path against a route path template; returns its parameters. */
export function matchPath(template: string, path: string): Record<string, string> | undefined {
  const t = template.split("/");
  const p = path.split("/");
  if (t.length !== p.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < t.length; i++) {
    const m = /^\{(\w+)\}$/.exec(t[i]);
    if (m) {
      if (!p[i]) return undefined;
      params[m[1]] = decodeURIComponent(p[i]);
    } else if (t[i] !== p[i]) {
      return undefined;
    }
  }
  return params;
}

export type Resolution =
  | { kind: "route"; route: Route; params: Record<string, string> }
  | { kind: "method-not-allowed"; allow: HttpMethod[] }
  | { kind: "not-found" };

/** Resolves a request to a route, or says whether the path exists with other methods. */
export function resolveRoute(method: string, path: string, routes = ROUTES): Resolution {
  const onPath = routes
    .map((route) => ({ route, params: matchPath(route.path, path) }))
    .filter((m): m is { route: Route; params: Record<string, string> } => m.params !== undefined);
  const hit = onPath.find((m) => m.route.method === method);
  if (hit) return { kind: "route", ...hit };
  if (onPath.length)
    return { kind: "method-not-allowed", allow: onPath.map((m) => m.route.method) };
  return { kind: "not-found" };
}
