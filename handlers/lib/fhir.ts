import type { ErrorObject } from "ajv";
import * as validators from "../generated/fhirValidators.js";
import type { Issue } from "./outcome";

/**
 * FHIR R4 validation for member registration: the official JSON schema
 * (compiled ahead of time, handlers/generated/), the cardinalities the JSON
 * schema leaves out, and the registration rules. Issues carry FHIRPath
 * expressions and never echo a value (values may be patient identifiers).
 */

type Validator = ((data: unknown) => boolean) & { errors?: ErrorObject[] | null };
const compiled = validators as unknown as Record<"Patient" | "Coverage" | "Bundle", Validator>;

export type Json = Record<string, unknown>;

const issue = (code: Issue["code"], diagnostics: string, expression: string): Issue => ({
  severity: "error",
  code,
  diagnostics,
  expression: [expression],
});

/** `/name/0/given` under `Patient` -> `Patient.name[0].given`. */
export function fhirPath(base: string, instancePath: string): string {
  return instancePath
    .split("/")
    .slice(1)
    .reduce((acc, part) => (/^\d+$/.test(part) ? `${acc}[${part}]` : `${acc}.${part}`), base);
}

function schemaIssues(errors: ErrorObject[], base: string): Issue[] {
  const out = new Map<string, Issue>();
  for (const e of errors) {
    let i: Issue;
    const at = fhirPath(base, e.instancePath);
    switch (e.keyword) {
      case "additionalProperties": {
        const name = (e.params as { additionalProperty: string }).additionalProperty;
        i = issue("structure", `Unknown element '${name}'`, `${at}.${name}`);
        break;
      }
      case "required": {
        const name = (e.params as { missingProperty: string }).missingProperty;
        i = issue("required", `Missing required element '${name}'`, `${at}.${name}`);
        break;
      }
      case "type":
        i = issue("structure", `Must be ${(e.params as { type: string }).type}`, at);
        break;
      case "enum":
        i = issue(
          "value",
          `Must be one of: ${(e.params as { allowedValues: string[] }).allowedValues.join(", ")}`,
          at,
        );
        break;
      case "const":
        i = issue("value", `Must be '${(e.params as { allowedValue: string }).allowedValue}'`, at);
        break;
      case "pattern":
        i = issue("value", "Invalid format for this FHIR primitive type", at);
        break;
      default:
        i = issue("invalid", `Invalid: ${e.message ?? e.keyword}`, at);
    }
    // One issue per element and problem: allErrors may report one twice.
    out.set(`${i.expression?.[0]}|${i.diagnostics}`, i);
  }
  return [...out.values()];
}

function runSchema(
  type: "Patient" | "Coverage" | "Bundle",
  resource: unknown,
  base: string,
): Issue[] {
  const validate = compiled[type];
  return validate(resource) ? [] : schemaIssues(validate.errors ?? [], base);
}

const present = (v: unknown) =>
  v !== undefined && v !== null && v !== "" && !(Array.isArray(v) && v.length === 0);

/** Registration rules: a Patient needs an identifier (with a value), a name, a gender and a birth date. */
function patientRules(p: Json, base: string): Issue[] {
  const issues: Issue[] = [];
  const identifiers = Array.isArray(p.identifier) ? (p.identifier as Json[]) : [];
  if (!identifiers.some((i) => present(i?.value))) {
    issues.push(
      issue("required", "A member needs an identifier with a value", `${base}.identifier`),
    );
  }
  if (!present(p.name)) issues.push(issue("required", "A member needs a name", `${base}.name`));
  if (!present(p.gender))
    issues.push(issue("required", "A member needs a gender", `${base}.gender`));
  if (!present(p.birthDate))
    issues.push(issue("required", "A member needs a birth date", `${base}.birthDate`));
  return issues;
}

/** Coverage.status is 1..1 in R4, which the JSON schema does not enforce. */
function coverageRules(c: Json, base: string): Issue[] {
  return present(c.status)
    ? []
    : [issue("required", "Missing required element 'status'", `${base}.status`)];
}

/** Validates one Patient or Coverage; `base` is its FHIRPath (e.g. `Bundle.entry[2].resource`). */
export function validateMember(resource: unknown, base?: string): Issue[] {
  const r = resource as Json;
  const type = r?.resourceType;
  if (type === "Patient") {
    const at = base ?? "Patient";
    const schema = runSchema("Patient", r, at);
    return [...schema, ...patientRules(r, at)];
  }
  if (type === "Coverage") {
    const at = base ?? "Coverage";
    return [...runSchema("Coverage", r, at), ...coverageRules(r, at)];
  }
  return [
    issue(
      "not-supported",
      `Resource type ${typeof type === "string" ? `'${type}'` : "(none)"} is not accepted here: send a Patient or Coverage`,
      base ?? "resourceType",
    ),
  ];
}

/**
 * The Bundle's own structure (entries' resources are validated one by one
 * with `validateMember`): schema, type batch|transaction, and every entry
 * with a resource and a request (bdl-3) whose method and url are present.
 */
export function validateBundleShape(bundle: Json): Issue[] {
  const issues = runSchema("Bundle", bundle, "Bundle");
  if (bundle.type !== "batch" && bundle.type !== "transaction") {
    issues.push(issue("value", "Bundle.type must be 'batch' or 'transaction'", "Bundle.type"));
  }
  const entries = Array.isArray(bundle.entry) ? (bundle.entry as Json[]) : [];
  if (entries.length === 0)
    issues.push(issue("required", "The Bundle has no entries", "Bundle.entry"));
  entries.forEach((e, i) => {
    const at = `Bundle.entry[${i}]`;
    // The R4 JSON schema's Bundle_Entry does not say `type: object`: a string passes it.
    if (!e || typeof e !== "object" || Array.isArray(e)) {
      issues.push(issue("structure", "A Bundle entry must be an object", at));
      return;
    }
    if (!present(e.resource))
      issues.push(issue("required", "Missing required element 'resource'", `${at}.resource`));
    const request = e.request as Json | undefined;
    if (!request) {
      issues.push(issue("required", "Missing required element 'request'", `${at}.request`));
      return;
    }
    if (request.method !== "POST" && request.method !== "PUT") {
      issues.push(
        issue("not-supported", "Only POST and PUT requests are accepted", `${at}.request.method`),
      );
    }
    if (!present(request.url))
      issues.push(issue("required", "Missing required element 'url'", `${at}.request.url`));
  });
  return issues;
}
