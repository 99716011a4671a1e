import * as fs from "node:fs";
import * as path from "node:path";
import { BadRequestError } from "../../handlers/lib/errors";
import { ACCEPTED_TYPES, validateBundleShape, validateMember } from "../../handlers/lib/fhir";
import { parseFhirJson } from "../../handlers/lib/fhirJson";
import type { Issue } from "../../handlers/lib/outcome";

/**
 * The FHIR validation corpus: every Patient, Coverage and Bundle example of
 * HL7's R4 package (test/fixtures/hl7-r4-examples, valid FHIR) and the
 * invalid mutants of test/fixtures/fhir-corpus (manifest.json gives each
 * one's class, the exact status and the issue expressions expected).
 *
 * `evaluate` runs a body through the module-level pipeline (strict JSON,
 * then the validator, as POST /members does); the same manifest can be
 * replayed through the HTTP handler: POST each file's text, compare the
 * status and the set of `issue.expression` of the OperationOutcome (for a
 * batch, of every entry's outcome).
 */

export const EXAMPLES = path.join(__dirname, "..", "fixtures", "hl7-r4-examples");
export const CORPUS = path.join(__dirname, "..", "fixtures", "fhir-corpus");

export interface Expectation {
  /** 400 for JSON-level faults (duplicate keys, depth), 422 for validation. */
  status: 400 | 422;
  /** Exactly the FHIRPath expressions of the issues (sorted, each once). */
  expression: string[];
}

export interface Mutant extends Expectation {
  file: string;
  /** One of CLASSES. */
  class: string;
  description: string;
}

/** The classes of false accepts issue 13 lists (one or more mutants each). */
export const CLASSES = [
  "calendar-date",
  "empty-value",
  "invariant",
  "required-binding",
  "unknown-code",
  "reference-target",
  "cardinality-range",
  "choice-type",
  "integer-range",
  "extension-url",
  "relative-system",
  "narrative",
  "duplicate-key",
  "depth",
  "structure",
] as const;

export interface Outcome {
  status: number;
  issues: Issue[];
}

const sortedSet = (xs: string[]) => [...new Set(xs)].sort();

/** Status and issues of a request body, as POST /members decides them (module level). */
export function evaluate(text: string): Outcome {
  let body: unknown;
  try {
    body = parseFhirJson(text);
  } catch (e) {
    if (e instanceof BadRequestError) return { status: 400, issues: e.issues ?? [] };
    throw e;
  }
  const r = body as Record<string, unknown>;
  if (r?.resourceType === "Bundle") {
    const issues = validateBundleShape(r);
    const entries = Array.isArray(r.entry) ? r.entry : [];
    entries.forEach((e: unknown, i: number) => {
      const resource = (e as Record<string, unknown> | null)?.resource as
        | Record<string, unknown>
        | undefined;
      if ((ACCEPTED_TYPES as readonly unknown[]).includes(resource?.resourceType)) {
        issues.push(...validateMember(resource, `Bundle.entry[${i}].resource`));
      }
    });
    return { status: issues.length ? 422 : 200, issues };
  }
  const issues = validateMember(r);
  return { status: issues.length ? 422 : 201, issues };
}

export const expressionsOf = (issues: Issue[]) =>
  sortedSet(issues.flatMap((i) => i.expression ?? []));

export function examples(): { file: string; text: string }[] {
  return fs
    .readdirSync(EXAMPLES)
    .filter((f) => /^(Patient|Coverage|Bundle)-.*\.json$/.test(f))
    .sort()
    .map((file) => ({ file, text: fs.readFileSync(path.join(EXAMPLES, file), "utf8") }));
}

export function mutants(): (Mutant & { text: string })[] {
  const manifest = JSON.parse(fs.readFileSync(path.join(CORPUS, "manifest.json"), "utf8")) as {
    mutants: Mutant[];
  };
  return manifest.mutants.map((m) => ({
    ...m,
    text: fs.readFileSync(path.join(CORPUS, m.file), "utf8"),
  }));
}
