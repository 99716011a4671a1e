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
}

export const GATEWAY_RESPONSES: readonly GatewayResponseSpec[] = [
  {
    type: "UNAUTHORIZED",
    statusCode: 401,
    code: "login",
    headers: { "WWW-Authenticate": "'Bearer'" },
  },
  { type: "ACCESS_DENIED", statusCode: 403, code: "forbidden" },
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
export function outcomeTemplate(code: string): string {
  return `{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"${code}","diagnostics":$context.error.messageString}]}`;
}
