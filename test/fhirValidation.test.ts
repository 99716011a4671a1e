import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import fc from "fast-check";
import * as definitions from "../handlers/generated/fhirR4Definitions.js";
import { BadRequestError } from "../handlers/lib/errors";
import { REGISTRATION_CODES, validateMember } from "../handlers/lib/fhir";
import { MAX_JSON_DEPTH, parseFhirJson } from "../handlers/lib/fhirJson";
import type { Issue } from "../handlers/lib/outcome";
import { xhtmlProblems } from "../handlers/lib/xhtml";
import { generate, OUT } from "../scripts/build-fhir-definitions";
import { CLASSES, evaluate, examples, expressionsOf, mutants } from "./support/fhirCorpus";
import { fixture } from "./support/handlers";

type Json = Record<string, unknown>;

/** Every string and number leaf of a JSON value (what a diagnostic must never repeat); no recursion. */
function leaves(root: unknown): string[] {
  const out: string[] = [];
  const todo = [root];
  while (todo.length) {
    const v = todo.pop();
    if (Array.isArray(v)) todo.push(...v);
    else if (v && typeof v === "object") todo.push(...Object.values(v));
    else if (typeof v === "string" || typeof v === "number") out.push(String(v));
  }
  return out;
}

/** Codes the R4 value sets define ("transaction", "female"): HL7's texts name them, they are not data. */
const SPEC_CODES = new Set(
  Object.values(definitions.codes).flatMap((codes) =>
    codes.map((c) => c.slice(c.lastIndexOf("|") + 1)),
  ),
);

/** Values of a body worth looking for in diagnostics (short codes like "R" would match any text). */
function distinctiveValues(text: string): string[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return [];
  }
  return leaves(parsed).filter((s) => s.length >= 5 && !SPEC_CODES.has(s));
}

describe("FHIR corpus: HL7 R4 examples (test/fixtures/hl7-r4-examples)", () => {
  const all = examples();

  it("holds every Patient, Coverage and Bundle example under 1 MB of the R4 package", () => {
    const count = (prefix: string) => all.filter((e) => e.file.startsWith(prefix)).length;
    assert.deepEqual(
      { Patient: count("Patient-"), Coverage: count("Coverage-"), Bundle: count("Bundle-") },
      { Patient: 22, Coverage: 4, Bundle: 34 },
    );
  });

  it("refuses a valid HL7 example only for a registration rule, never for FHIR", () => {
    // Prepare / act
    const refused: string[] = [];
    const accepted: string[] = [];
    for (const { file, text } of all) {
      const { status, issues } = evaluate(text);
      // Assess
      const fhirIssues = issues.filter((i) => !REGISTRATION_CODES.has(i.code));
      assert.deepEqual(
        fhirIssues.map((i) => [i.code, i.expression?.[0], i.diagnostics]),
        [],
        `${file} is valid R4 but was refused for FHIR reasons`,
      );
      (status >= 400 ? refused : accepted).push(file);
    }
    // What registration accepts of HL7's examples: the Patients with identifier, name, gender and birth date.
    assert.deepEqual(accepted.sort(), [
      "Coverage-7546D.json",
      "Coverage-7547E.json",
      "Coverage-9876B1.json",
      "Coverage-SP1234.json",
      "Patient-animal.json",
      "Patient-ch-example.json",
      "Patient-example.json",
      "Patient-f001.json",
      "Patient-f201.json",
      "Patient-genetics-example1.json",
      "Patient-glossy.json",
      "Patient-infant-twin-1.json",
      "Patient-infant-twin-2.json",
      "Patient-mom.json",
      "Patient-pat3.json",
      "Patient-pat4.json",
      "Patient-xcda.json",
      "Patient-xds.json",
    ]);
    // No HL7 Bundle is a batch or transaction of only Patients and Coverages.
    assert.equal(refused.filter((f) => f.startsWith("Bundle-")).length, 34);
  });
});

describe("FHIR corpus: Synthea patients (../shared/fixtures)", () => {
  const file = path.join(
    __dirname,
    "..",
    "..",
    "shared",
    "fixtures",
    "synthea-10",
    "Patient.000.ndjson",
  );

  it("validates every Synthea patient without an issue", function () {
    if (!fs.existsSync(file)) {
      console.log(`      skipped: ${file} is not present on this machine`);
      this.skip();
    }
    const patients = fs.readFileSync(file, "utf8").trim().split("\n");
    assert.ok(patients.length > 0);
    const failures = patients.flatMap((line, i) =>
      evaluate(line).issues.map((issue) => `patient ${i}: ${issue.expression?.[0]} ${issue.code}`),
    );
    assert.deepEqual(failures, []);
  });
});

