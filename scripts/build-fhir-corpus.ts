import * as fs from "node:fs";
import * as path from "node:path";
import type { Mutant } from "../test/support/fhirCorpus";

/**
 * Writes the invalid mutants of the FHIR validation corpus
 * (test/fixtures/fhir-corpus/invalid/*.json and manifest.json). Each mutant
 * is one fault put into a valid registration body (test/fixtures/members:
 * a Patient, a Coverage, or a transaction of both), with the status and the issue expressions HL7's
 * rules call for, written here by hand from the R4 specification (not
 * copied from the validator's output). `npx tsx scripts/build-fhir-corpus.ts &&
 * npx biome format --write test/fixtures/fhir-corpus/manifest.json`.
 */

type Json = Record<string, unknown>;
const ROOT = path.join(__dirname, "..");
const OUT = path.join(ROOT, "test", "fixtures", "fhir-corpus");
const load = (file: string): Json =>
  JSON.parse(fs.readFileSync(path.join(ROOT, "test", "fixtures", file), "utf8"));
const clone = <T>(x: T): T => structuredClone(x);

const patient = () => clone(load("members/patient.json"));
const coverage = () => clone(load("members/coverage.json"));
const PATIENT_URL = "urn:uuid:11111111-1111-4111-8111-111111111111";
const bundle = (): Json => ({
  resourceType: "Bundle",
  type: "transaction",
  entry: [
    { fullUrl: PATIENT_URL, resource: patient(), request: { method: "POST", url: "Patient" } },
    { resource: coverage(), request: { method: "POST", url: "Coverage" } },
  ],
});
const XHTML = 'xmlns="http://www.w3.org/1999/xhtml"';
const withDiv = (div: string) => {
  const p = patient();
  p.text = { status: "generated", div };
  return p;
};

interface Case {
  name: string;
  class: Mutant["class"];
  description: string;
  /** The body: a resource (serialised with JSON.stringify) or raw text. */
  body: Json | string;
  status?: 400 | 422;
  expression: string[];
}

const m = (
  name: string,
  cls: Mutant["class"],
  description: string,
  body: Json | string,
  expression: string[],
  status: 400 | 422 = 422,
): Case => ({ name, class: cls, description, body, expression, status });

const set = (r: Json, f: (r: Json) => void) => {
  f(r);
  return r;
};
// biome-ignore lint/suspicious/noExplicitAny: mutants reach anywhere in the resource
type Any = any;

/** A Patient whose extension nests `depth` extensions (as text: JSON.stringify would overflow). */
const nested = (depth: number) => {
  const open = '{"url":"http://example.org/x","extension":['.repeat(depth - 1);
  const leaf = '{"url":"http://example.org/x","valueString":"leaf"}';
  return `${JSON.stringify(patient()).slice(0, -1)},"extension":[${open}${leaf}${"]}".repeat(depth - 1)}]}`;
};

