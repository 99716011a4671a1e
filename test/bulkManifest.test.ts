import * as assert from "node:assert/strict";
import * as fc from "fast-check";
import { planDownloads } from "../handlers/lib/bulkExport";
import { ManifestError, parseManifest } from "../handlers/lib/bulkManifest";
import { fixture } from "./support/handlers";

const RULES = { tokenOrigins: ["https://example.com"] };

const item = (type: fc.Arbitrary<string>, origin = "https://example.com") =>
  fc.record(
    {
      type,
      url: fc.webPath().map((p) => `${origin}/files${p.startsWith("/") ? p : `/${p}`}`),
      count: fc.nat({ max: 1_000_000 }),
    },
    { requiredKeys: ["type", "url"] },
  );

const resourceType = fc.constantFrom("Patient", "Observation", "Coverage", "Encounter");

const instant = fc
  .date({
    min: new Date("2000-01-01T00:00:00Z"),
    max: new Date("2099-12-31T23:59:59Z"),
    noInvalidDate: true,
  })
  .map((d) => d.toISOString());

/** Manifests the spec allows, on the allowed origin. */
const validManifest = fc.record(
  {
    transactionTime: instant,
    request: fc.constant("https://example.com/fhir/$export"),
    requiresAccessToken: fc.boolean(),
    output: fc.array(item(resourceType), { maxLength: 6 }),
    error: fc.array(item(fc.constant("OperationOutcome")), { maxLength: 2 }),
    deleted: fc.array(item(fc.constant("Bundle")), { maxLength: 2 }),
  },
  { requiredKeys: ["transactionTime", "request", "requiresAccessToken", "output", "error"] },
);

