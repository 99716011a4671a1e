import * as assert from "node:assert/strict";
import type { APIGatewayProxyEvent } from "aws-lambda";
import { ForbiddenError } from "../handlers/lib/errors";
import { accessDenied, callerPermissions, requireAccess } from "../handlers/lib/request";
import { type Interaction, parseScopes, permits, requiredScope } from "../handlers/lib/scopes";

/**
 * Per-resource, per-interaction SMART checks, judged against the tables of
 * SMART App Launch 2.x, "Scopes for requesting FHIR resources"
 * (https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html):
 * v2 letters c = create; r = read, vread, instance history; u = update;
 * d = delete; s = search; v1 `read` = r + s, `write` = c + u + d, `*` = all.
 * The expectations below are written from those tables, not from the code.
 */

const TYPES = ["Patient", "Coverage", "Task"] as const;
const INTERACTIONS: Interaction[] = [
  "create",
  "read",
  "vread",
  "update",
  "delete",
  "history",
  "search",
];
const READS: Interaction[] = ["read", "vread", "history"];
const V1_READ: Interaction[] = [...READS, "search"];
const V1_WRITE: Interaction[] = ["create", "update", "delete"];

/** Scope spelling -> what it grants, as [types, interactions]. */
const MATRIX: [string, readonly string[], Interaction[]][] = [
  ["system/Patient.c", ["Patient"], ["create"]],
  ["system/Patient.r", ["Patient"], READS],
  ["system/Patient.u", ["Patient"], ["update"]],
  ["system/Patient.d", ["Patient"], ["delete"]],
  ["system/Patient.s", ["Patient"], ["search"]],
  ["system/Patient.rs", ["Patient"], V1_READ],
  ["system/Patient.cruds", ["Patient"], INTERACTIONS],
  ["system/Coverage.cu", ["Coverage"], ["create", "update"]],
  ["system/Patient.read", ["Patient"], V1_READ],
  ["system/Patient.write", ["Patient"], V1_WRITE],
  ["system/Patient.*", ["Patient"], INTERACTIONS],
  ["system/Task.c", ["Task"], ["create"]],
  ["system/*.c", TYPES, ["create"]],
  ["system/*.rs", TYPES, V1_READ],
  ["system/*.cruds", TYPES, INTERACTIONS],
  ["system/*.read", TYPES, V1_READ],
  ["system/*.write", TYPES, V1_WRITE],
  ["system/*.*", TYPES, INTERACTIONS],
  // The API acts for an organisation: user/ and patient/ scopes grant nothing.
  ["user/Patient.cruds", [], []],
  ["patient/*.*", [], []],
  // Nothing a route cannot honour or parse: a ?query restriction, letters out of order, junk.
  ["system/Patient.rs?identifier=x", [], []],
  ["system/Patient.sc", [], []],
  ["system/Patient.", [], []],
  ["system/patient.r", [], []],
  ["system/Patient.read ", [], []],
  ["openid", [], []],
  ["", [], []],
];

describe("SMART scopes per resource and interaction", () => {
  for (const [scope, types, interactions] of MATRIX) {
    it(`grants with ${JSON.stringify(scope)} exactly ${types.length ? `${interactions.join(", ")} on ${types.join(", ")}` : "nothing"}`, () => {
      for (const type of TYPES) {
        for (const interaction of INTERACTIONS) {
          const expected = types.includes(type) && interactions.includes(interaction);
          assert.equal(permits([scope], type, interaction), expected, `${type} ${interaction}`);
          assert.equal(
            permits(parseScopes([scope]), type, interaction),
            expected,
            `${type} ${interaction}, parsed`,
          );
        }
      }
    });
  }

  it("grants the union of several scopes, and nothing for none", () => {
    const scopes = ["system/Patient.c", "system/Coverage.read"];
    assert.equal(permits(scopes, "Patient", "create"), true);
    assert.equal(permits(scopes, "Coverage", "search"), true);
    assert.equal(permits(scopes, "Coverage", "create"), false);
    assert.equal(permits(scopes, "Patient", "read"), false);
    assert.equal(permits([], "Patient", "read"), false);
  });

  it("names the narrowest v2 scope an interaction needs", () => {
    assert.deepEqual(
      INTERACTIONS.map((i) => requiredScope("Coverage", i)),
      [
        "system/Coverage.c",
        "system/Coverage.r",
        "system/Coverage.r",
        "system/Coverage.u",
        "system/Coverage.d",
        "system/Coverage.r",
        "system/Coverage.s",
      ],
    );
  });
});

describe("requireAccess (the routes' check, from the authorizer context)", () => {
  const event = (scopes?: unknown) =>
    ({
      requestContext: {
        authorizer: scopes === undefined ? { org: "acme" } : { org: "acme", scopes },
      },
    }) as unknown as APIGatewayProxyEvent;

  it("passes when the context's scopes grant the interaction", () => {
    assert.doesNotThrow(() =>
      requireAccess(event("openid system/Coverage.cu"), "Coverage", "update"),
    );
    assert.doesNotThrow(() => requireAccess(event("system/*.read"), "Patient", "vread"));
  });

  it("refuses with a 403 naming the scope it needs", () => {
    assert.throws(
      () => requireAccess(event("system/Patient.cruds system/Task.cruds"), "Coverage", "create"),
      (e: Error) => {
        assert.ok(e instanceof ForbiddenError);
        assert.equal(e.statusCode, 403);
        assert.equal(e.code, "forbidden");
        assert.equal(
          e.message,
          "The access token's scopes do not grant create on Coverage; it needs system/Coverage.c (or a SMART v1 or wildcard scope that includes it)",
        );
        return true;
      },
    );
  });

  it("refuses when the authorizer passed no scopes, or not as a string", () => {
    for (const scopes of [undefined, "", 42, ["system/*.*"]]) {
      assert.throws(() => requireAccess(event(scopes), "Patient", "read"), ForbiddenError);
      assert.deepEqual(callerPermissions(event(scopes)), []);
    }
  });

  it("will not build a refusal naming a type the API does not serve (it would echo the request)", () => {
    assert.throws(() => accessDenied("Observation" as never, "read"), TypeError);
  });
});
