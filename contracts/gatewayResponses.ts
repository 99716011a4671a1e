/**
 * API Gateway's own responses (authorizer refusals, throttling, WAF, errors
 * before the integration), rewritten as FHIR OperationOutcome JSON. Used by
 * AuthorizedApi and by the local API emulator.
 * Response types: https://docs.aws.amazon.com/apigateway/latest/developerguide/supported-gateway-response-types.html
 */

export interface GatewayResponseSpec {
  type: string;
  /** Status to send; absent keeps API Gateway's own (the DEFAULT_* families). */
  statusCode?: number;
  /** FHIR IssueType (https://hl7.org/fhir/R4/valueset-issue-type.html). */
  code: string;
  /** Extra response headers (values as API Gateway literals, quoted). */
  headers?: Record<string, string>;
  /**
   * The issue's `diagnostics` as a template JSON value. Gateway response
   * templates are not run through VTL: they allow simple `$context`
   * substitution only (https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-swagger-extensions-gateway-responses.responseTemplates.html),
   * so a message cannot depend on the route except through the authorizer's
   * context. @default `$context.error.messageString` (API Gateway's message, quoted)
   */
  diagnostics?: string;
}

/**
 * ACCESS_DENIED names the scope the route needs: the authorizer's Deny
 * carries it as `requiredScope` (built from the route table, never from the
 * request; decisions are cached per route, see IDENTITY_CONTEXT).
 */
export const ACCESS_DENIED_DIAGNOSTICS =
  '"The access token\'s scopes do not grant this route; it needs $context.authorizer.requiredScope"';

export const GATEWAY_RESPONSES: readonly GatewayResponseSpec[] = [
  {
    type: "UNAUTHORIZED",
    statusCode: 401,
    code: "login",
    headers: { "WWW-Authenticate": "'Bearer'" },
  },
  {
    type: "ACCESS_DENIED",
    statusCode: 403,
    code: "forbidden",
    // RFC 6750 section 3.1: the token is valid but its scope is insufficient.
    headers: { "WWW-Authenticate": `'Bearer error="insufficient_scope"'` },
    diagnostics: ACCESS_DENIED_DIAGNOSTICS,
  },
  { type: "WAF_FILTERED", statusCode: 403, code: "forbidden" },
  // REST APIs answer an undefined resource with MISSING_AUTHENTICATION_TOKEN;
  // a defined route without a token gets UNAUTHORIZED from the authorizer.
  { type: "MISSING_AUTHENTICATION_TOKEN", statusCode: 404, code: "not-found" },
  { type: "THROTTLED", statusCode: 429, code: "throttled" },
  { type: "QUOTA_EXCEEDED", statusCode: 429, code: "throttled" },
  { type: "REQUEST_TOO_LARGE", statusCode: 413, code: "too-long" },
  { type: "AUTHORIZER_FAILURE", statusCode: 500, code: "exception" },
  { type: "AUTHORIZER_CONFIGURATION_ERROR", statusCode: 500, code: "exception" },
  { type: "INTEGRATION_TIMEOUT", statusCode: 504, code: "timeout" },
  { type: "DEFAULT_4XX", code: "invalid" },
  { type: "DEFAULT_5XX", code: "exception" },
];

/**
 * The mapping template of an OperationOutcome body. `$context.error.messageString`
 * is API Gateway's message as a quoted JSON string.
 */
export function outcomeTemplate(spec: Pick<GatewayResponseSpec, "code" | "diagnostics">): string {
  const diagnostics = spec.diagnostics ?? "$context.error.messageString";
  return `{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"${spec.code}","diagnostics":${diagnostics}}]}`;
}

/**
 * What API Gateway does with a gateway response template: replaces each
 * `$context.<name>` with its value, and nothing more (no VTL). Unknown or
 * absent variables become empty. For the local emulator and tests.
 */
export function renderTemplate(template: string, vars: Record<string, string>): string {
  return template.replace(
    /\$context\.([A-Za-z][A-Za-z0-9.]*[A-Za-z0-9])/g,
    (_, name: string) => vars[name] ?? "",
  );
}