export const CASES: Case[] = [
  // Impossible calendar dates, year 0000.
  m(
    "birthdate-feb-30",
    "calendar-date",
    "birthDate 1970-02-30",
    set(patient(), (p) => {
      p.birthDate = "1970-02-30";
    }),
    ["Patient.birthDate"],
  ),
  m(
    "birthdate-year-0000",
    "calendar-date",
    "birthDate 0000-01-01",
    set(patient(), (p) => {
      p.birthDate = "0000-01-01";
    }),
    ["Patient.birthDate"],
  ),
  m(
    "birthdate-feb-29-1900",
    "calendar-date",
    "1900 is not a leap year",
    set(patient(), (p) => {
      p.birthDate = "1900-02-29";
    }),
    ["Patient.birthDate"],
  ),
  m(
    "birthdate-feb-29-2021",
    "calendar-date",
    "2021 is not a leap year",
    set(patient(), (p) => {
      p.birthDate = "2021-02-29";
    }),
    ["Patient.birthDate"],
  ),
  m(
    "birthdate-apr-31",
    "calendar-date",
    "April has 30 days",
    set(patient(), (p) => {
      p.birthDate = "2023-04-31";
    }),
    ["Patient.birthDate"],
  ),
  m(
    "birthdate-month-13",
    "calendar-date",
    "month 13",
    set(patient(), (p) => {
      p.birthDate = "1970-13-01";
    }),
    ["Patient.birthDate"],
  ),
  m(
    "birthdate-unpadded",
    "calendar-date",
    "1970-1-1 is not an R4 date",
    set(patient(), (p) => {
      p.birthDate = "1970-1-1";
    }),
    ["Patient.birthDate"],
  ),
  m(
    "birthdate-datetime",
    "calendar-date",
    "a dateTime in a date",
    set(patient(), (p) => {
      p.birthDate = "1970-01-01T00:00:00Z";
    }),
    ["Patient.birthDate"],
  ),
  m(
    "deceased-datetime-feb-30",
    "calendar-date",
    "deceasedDateTime 2021-02-30T10:00:00Z",
    set(patient(), (p) => {
      p.deceasedDateTime = "2021-02-30T10:00:00Z";
    }),
    ["Patient.deceasedDateTime"],
  ),
  m(
    "deceased-datetime-no-zone",
    "calendar-date",
    "a time without a time zone",
    set(patient(), (p) => {
      p.deceasedDateTime = "2021-02-03T10:00:00";
    }),
    ["Patient.deceasedDateTime"],
  ),
  m(
    "coverage-period-feb-30",
    "calendar-date",
    "Coverage.period.start 2021-02-30",
    set(coverage(), (c: Any) => {
      c.period.start = "2021-02-30";
    }),
    ["Coverage.period.start"],
  ),
  m(
    "meta-lastupdated-feb-30",
    "calendar-date",
    "an instant on Feb 30",
    set(patient(), (p) => {
      p.meta = { lastUpdated: "2021-02-30T10:00:00Z" };
    }),
    ["Patient.meta.lastUpdated"],
  ),
  m(
    "meta-lastupdated-no-seconds",
    "calendar-date",
    "an instant needs seconds and a zone",
    set(patient(), (p) => {
      p.meta = { lastUpdated: "2021-02-03T10:00Z" };
    }),
    ["Patient.meta.lastUpdated"],
  ),

  // Empty arrays, objects and strings (https://hl7.org/fhir/R4/json.html).
  m(
    "telecom-empty-array",
    "empty-value",
    "telecom: []",
    set(patient(), (p) => {
      p.telecom = [];
    }),
    ["Patient.telecom"],
  ),
  m(
    "maritalstatus-empty-object",
    "empty-value",
    "maritalStatus: {}",
    set(patient(), (p) => {
      p.maritalStatus = {};
    }),
    ["Patient.maritalStatus"],
  ),
  m(
    "given-empty-array",
    "empty-value",
    "name.given: []",
    set(patient(), (p: Any) => {
      p.name[0].given = [];
    }),
    ["Patient.name[0].given"],
  ),
  m(
    "address-line-empty-array",
    "empty-value",
    "address.line: []",
    set(patient(), (p: Any) => {
      p.address[0].line = [];
    }),
    ["Patient.address[0].line"],
  ),
  m(
    "name-empty-object",
    "empty-value",
    "name: [{}]",
    set(patient(), (p) => {
      p.name = [{}];
    }),
    ["Patient.name[0]"],
  ),
  m(
    "identifier-type-empty",
    "empty-value",
    "identifier.type: {}",
    set(patient(), (p: Any) => {
      p.identifier[0].type = {};
    }),
    ["Patient.identifier[0].type"],
  ),
  m(
    "coverage-class-empty-array",
    "empty-value",
    "Coverage class: []",
    set(coverage(), (c) => {
      c.class = [];
    }),
    ["Coverage.class"],
  ),
  m(
    "family-whitespace",
    "empty-value",
    "a whitespace-only family name",
    set(patient(), (p: Any) => {
      p.name[0].family = "   ";
    }),
    ["Patient.name[0].family"],
  ),
  m(
    "birthdate-empty-string",
    "empty-value",
    'birthDate: ""',
    set(patient(), (p) => {
      p.birthDate = "";
    }),
    ["Patient.birthDate"],
  ),
  m(
    "meta-empty-object",
    "empty-value",
    "meta: {}",
    set(patient(), (p) => {
      p.meta = {};
    }),
    ["Patient.meta"],
  ),
  m(
    "extension-empty-array",
    "empty-value",
    "extension: []",
    set(patient(), (p) => {
      p.extension = [];
    }),
    ["Patient.extension"],
  ),
  m(
    "gender-null",
    "empty-value",
    "gender: null",
    set(patient(), (p) => {
      p.gender = null;
    }),
    ["Patient.gender"],
  ),

  // Invariants (FHIRPath constraints of the R4 StructureDefinitions).
  m(
    "cpt-2",
    "invariant",
    "a ContactPoint value without a system",
    set(patient(), (p) => {
      p.telecom = [{ value: "+1-555-0100" }];
    }),
    ["Patient.telecom[0]"],
  ),
  m(
    "per-1-coverage",
    "invariant",
    "Coverage.period ends before it starts",
    set(coverage(), (c) => {
      c.period = { start: "2026-12-31", end: "2026-01-01" };
    }),
    ["Coverage.period"],
  ),
  m(
    "per-1-name",
    "invariant",
    "a name period ending before it starts",
    set(patient(), (p: Any) => {
      p.name[0].period = { start: "2020-01-02", end: "2020-01-01" };
    }),
    ["Patient.name[0].period"],
  ),
  m(
    "ext-1-both",
    "invariant",
    "an extension with both a value and extensions",
    set(patient(), (p) => {
      p.extension = [
        {
          url: "http://example.org/x",
          valueString: "a",
          extension: [{ url: "http://example.org/y", valueString: "b" }],
        },
      ];
    }),
    ["Patient.extension[0]"],
  ),
  m(
    "ext-1-neither",
    "invariant",
    "an extension with neither a value nor extensions",
    set(patient(), (p) => {
      p.extension = [{ url: "http://example.org/x" }];
    }),
    ["Patient.extension[0]"],
  ),
  m(
    "pat-1",
    "invariant",
    "a contact with only a relationship",
    set(patient(), (p) => {
      p.contact = [{ relationship: [{ text: "Next of kin" }] }];
    }),
    ["Patient.contact[0]"],
  ),
  m(
    "att-1",
    "invariant",
    "a photo with data but no contentType",
    set(patient(), (p) => {
      p.photo = [{ data: "aGVsbG8=" }];
    }),
    ["Patient.photo[0]"],
  ),
  m(
    "dom-2",
    "invariant",
    "a contained resource that contains another",
    set(patient(), (p) => {
      p.contained = [
        { resourceType: "Patient", id: "c1", contained: [{ resourceType: "Patient", id: "c2" }] },
      ];
      p.link = [{ other: { reference: "#c1" }, type: "seealso" }];
    }),
    ["Patient", "Patient.contained[0].contained[0]"],
  ),
  m(
    "dom-3",
    "invariant",
    "a contained resource nothing refers to",
    set(patient(), (p) => {
      p.contained = [{ resourceType: "Patient", id: "c1", active: true }];
    }),
    ["Patient.contained[0]"],
  ),
  m(
    "dom-4",
    "invariant",
    "a contained resource with meta.versionId",
    set(patient(), (p) => {
      p.contained = [{ resourceType: "Patient", id: "c1", meta: { versionId: "1" } }];
      p.link = [{ other: { reference: "#c1" }, type: "seealso" }];
    }),
    ["Patient"],
  ),
  m(
    "dom-5",
    "invariant",
    "a contained resource with a security label",
    set(patient(), (p) => {
      p.contained = [
        {
          resourceType: "Patient",
          id: "c1",
          meta: {
            security: [
              { system: "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", code: "R" },
            ],
          },
        },
      ];
      p.link = [{ other: { reference: "#c1" }, type: "seealso" }];
    }),
    ["Patient"],
  ),
  m(
    "ref-1",
    "invariant",
    "a local reference to nothing contained",
    set(patient(), (p) => {
      p.generalPractitioner = [{ reference: "#missing" }];
    }),
    ["Patient.generalPractitioner[0]"],
  ),
  m(
    "qty-3",
    "invariant",
    "a Quantity with a code but no system",
    set(patient(), (p) => {
      p.extension = [
        { url: "http://example.org/weight", valueQuantity: { value: 70, code: "kg" } },
      ];
    }),
    ["Patient.extension[0].valueQuantity"],
  ),
  m(
    "rng-2",
    "invariant",
    "a Range whose low is above its high",
    set(patient(), (p) => {
      p.extension = [
        { url: "http://example.org/range", valueRange: { low: { value: 5 }, high: { value: 1 } } },
      ];
    }),
    ["Patient.extension[0].valueRange"],
  ),
  m("txt-2", "invariant", "a narrative with no content", withDiv(`<div ${XHTML}>  </div>`), [
    "Patient.text.div",
  ]),
  m(
    "bdl-1",
    "invariant",
    "total in a transaction",
    set(bundle(), (b) => {
      b.total = 2;
    }),
    ["Bundle"],
  ),
  m(
    "bdl-2",
    "invariant",
    "entry.search in a transaction",
    set(bundle(), (b: Any) => {
      b.entry[0].search = { mode: "match" };
    }),
    ["Bundle"],
  ),
  m(
    "bdl-3",
    "invariant",
    "a transaction entry without a request",
    set(bundle(), (b: Any) => {
      delete b.entry[1].request;
    }),
    ["Bundle", "Bundle.entry[1].request"],
  ),
  m(
    "bdl-4",
    "invariant",
    "entry.response in a transaction",
    set(bundle(), (b: Any) => {
      b.entry[0].response = { status: "201" };
    }),
    ["Bundle"],
  ),
  m(
    "bdl-7",
    "invariant",
    "two entries with the same fullUrl",
    set(bundle(), (b: Any) => {
      b.entry[1].fullUrl = PATIENT_URL;
    }),
    ["Bundle"],
  ),
  m(
    "bdl-8",
    "invariant",
    "a version-specific fullUrl",
    set(bundle(), (b: Any) => {
      b.entry[1].fullUrl = "https://example.org/fhir/Coverage/1/_history/1";
    }),
    ["Bundle.entry[1]"],
  ),
  m(
    "dom-2-coverage",
    "invariant",
    "a Coverage with a contained resource that contains another",
    set(coverage(), (c) => {
      c.contained = [
        { resourceType: "Patient", id: "p", contained: [{ resourceType: "Patient", id: "q" }] },
      ];
      c.beneficiary = { reference: "#p" };
    }),
    ["Coverage", "Coverage.contained[0].contained[0]"],
  ),

  // Required bindings.
  m(
    "coverage-status-unknown",
    "required-binding",
    "Coverage.status outside fm-status",
    set(coverage(), (c) => {
      c.status = "bogus";
    }),
    ["Coverage.status"],
  ),
  m(
    "coverage-status-case",
    "required-binding",
    "Coverage.status 'Active' (codes are case-sensitive)",
    set(coverage(), (c) => {
      c.status = "Active";
    }),
    ["Coverage.status"],
  ),
  m(
    "gender-m",
    "required-binding",
    "gender 'M'",
    set(patient(), (p) => {
      p.gender = "M";
    }),
    ["Patient.gender"],
  ),
  m(
    "name-use",
    "required-binding",
    "HumanName.use outside name-use",
    set(patient(), (p: Any) => {
      p.name[0].use = "legal";
    }),
    ["Patient.name[0].use"],
  ),
  m(
    "telecom-system",
    "required-binding",
    "ContactPoint.system outside contact-point-system",
    set(patient(), (p: Any) => {
      p.telecom[0].system = "cell";
    }),
    ["Patient.telecom[0].system"],
  ),
  m(
    "telecom-use",
    "required-binding",
    "ContactPoint.use outside contact-point-use",
    set(patient(), (p: Any) => {
      p.telecom[0].use = "personal";
    }),
    ["Patient.telecom[0].use"],
  ),
  m(
    "address-use",
    "required-binding",
    "Address.use outside address-use",
    set(patient(), (p: Any) => {
      p.address[0].use = "office";
    }),
    ["Patient.address[0].use"],
  ),
  m(
    "identifier-use",
    "required-binding",
    "Identifier.use outside identifier-use",
    set(patient(), (p: Any) => {
      p.identifier[0].use = "primary";
    }),
    ["Patient.identifier[0].use"],
  ),
  m(
    "link-type",
    "required-binding",
    "Patient.link.type outside link-type",
    set(patient(), (p) => {
      p.link = [{ other: { reference: "Patient/other" }, type: "same" }];
    }),
    ["Patient.link[0].type"],
  ),
  m(
    "narrative-status",
    "required-binding",
    "Narrative.status outside narrative-status",
    set(patient(), (p) => {
      p.text = { status: "auto", div: `<div ${XHTML}><p>Jane</p></div>` };
    }),
    ["Patient.text.status"],
  ),
  m(
    "bundle-type-unknown",
    "required-binding",
    "Bundle.type outside bundle-type",
    set(bundle(), (b) => {
      b.type = "upload";
    }),
    ["Bundle", "Bundle.type"],
  ),
  m(
    "request-method-unknown",
    "required-binding",
    "request.method outside http-verb",
    set(bundle(), (b: Any) => {
      b.entry[1].request.method = "FETCH";
    }),
    ["Bundle.entry[1].request.method"],
  ),
  m(
    "quantity-comparator",
    "required-binding",
    "Quantity.comparator outside quantity-comparator",
    set(patient(), (p) => {
      p.extension = [
        { url: "http://example.org/weight", valueQuantity: { value: 70, comparator: "~" } },
      ];
    }),
    ["Patient.extension[0].valueQuantity.comparator"],
  ),

  // Codes their (HL7-defined) code system does not define, whatever the binding's strength.
  m(
    "marital-status-unknown-code",
    "unknown-code",
    "a marital status code v3-MaritalStatus does not define",
    set(patient(), (p) => {
      p.maritalStatus = {
        coding: [{ system: "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus", code: "X" }],
      };
    }),
    ["Patient.maritalStatus.coding[0].code"],
  ),
  m(
    "identifier-type-unknown-code",
    "unknown-code",
    "an identifier type code v2-0203 does not define",
    set(patient(), (p: Any) => {
      p.identifier[0].type.coding[0].code = "MEMBER";
    }),
    ["Patient.identifier[0].type.coding[0].code"],
  ),
  m(
    "relationship-unknown-code",
    "unknown-code",
    "a subscriber relationship code the code system does not define",
    set(coverage(), (c: Any) => {
      c.relationship.coding[0].code = "cousin";
    }),
    ["Coverage.relationship.coding[0].code"],
  ),
  m(
    "coverage-class-unknown-code",
    "unknown-code",
    "a coverage class type code the code system does not define",
    set(coverage(), (c: Any) => {
      c.class[0].type.coding[0].code = "platinum";
    }),
    ["Coverage.class[0].type.coding[0].code"],
  ),
  m(
    "contact-relationship-gender-system",
    "unknown-code",
    "a contact relationship coded with the gender code system",
    set(patient(), (p) => {
      p.contact = [
        {
          relationship: [
            { coding: [{ system: "http://hl7.org/fhir/administrative-gender", code: "N" }] },
          ],
          name: { family: "Doe" },
        },
      ];
    }),
    ["Patient.contact[0].relationship[0].coding[0].code"],
  ),

  // Reference target types.
  m(
    "beneficiary-organization",
    "reference-target",
    "Coverage.beneficiary pointing at an Organization",
    set(coverage(), (c) => {
      c.beneficiary = { reference: "Organization/1" };
    }),
    ["Coverage.beneficiary.reference"],
  ),
  m(
    "beneficiary-absolute-organization",
    "reference-target",
    "an absolute URL naming an Organization",
    set(coverage(), (c) => {
      c.beneficiary = { reference: "https://example.org/fhir/Organization/1" };
    }),
    ["Coverage.beneficiary.reference"],
  ),
  m(
    "payor-device",
    "reference-target",
    "Coverage.payor pointing at a Device",
    set(coverage(), (c) => {
      c.payor = [{ reference: "Device/1" }];
    }),
    ["Coverage.payor[0].reference"],
  ),
  m(
    "subscriber-practitioner",
    "reference-target",
    "Coverage.subscriber pointing at a Practitioner",
    set(coverage(), (c) => {
      c.subscriber = { reference: "Practitioner/1" };
    }),
    ["Coverage.subscriber.reference"],
  ),
  m(
    "managing-organization-patient",
    "reference-target",
    "managingOrganization pointing at a Patient",
    set(patient(), (p) => {
      p.managingOrganization = { reference: "Patient/2" };
    }),
    ["Patient.managingOrganization.reference"],
  ),
  m(
    "practitioner-coverage",
    "reference-target",
    "generalPractitioner pointing at a Coverage",
    set(patient(), (p) => {
      p.generalPractitioner = [{ reference: "Coverage/1" }];
    }),
    ["Patient.generalPractitioner[0].reference"],
  ),
  m(
    "reference-type-mismatch",
    "reference-target",
    "Reference.type not allowed for the element",
    set(coverage(), (c) => {
      c.payor = [{ type: "Device", display: "x" }];
    }),
    ["Coverage.payor[0].type"],
  ),

  // Cardinality and range.
  m(
    "coverage-order-0",
    "cardinality-range",
    "order: 0 (positiveInt)",
    set(coverage(), (c) => {
      c.order = 0;
    }),
    ["Coverage.order"],
  ),
  m(
    "coverage-order-negative",
    "cardinality-range",
    "order: -1",
    set(coverage(), (c) => {
      c.order = -1;
    }),
    ["Coverage.order"],
  ),
  m(
    "coverage-no-status",
    "cardinality-range",
    "Coverage without status (1..1)",
    set(coverage(), (c) => {
      delete c.status;
    }),
    ["Coverage.status"],
  ),
  m(
    "coverage-no-beneficiary",
    "cardinality-range",
    "Coverage without beneficiary (1..1)",
    set(coverage(), (c) => {
      delete c.beneficiary;
    }),
    ["Coverage.beneficiary"],
  ),
  m(
    "coverage-no-payor",
    "cardinality-range",
    "Coverage without payor (1..*)",
    set(coverage(), (c) => {
      delete c.payor;
    }),
    ["Coverage.payor"],
  ),
  m(
    "link-no-other",
    "cardinality-range",
    "Patient.link without other (1..1)",
    set(patient(), (p) => {
      p.link = [{ type: "seealso" }];
    }),
    ["Patient.link[0].other"],
  ),
  m(
    "bundle-no-type",
    "cardinality-range",
    "a Bundle without type",
    set(bundle(), (b) => {
      delete b.type;
    }),
    ["Bundle", "Bundle.type"],
  ),

  // Two values of one choice element.
  m(
    "deceased-both",
    "choice-type",
    "deceasedBoolean and deceasedDateTime",
    set(patient(), (p) => {
      p.deceasedBoolean = false;
      p.deceasedDateTime = "2020-01-01";
    }),
    ["Patient.deceased"],
  ),
  m(
    "multiplebirth-both",
    "choice-type",
    "multipleBirthBoolean and multipleBirthInteger",
    set(patient(), (p) => {
      p.multipleBirthBoolean = true;
      p.multipleBirthInteger = 2;
    }),
    ["Patient.multipleBirth"],
  ),
  m(
    "extension-two-values",
    "choice-type",
    "an extension with two value[x]",
    set(patient(), (p) => {
      p.extension = [{ url: "http://example.org/x", valueString: "a", valueBoolean: true }];
    }),
    ["Patient.extension[0].value"],
  ),
  m(
    "choice-unknown-type",
    "choice-type",
    "a choice with a type it does not allow",
    set(patient(), (p) => {
      p.deceasedString = "yes";
    }),
    ["Patient.deceasedString"],
  ),

  // Integers out of range.
  m(
    "multiplebirth-2-31",
    "integer-range",
    "multipleBirthInteger 2^31",
    set(patient(), (p) => {
      p.multipleBirthInteger = 2147483648;
    }),
    ["Patient.multipleBirthInteger"],
  ),
  m(
    "multiplebirth-fraction",
    "integer-range",
    "multipleBirthInteger 1.5",
    set(patient(), (p) => {
      p.multipleBirthInteger = 1.5;
    }),
    ["Patient.multipleBirthInteger"],
  ),
  m(
    "multiplebirth-string",
    "integer-range",
    "multipleBirthInteger as a string",
    set(patient(), (p) => {
      p.multipleBirthInteger = "2";
    }),
    ["Patient.multipleBirthInteger"],
  ),
  m(
    "coverage-order-huge",
    "integer-range",
    "order 99999999999",
    set(coverage(), (c) => {
      c.order = 99999999999;
    }),
    ["Coverage.order"],
  ),
  m(
    "extension-integer-negative-overflow",
    "integer-range",
    "valueInteger below -2^31",
    set(patient(), (p) => {
      p.extension = [{ url: "http://example.org/n", valueInteger: -2147483649 }];
    }),
    ["Patient.extension[0].valueInteger"],
  ),

  // Extension without url.
  m(
    "extension-no-url",
    "extension-url",
    "an extension without url",
    set(patient(), (p) => {
      p.extension = [{ valueString: "x" }];
    }),
    ["Patient.extension[0].url"],
  ),
  m(
    "modifier-extension-no-url",
    "extension-url",
    "a modifierExtension without url",
    set(patient(), (p) => {
      p.modifierExtension = [{ valueBoolean: true }];
    }),
    ["Patient.modifierExtension[0].url"],
  ),
  m(
    "nested-extension-no-url",
    "extension-url",
    "a nested extension without url",
    set(patient(), (p) => {
      p.extension = [{ url: "http://example.org/x", extension: [{ valueString: "x" }] }];
    }),
    ["Patient.extension[0].extension[0].url"],
  ),

  // Relative system URIs.
  m(
    "identifier-system-relative",
    "relative-system",
    "identifier.system 'member-id'",
    set(patient(), (p: Any) => {
      p.identifier[0].system = "member-id";
    }),
    ["Patient.identifier[0].system"],
  ),
  m(
    "identifier-system-path",
    "relative-system",
    "identifier.system '/ids/members'",
    set(patient(), (p: Any) => {
      p.identifier[0].system = "/ids/members";
    }),
    ["Patient.identifier[0].system"],
  ),
  m(
    "coding-system-relative",
    "relative-system",
    "a Coding whose system is relative",
    set(patient(), (p: Any) => {
      p.identifier[0].type.coding[0].system = "v2-0203";
    }),
    ["Patient.identifier[0].type.coding[0].system"],
  ),

  // Narrative outside the FHIR XHTML subset.
  m(
    "narrative-script",
    "narrative",
    "a <script> in text.div",
    withDiv(`<div ${XHTML}><p>Jane</p><script>alert(1)</script></div>`),
    ["Patient.text.div"],
  ),
  m(
    "narrative-onclick",
    "narrative",
    "an onclick attribute",
    withDiv(`<div ${XHTML}><p onclick="alert(1)">Jane</p></div>`),
    ["Patient.text.div"],
  ),
  m(
    "narrative-img-external",
    "narrative",
    "an image loaded from another server",
    withDiv(`<div ${XHTML}><img src="https://tracker.example/p.gif" alt="x"/></div>`),
    ["Patient.text.div"],
  ),
  m(
    "narrative-style-url",
    "narrative",
    "a style loading a URL",
    withDiv(
      `<div ${XHTML}><p style="background:url(https://tracker.example/p.gif)">Jane</p></div>`,
    ),
    ["Patient.text.div"],
  ),
  m(
    "narrative-iframe",
    "narrative",
    "an iframe",
    withDiv(`<div ${XHTML}><iframe src="https://example.org"></iframe>Jane</div>`),
    ["Patient.text.div"],
  ),
  m(
    "narrative-form",
    "narrative",
    "a form",
    withDiv(`<div ${XHTML}><form action="https://example.org"><input name="q"/></form>Jane</div>`),
    ["Patient.text.div"],
  ),
  m(
    "narrative-no-namespace",
    "narrative",
    "a div without the XHTML namespace",
    withDiv("<div><p>Jane</p></div>"),
    ["Patient.text.div"],
  ),
  m(
    "narrative-not-div",
    "narrative",
    "a root element other than div",
    withDiv(`<p ${XHTML}>Jane</p>`),
    ["Patient.text.div"],
  ),
  m(
    "narrative-not-well-formed",
    "narrative",
    "unclosed elements",
    withDiv(`<div ${XHTML}><p>Jane</div>`),
    ["Patient.text.div"],
  ),
  m(
    "narrative-javascript-href",
    "narrative",
    "a javascript: link",
    withDiv(`<div ${XHTML}><a href="javascript:alert(1)">Jane</a></div>`),
    ["Patient.text.div"],
  ),
  m(
    "narrative-html-entity",
    "narrative",
    "an HTML entity XML does not define",
    withDiv(`<div ${XHTML}><p>Jane&nbsp;Doe</p></div>`),
    ["Patient.text.div"],
  ),
  m(
    "narrative-object",
    "narrative",
    "an object element",
    withDiv(`<div ${XHTML}><object data="x.swf">Jane</object></div>`),
    ["Patient.text.div"],
  ),
  m(
    "narrative-doctype",
    "narrative",
    "a DOCTYPE",
    withDiv(`<!DOCTYPE div><div ${XHTML}><p>Jane</p></div>`),
    ["Patient.text.div"],
  ),

  // Structure.
  m(
    "unknown-element",
    "structure",
    "an element R4 does not define",
    set(patient(), (p) => {
      p.favouriteColour = "blue";
    }),
    ["Patient.favouriteColour"],
  ),
  m(
    "gender-array",
    "structure",
    "an array for a single value",
    set(patient(), (p) => {
      p.gender = ["female"];
    }),
    ["Patient.gender"],
  ),
  m(
    "name-object",
    "structure",
    "an object for an array",
    set(patient(), (p: Any) => {
      p.name = p.name[0];
    }),
    ["Patient.name"],
  ),
  m(
    "active-string",
    "structure",
    "a boolean as a string",
    set(patient(), (p) => {
      p.active = "true";
    }),
    ["Patient.active"],
  ),
  m(
    "id-bad-characters",
    "structure",
    "an id with a space",
    set(patient(), (p) => {
      p.id = "a b";
    }),
    ["Patient.id"],
  ),
  m(
    "primitive-extension-on-complex",
    "structure",
    "a '_' companion of a complex element",
    set(patient(), (p) => {
      p._name = [{ id: "x" }];
    }),
    ["Patient._name"],
  ),
  m(
    "bundle-entry-unknown-type",
    "structure",
    "a Bundle entry that is not a Patient or Coverage",
    set(bundle(), (b: Any) => {
      b.entry[1].resource = { resourceType: "Organization", name: "x" };
      b.entry[1].request.url = "Organization";
    }),
    ["Bundle.entry[1].resource.resourceType"],
  ),

  // JSON level: 400.
  m(
    "duplicate-gender",
    "duplicate-key",
    "gender given twice",
    JSON.stringify(patient()).replace('"gender":"female"', '"gender":"female","gender":"male"'),
    ["Patient.gender"],
    400,
  ),
  m(
    "duplicate-nested-family",
    "duplicate-key",
    "family given twice in a name",
    JSON.stringify(patient()).replace('"family":"Doe"', '"family":"Doe","family":"Roe"'),
    ["Patient.name[0].family"],
    400,
  ),
  m(
    "duplicate-escaped-key",
    "duplicate-key",
    "a key repeated with a \\u escape",
    JSON.stringify(patient()).replace(
      '"gender":"female"',
      '"gender":"female","\\u0067ender":"male"',
    ),
    ["Patient.gender"],
    400,
  ),
  m(
    "duplicate-bundle-entry-key",
    "duplicate-key",
    "a duplicate key inside a Bundle entry's resource",
    JSON.stringify(bundle()).replace('"status":"active"', '"status":"active","status":"cancelled"'),
    ["Bundle.entry[1].resource.status"],
    400,
  ),
  m(
    "duplicate-resource-type",
    "duplicate-key",
    "resourceType given twice",
    JSON.stringify(patient()).replace(
      '"resourceType":"Patient"',
      '"resourceType":"Patient","resourceType":"Coverage"',
    ),
    ["Patient.resourceType"],
    400,
  ),
  m(
    "depth-10000-extensions",
    "depth",
    "10,000 nested extensions",
    nested(10000),
    [`Patient${".extension[0]".repeat(24)}`],
    400,
  ),
  m(
    "depth-49",
    "depth",
    "one level past the limit",
    nested(24),
    [`Patient${".extension[0]".repeat(24)}`],
    400,
  ),
];

