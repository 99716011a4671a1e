import { BadRequestError } from "./errors";
import type { Issue } from "./outcome";

/**
 * Strict JSON for FHIR request bodies (https://hl7.org/fhir/R4/json.html).
 *
 * `JSON.parse` keeps the last of two equal keys, while HL7's reference
 * validator reads the first: a body with a duplicate key means two different
 * things to two readers, so it is refused. Nesting is bounded so that no
 * later recursive walk (validation, FHIRPath) can overflow the stack: a FHIR
 * resource that needs more than {@link MAX_JSON_DEPTH} levels is not one a
 * member registry receives (the deepest HL7 R4 Patient or Coverage example
 * needs 8 levels, the deepest Bundle example 16).
 *
 * Both are refused with 400 and an issue whose FHIRPath expression names the
 * element; the diagnostics never repeat a value or key from the body.
 */

/** Deepest accepted nesting of objects and arrays (the top-level object is depth 1). */
export const MAX_JSON_DEPTH = 48;

/** An element name as it may appear in a FHIRPath expression; anything else is shown as `?`. */
const NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

type Segment = string | number;

/** `["name", 0, "given"]` under `Patient` -> `Patient.name[0].given`. */
export function jsonPath(root: string, segments: readonly Segment[]): string {
  let out = root;
  for (const s of segments) {
    out += typeof s === "number" ? `[${s}]` : `.${NAME.test(s) ? s : "?"}`;
  }
  return out;
}

interface Frame {
  /** Keys seen so far (objects only). */
  keys?: Set<string>;
  /** Objects: the next string is a key. */
  expectKey: boolean;
  /** Arrays: index of the current element. */
  index: number;
  /** Objects: the current key. */
  key?: string;
}

const issue = (code: Issue["code"], diagnostics: string, expression: string): Issue => ({
  severity: "error",
  code,
  diagnostics,
  expression: [expression],
});

function segmentsOf(stack: Frame[]): Segment[] {
  const out: Segment[] = [];
  for (const f of stack) {
    if (f.keys) {
      if (f.key !== undefined) out.push(f.key);
    } else {
      out.push(f.index);
    }
  }
  return out;
}

/**
 * Walks the JSON text (already known to parse) once, without recursion:
 * refuses a key repeated in one object and nesting deeper than `maxDepth`.
 */
function scan(text: string, maxDepth: number, fallbackRoot: string): void {
  const root: { name?: string } = {};
  const here = (stack: Frame[]) => jsonPath(root.name ?? fallbackRoot, segmentsOf(stack));
  const stack: Frame[] = [];
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      const start = i;
      let escaped = false;
      for (i++; i < n; i++) {
        const d = text.charCodeAt(i);
        if (d === 0x5c /* \ */) {
          escaped = true;
          i++;
        } else if (d === 0x22) break;
      }
      const top = stack[stack.length - 1];
      if (top?.keys && top.expectKey) {
        const raw = text.slice(start, i + 1);
        // "\u0067ender" is the key "gender": compare keys decoded.
        const key = escaped ? (JSON.parse(raw) as string) : raw.slice(1, -1);
        if (top.keys.has(key)) {
          top.key = key;
          throw new BadRequestError("The body repeats a key in one JSON object", "structure", [
            issue(
              "structure",
              "A JSON object has the same key twice (FHIR JSON forbids it, and readers disagree on which value counts)",
              here(stack),
            ),
          ]);
        }
        top.keys.add(key);
        top.key = key;
        top.expectKey = false;
        // Name paths after the first resourceType, the one HL7's validator reads.
        if (stack.length === 1 && key === "resourceType" && root.name === undefined) {
          const m = /^\s*:\s*"([A-Za-z]{1,64})"/.exec(text.slice(i + 1, i + 80));
          root.name = m?.[1] ?? "$this";
        }
      }
    } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      if (stack.length >= maxDepth) {
        throw new BadRequestError(
          `The body nests objects and arrays deeper than ${maxDepth} levels`,
          "too-long",
          [
            issue(
              "too-long",
              `Nesting deeper than ${maxDepth} levels is not accepted`,
              here(stack),
            ),
          ],
        );
      }
      stack.push(
        c === 0x7b
          ? { keys: new Set(), expectKey: true, index: 0 }
          : { expectKey: false, index: 0 },
      );
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      stack.pop();
    } else if (c === 0x2c /* , */) {
      const top = stack[stack.length - 1];
      if (top?.keys) top.expectKey = true;
      else if (top) top.index++;
    }
  }
}

/**
 * Parses a request body as strict JSON: the value, or a {@link BadRequestError}
 * (400) for text that is not JSON, a key repeated in one object, or nesting
 * deeper than `maxDepth`. The error's issues carry a FHIRPath expression.
 */
export function parseFhirJson(text: string, maxDepth = MAX_JSON_DEPTH): unknown {
  let value: unknown;
  try {
    // V8's JSON.parse does not recurse on the native stack: deep input cannot overflow it.
    value = JSON.parse(text);
  } catch {
    throw new BadRequestError("The body is not valid JSON", "structure", [
      issue("structure", "The body is not valid JSON", "$this"),
    ]);
  }
  const type =
    value && typeof value === "object" && !Array.isArray(value)
      ? (value as Record<string, unknown>).resourceType
      : undefined;
  scan(text, maxDepth, typeof type === "string" && NAME.test(type) ? type : "$this");
  return value;
}
