import type { APIGatewayProxyResult } from "aws-lambda";

/**
 * FHIR OperationOutcome responses (https://hl7.org/fhir/R4/operationoutcome.html).
 * `code` is from the IssueType value set (https://hl7.org/fhir/R4/valueset-issue-type.html).
 */
export type IssueType =
  | "invalid"
  | "structure"
  | "required"
  | "value"
  | "security"
  | "login"
  | "forbidden"
  | "not-found"
  | "not-supported"
  | "conflict"
  | "too-long"
  | "throttled"
  | "transient"
  | "exception"
  | "processing"
  | "invariant"
  | "code-invalid"
  | "business-rule";

export interface Issue {
  severity: "fatal" | "error" | "warning" | "information";
  code: IssueType;
  diagnostics: string;
  /** FHIRPath expressions of the elements at fault. */
  expression?: string[];
}

export const FHIR_JSON = "application/fhir+json";

/** A FHIR JSON answer (a resource or a Bundle). */
export const fhirResponse = (
  statusCode: number,
  body: unknown,
  headers: Record<string, string> = {},
): APIGatewayProxyResult => ({
  statusCode,
  headers: { "Content-Type": FHIR_JSON, ...headers },
  body: JSON.stringify(body),
});

export function operationOutcome(issues: Issue[]) {
  return { resourceType: "OperationOutcome" as const, issue: issues };
}

export function outcomeResponse(
  statusCode: number,
  code: IssueType,
  diagnostics: string,
  headers: Record<string, string> = {},
  issues: Issue[] = [{ severity: "error", code, diagnostics }],
): APIGatewayProxyResult {
  return {
    statusCode,
    headers: { "Content-Type": FHIR_JSON, ...headers },
    body: JSON.stringify(operationOutcome(issues)),
  };
}