if (require.main === module) {
  fs.rmSync(path.join(OUT, "invalid"), { recursive: true, force: true });
  fs.mkdirSync(path.join(OUT, "invalid"), { recursive: true });
  const mutants: Mutant[] = CASES.map((c) => {
    const file = `invalid/${c.name}.json`;
    // POST /members takes a Coverage only in a Bundle: a Coverage mutant travels as the second
    // entry of the transaction, so that the manifest replays unchanged through the HTTP handler.
    const lone = typeof c.body !== "string" && c.body.resourceType === "Coverage";
    const body = lone
      ? set(bundle(), (b: Any) => {
          b.entry[1].resource = c.body;
        })
      : c.body;
    const expression = lone
      ? c.expression.map((e) => e.replace(/^Coverage/, "Bundle.entry[1].resource"))
      : c.expression;
    const text = typeof body === "string" ? body : `${JSON.stringify(body, null, 2)}\n`;
    fs.writeFileSync(path.join(OUT, file), text);
    return {
      file,
      class: c.class,
      description: c.description,
      status: c.status ?? 422,
      expression: [...new Set(expression)].sort(),
    };
  });
  fs.writeFileSync(path.join(OUT, "manifest.json"), `${JSON.stringify({ mutants }, null, 2)}\n`);
  console.log(`${mutants.length} mutants written to ${path.relative(ROOT, OUT)}`);
}