describe("FHIR corpus: invalid mutants (test/fixtures/fhir-corpus)", () => {
  const all = mutants();

  it("has at least 80 mutants, covering every class of issue 13", () => {
    assert.ok(all.length >= 80, `${all.length} mutants`);
    assert.deepEqual([...new Set(all.map((m) => m.class))].sort(), [...CLASSES].sort());
  });

  it("refuses every mutant with the exact status and issue expressions (0 false accepts)", () => {
    const falseAccepts: string[] = [];
    const wrong: string[] = [];
    for (const m of all) {
      const { status, issues } = evaluate(m.text);
      if (status < 400) falseAccepts.push(m.file);
      const got = expressionsOf(issues);
      if (status !== m.status || JSON.stringify(got) !== JSON.stringify(m.expression)) {
        wrong.push(
          `${m.file}: ${status} ${JSON.stringify(got)}, expected ${m.status} ${JSON.stringify(m.expression)}`,
        );
      }
    }
    assert.deepEqual(falseAccepts, []);
    assert.deepEqual(wrong, []);
  });

  it("never repeats a value of the request in a diagnostic", () => {
    for (const m of all) {
      const values = distinctiveValues(m.text);
      for (const i of evaluate(m.text).issues) {
        for (const v of values) {
          assert.ok(!i.diagnostics.includes(v), `${m.file}: a diagnostic repeats a request value`);
        }
      }
    }
  });

  it("gives every issue one FHIRPath expression", () => {
    for (const m of all) {
      for (const i of evaluate(m.text).issues) {
        assert.equal(i.expression?.length, 1, m.file);
        assert.match(
          i.expression?.[0] ?? "",
          /^(Patient|Coverage|Bundle)(\.[A-Za-z_?]+(\[\d+\])?)*$/,
          m.file,
        );
      }
    }
  });
});