describe("parseManifest", () => {
  it("accepts the complete-status example of the Bulk Data spec", () => {
    // https://hl7.org/fhir/uv/bulkdata/export.html, "Response - Complete Status" example.
    const manifest = parseManifest(fixture("bulk/manifest-spec-example.json"), RULES);

    assert.equal(manifest.transactionTime, "2021-01-01T00:00:00Z");
    assert.equal(manifest.requiresAccessToken, true);
    assert.deepEqual(
      manifest.output.map((o) => o.type),
      ["Patient", "Patient", "Observation"],
    );
    assert.deepEqual(manifest.error, [
      { type: "OperationOutcome", url: "https://example.com/output/err_file_1.ndjson" },
    ]);
    assert.deepEqual(manifest.deleted, [
      { type: "Bundle", url: "https://example.com/output/del_file_1.ndjson" },
    ]);
  });

  it("accepts the manifests HAPI FHIR 8.8.0's JPA server answered for a system and a Group export", () => {
    // Answered by HAPI FHIR 8.8.0 (hapi-fhir-jpaserver-base, H2) on this machine:
    // no `count`, requiresAccessToken true without any auth, `+00:00` instants.
    const hapi = { tokenOrigins: ["http://localhost:8080"] };
    const system = parseManifest(fixture("bulk/hapi-8.8.0-manifest-system.json"), hapi);
    const group = parseManifest(fixture("bulk/hapi-8.8.0-manifest-group.json"), hapi);

    assert.equal(system.transactionTime, "2026-12-06T03:54:42.751+00:00");
    assert.deepEqual(
      system.output.map((o) => o.type),
      ["Group", "Observation", "Patient"],
    );
    assert.deepEqual(system.error, []);
    assert.deepEqual(
      planDownloads(group, "landing/acme/bulk/m-1").map((t) => [t.kind, t.key, t.count]),
      [
        ["output", "landing/acme/bulk/m-1/output/Observation.000.ndjson", undefined],
        ["output", "landing/acme/bulk/m-1/output/Patient.000.ndjson", undefined],
      ],
    );
    // Its files are on the server's own origin: anywhere else, our token would not go.
    assert.throws(
      () => parseManifest(fixture("bulk/hapi-8.8.0-manifest-group.json"), RULES),
      ManifestError,
    );
  });

  it("returns every valid manifest's files unchanged, in order", () => {
    fc.assert(
      fc.property(validManifest, (m) => {
        const parsed = parseManifest(m, RULES);
        const plain = (x: unknown) => JSON.parse(JSON.stringify(x));
        assert.deepEqual(parsed.output, plain(m.output));
        assert.deepEqual(parsed.error, plain(m.error));
        assert.deepEqual(parsed.deleted, plain(m.deleted ?? []));
        assert.equal(parsed.transactionTime, m.transactionTime);
      }),
      { numRuns: 300 },
    );
  });

  it("names each missing required field", () => {
    const required = ["transactionTime", "request", "requiresAccessToken", "output", "error"];
    fc.assert(
      fc.property(validManifest, fc.constantFrom(...required), (m, field) => {
        const broken: Record<string, unknown> = { ...m };
        delete broken[field];
        assert.throws(
          () => parseManifest(broken, RULES),
          (e: Error) => e instanceof ManifestError && e.fields.includes(`${field}: required`),
        );
      }),
      { numRuns: 100 },
    );
  });

  it("throws nothing but ManifestError on arbitrary JSON", () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        try {
          parseManifest(value, RULES);
        } catch (e) {
          assert.ok(e instanceof ManifestError, String(e));
        }
      }),
      { numRuns: 1000 },
    );
  });

  it("refuses a manifest sending the access token to another origin, naming the file", () => {
    fc.assert(
      fc.property(
        validManifest,
        item(resourceType, "https://attacker.example.net"),
        fc.boolean(),
        (m, foreign, needsToken) => {
          const manifest = {
            ...m,
            requiresAccessToken: needsToken,
            output: [...m.output, foreign],
          };
          if (!needsToken) {
            assert.equal(parseManifest(manifest, RULES).output.length, manifest.output.length);
            return;
          }
          assert.throws(
            () => parseManifest(manifest, RULES),
            (e: Error) =>
              e instanceof ManifestError &&
              e.fields.some((f) =>
                f.startsWith(`output.${m.output.length}.url: requires the access token`),
              ) &&
              !e.message.includes("attacker"),
          );
        },
      ),
      { numRuns: 100 },
    );
  });

  it("refuses bad counts, relative URLs, wrong error and deleted types, and a non-instant transactionTime", () => {
    const base = fixture<Record<string, unknown>>("bulk/manifest-spec-example.json");
    const cases: [Record<string, unknown>, string][] = [
      [
        { output: [{ type: "Patient", url: "https://example.com/a", count: -1 }] },
        "output.0.count: must not be negative",
      ],
      [
        { output: [{ type: "Patient", url: "https://example.com/a", count: 1.5 }] },
        "output.0.count: must be int",
      ],
      [
        { output: [{ type: "Patient", url: "/relative/file.ndjson" }] },
        "output.0.url: not an absolute http(s) URL",
      ],
      [
        { output: [{ type: "Patient", url: "file:///etc/passwd" }], requiresAccessToken: false },
        "output.0.url: not an absolute http(s) URL",
      ],
      [
        { output: [{ type: "patient", url: "https://example.com/a" }] },
        "output.0.type: has the wrong format",
      ],
      [
        { error: [{ type: "Patient", url: "https://example.com/e" }] },
        "error.0.type: must be OperationOutcome",
      ],
      [
        { deleted: [{ type: "Patient", url: "https://example.com/d" }] },
        "deleted.0.type: must be Bundle",
      ],
      [{ transactionTime: "2021-01-01" }, "transactionTime: has the wrong format"],
      [{ requiresAccessToken: "true" }, "requiresAccessToken: must be boolean"],
    ];
    for (const [change, field] of cases) {
      assert.throws(
        () => parseManifest({ ...base, ...change }, RULES),
        (e: Error) => e instanceof ManifestError && e.fields.includes(field),
        field,
      );
    }
  });

  it("follows a next page link (Bulk Data 3.0 paged manifests) and ignores other relations", () => {
    const base = fixture<Record<string, unknown>>("bulk/manifest-spec-example.json");

    const paged = parseManifest(
      {
        ...base,
        link: [
          { relation: "self", url: "https://example.com/status/1?page=1" },
          { relation: "next", url: "https://example.com/status/1?page=2" },
        ],
      },
      RULES,
    );

    assert.equal(paged.next, "https://example.com/status/1?page=2");
    assert.equal(parseManifest(base, RULES).next, undefined);
  });
});