describe("validateMember", () => {
  const patient = () => fixture<Json>("members/patient.json");

  it("accepts the registration example Patient and Coverage", () => {
    assert.deepEqual(validateMember(patient()), []);
    assert.deepEqual(validateMember(fixture<Json>("members/coverage.json")), []);
  });

  it("names each missing registration field with code business-rule", () => {
    const issues = validateMember({ resourceType: "Patient", active: true });
    assert.deepEqual(
      issues.map((i: Issue) => [i.code, i.expression?.[0]]),
      [
        ["business-rule", "Patient.identifier"],
        ["business-rule", "Patient.name"],
        ["business-rule", "Patient.gender"],
        ["business-rule", "Patient.birthDate"],
      ],
    );
  });

  it("puts entries' issues under the FHIRPath it is given", () => {
    const issues = validateMember(
      { ...patient(), birthDate: "1970-02-30" },
      "Bundle.entry[3].resource",
    );
    assert.deepEqual(expressionsOf(issues), ["Bundle.entry[3].resource.birthDate"]);
  });

  it("refuses a resource type other than Patient and Coverage as not supported", () => {
    const issues = validateMember({ resourceType: "Organization", name: "x" });
    assert.deepEqual(
      issues.map((i) => [i.code, i.expression?.[0]]),
      [["not-supported", "$this.resourceType"]],
    );
  });

  it("accepts 29 February of a leap year and 2000", () => {
    assert.deepEqual(validateMember({ ...patient(), birthDate: "2000-02-29" }), []);
    assert.deepEqual(validateMember({ ...patient(), birthDate: "2024-02-29" }), []);
    assert.deepEqual(validateMember({ ...patient(), birthDate: "1974" }), []);
  });

  it("never throws and always answers with expressions, whatever JSON it is given (property)", () => {
    const keys = [
      "name",
      "telecom",
      "birthDate",
      "extension",
      "contained",
      "text",
      "link",
      "contact",
      "x",
    ];
    fc.assert(
      fc.property(
        fc.constantFrom("Patient", "Coverage"),
        fc.dictionary(fc.constantFrom(...keys), fc.jsonValue({ maxDepth: 5 })),
        (resourceType, props) => {
          const issues = validateMember({ ...props, resourceType });
          for (const i of issues) assert.equal(i.expression?.length, 1);
        },
      ),
      { numRuns: 500 },
    );
  });

  it("never throws on a Bundle of arbitrary entries (property)", () => {
    const entry = fc.record(
      {
        fullUrl: fc.oneof(fc.string(), fc.jsonValue({ maxDepth: 1 })),
        resource: fc.oneof(
          fc.jsonValue({ maxDepth: 3 }),
          fc.constant(fixture<Json>("members/patient.json")),
          fc.constant(fixture<Json>("members/coverage.json")),
        ),
        request: fc.oneof(
          fc.record({ method: fc.constantFrom("POST", "PUT", "GET", ""), url: fc.string() }),
          fc.jsonValue({ maxDepth: 2 }),
        ),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(
        fc.oneof(fc.array(entry, { maxLength: 4 }), fc.jsonValue({ maxDepth: 2 })),
        fc.constantFrom("batch", "transaction", "collection", 3),
        (entries, type) => {
          const { issues } = evaluate(
            JSON.stringify({ resourceType: "Bundle", type, entry: entries }),
          );
          for (const i of issues) assert.equal(i.expression?.length, 1);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("stops at its depth limit instead of overflowing the stack, for callers that skip parseFhirJson", () => {
    let ext: Json = { url: "http://example.org/x", valueString: "leaf" };
    for (let i = 0; i < 10_000; i++) ext = { url: "http://example.org/x", extension: [ext] };
    const issues = validateMember({ ...patient(), extension: [ext] });
    assert.ok(issues.some((i) => i.code === "too-long"));
  });
});

describe("parseFhirJson", () => {
  const refusal = (text: string) => {
    try {
      parseFhirJson(text);
    } catch (e) {
      assert.ok(e instanceof BadRequestError);
      return { status: e.statusCode, code: e.code, expression: e.issues?.[0]?.expression };
    }
    assert.fail("accepted");
  };

  it("refuses text that is not JSON with 400", () => {
    assert.deepEqual(refusal('{"resourceType":'), {
      status: 400,
      code: "structure",
      expression: ["$this"],
    });
  });

  it(`accepts ${MAX_JSON_DEPTH} levels of nesting and refuses ${MAX_JSON_DEPTH + 1} with 400`, () => {
    const deep = (n: number) => `${"[".repeat(n - 1)}{"a":1}${"]".repeat(n - 1)}`;
    assert.doesNotThrow(() => parseFhirJson(deep(MAX_JSON_DEPTH)));
    assert.deepEqual(refusal(deep(MAX_JSON_DEPTH + 1)), {
      status: 400,
      code: "too-long",
      expression: [`$this${"[0]".repeat(MAX_JSON_DEPTH)}`],
    });
  });

  it("refuses a million levels of nesting with 400, not a stack overflow", () => {
    const n = 1_000_000;
    assert.equal(refusal(`${"[".repeat(n)}${"]".repeat(n)}`).status, 400);
  });

  it("names a duplicate key after the first resourceType even when it comes later", () => {
    assert.deepEqual(refusal('{"a":1,"a":2,"resourceType":"Patient"}').expression, ["Patient.a"]);
    assert.deepEqual(refusal('{"resourceType":"Patient","x":{"b":[1,{"c":1,"c":1}]}}').expression, [
      "Patient.x.b[1].c",
    ]);
  });

  it("never puts a key that is not an element name in the expression", () => {
    assert.deepEqual(
      refusal('{"resourceType":"Patient","MBR 123 Doe":1,"MBR 123 Doe":2}').expression,
      ["Patient.?"],
    );
  });

  it("reads what JSON.parse reads, for any JSON without repeated keys (property)", () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 8 }), (v) => {
        const text = JSON.stringify(v);
        assert.deepEqual(parseFhirJson(text), JSON.parse(text));
      }),
      { numRuns: 300 },
    );
  });

  it("refuses any object given one of its keys twice, however it is escaped (property)", () => {
    fc.assert(
      fc.property(
        fc.dictionary(fc.string({ minLength: 1, maxLength: 8 }), fc.jsonValue({ maxDepth: 2 }), {
          minKeys: 1,
        }),
        fc.boolean(),
        (obj, escaped) => {
          const [key] = Object.keys(obj);
          const again = escaped
            ? `"${[...key].map((ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, "0")}`).join("")}"`
            : JSON.stringify(key);
          const text = `${JSON.stringify(obj).slice(0, -1)},${again}:null}`;
          assert.equal(refusal(text).status, 400);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe("xhtmlProblems (narrative)", () => {
  it("accepts the FHIR subset: tables, images from contained data, entities, comments", () => {
    const div =
      '<div xmlns="http://www.w3.org/1999/xhtml"><!-- c --><table border="1"><tr><td colspan="2">A &amp; B &#169;</td></tr></table><img src="#photo" alt="x"/><a href="https://hl7.org">HL7</a></div>';
    assert.deepEqual(xhtmlProblems(div), []);
  });

  it("names each problem once, with fixed texts only", () => {
    const problems = xhtmlProblems(
      '<div xmlns="http://www.w3.org/1999/xhtml"><p onclick="steal(MBR-1)">x</p><p onmouseover="y">y</p></div>',
    );
    assert.deepEqual(problems, ["an event attribute (onclick, onload, ...)"]);
  });
});

describe("FHIR definitions (handlers/generated)", () => {
  it("are what scripts/build-fhir-definitions.ts extracts from the R4 package today (npm run build:fhir)", () => {
    assert.ok(
      fs.readFileSync(OUT, "utf8") === generate(),
      "handlers/generated/fhirR4Definitions.js is stale: run npm run build:fhir",
    );
  });
});
