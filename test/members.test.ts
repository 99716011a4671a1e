import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { DynamoDBClient, ScanCommand } from "@aws-sdk/client-dynamodb";
import { CreateSecretCommand, SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from "aws-lambda";
import { MAX_TRANSACTION_ENTRIES } from "../handlers/routes/members";
import { createRegistryTable } from "../local/registryTable";
import { mutants } from "./support/fhirCorpus";
import { captureOutput, fixture, lambdaContext, loadHandler, proxyEvent } from "./support/handlers";
import { startMoto } from "./support/moto";

type Handler = (event: APIGatewayProxyEvent, context: Context) => Promise<APIGatewayProxyResult>;
type Json = Record<string, unknown>;

const TABLE = `hoth-test-registry-${Date.now()}`;
const SYNTHEA = path.join(
  __dirname,
  "..",
  "..",
  "shared",
  "fixtures",
  "synthea-10",
  "Patient.000.ndjson",
);
const EXAMPLES = path.join(__dirname, "fixtures", "hl7-r4-examples");

/** Each test registers for an organisation of its own, so identifiers never collide across tests. */
let ORG = "acme";
let orgs = 0;
let serial = 0;
/** A Patient with a member identifier no other test uses. */
const patient = (value = `MBR-${++serial}`): Json => {
  const p = fixture<Json>("members/patient.json");
  (p.identifier as Json[])[0].value = value;
  return p;
};
const coverage = (): Json => fixture("members/coverage.json");

function request(
  method: "GET" | "POST",
  urlPath: string,
  opts: {
    body?: unknown;
    raw?: string;
    contentType?: string;
    key?: string;
    org?: string | null;
    headers?: Record<string, string>;
    query?: Record<string, string>;
    /** The scopes the authorizer verified. @default Patient and Coverage, all interactions */
    scopes?: string;
  } = {},
): APIGatewayProxyEvent {
  const base = proxyEvent("health");
  const authorizer = {
    ...base.requestContext.authorizer,
    scopes: opts.scopes ?? "system/Patient.cruds system/Coverage.cruds",
  } as Json;
  if (opts.org === null) delete authorizer.org;
  else authorizer.org = opts.org ?? ORG;
  return {
    ...base,
    httpMethod: method,
    path: urlPath,
    resource: urlPath,
    headers: {
      ...base.headers,
      "Content-Type": opts.contentType ?? "application/fhir+json",
      ...(opts.key ? { "Idempotency-Key": opts.key } : {}),
      ...opts.headers,
    },
    queryStringParameters: opts.query ?? null,
    multiValueQueryStringParameters: opts.query
      ? Object.fromEntries(Object.entries(opts.query).map(([k, v]) => [k, [v]]))
      : null,
    body: opts.raw ?? (opts.body === undefined ? null : JSON.stringify(opts.body)),
    requestContext: { ...base.requestContext, authorizer },
  };
}

const json = (r: APIGatewayProxyResult) => JSON.parse(r.body);
const issues = (r: APIGatewayProxyResult) =>
  (json(r).issue as { code: string; diagnostics: string; expression?: string[] }[]).map((i) => [
    i.code,
    i.diagnostics,
    i.expression?.[0],
  ]);

/** Every item of the registry table for an organisation, as `kind key` strings (kinds: H V I K). */
async function items(org = ORG): Promise<string[]> {
  const out: string[] = [];
  let start: Json | undefined;
  const db = new DynamoDBClient({});
  do {
    const page = await db.send(
      new ScanCommand({ TableName: TABLE, ExclusiveStartKey: start as never }),
    );
    for (const i of page.Items ?? []) {
      const pk = i.pk.S as string;
      const [kind, owner] = pk.split("#");
      if (owner === org) out.push(`${kind} ${pk.split("#").slice(2).join("#")} ${i.sk.S}`.trim());
    }
    start = page.LastEvaluatedKey as Json | undefined;
  } while (start);
  return out.sort();
}

function bundle(
  type: string,
  entries: {
    resource: Json;
    fullUrl?: string;
    method?: string;
    url?: string;
    ifMatch?: string;
    ifNoneExist?: string;
  }[],
): Json {
  return {
    resourceType: "Bundle",
    type,
    entry: entries.map((e) => ({
      ...(e.fullUrl ? { fullUrl: e.fullUrl } : {}),
      resource: e.resource,
      request: {
        method: e.method ?? "POST",
        url: e.url ?? (e.resource.resourceType as string),
        ...(e.ifMatch ? { ifMatch: e.ifMatch } : {}),
        ...(e.ifNoneExist ? { ifNoneExist: e.ifNoneExist } : {}),
      },
    })),
  };
}

const statuses = (r: APIGatewayProxyResult) =>
  (json(r).entry as { response: { status: string } }[]).map((e) => e.response.status);

describe("member registry against moto (DynamoDB)", () => {
  let handler: Handler;

  before(async function () {
    this.timeout(60_000);
    await startMoto();
    await createRegistryTable("hoth-test", TABLE);
    const secret = `hoth-test/app-members-${Date.now()}`;
    await new SecretsManagerClient({}).send(
      new CreateSecretCommand({ Name: secret, SecretString: "{}" }),
    );
    ({ handler } = loadHandler<{ handler: Handler }>("handlers/app.ts", {
      APP_SECRET_ID: secret,
      STATE_MACHINE_ARN: "arn:aws:states:us-east-1:123456789012:stateMachine:unused",
      LAKE_BUCKET: "unused",
      REGISTRY_TABLE: TABLE,
      UPLOAD_KEY_ARN: "arn:aws:kms:us-east-1:123456789012:key/unused",
      UPLOAD_MAX_BYTES: "1048576",
    }));
  });

  beforeEach(() => {
    orgs += 1;
    ORG = `org-${orgs}`;
  });

  /** Scopes for the requests `act` makes (post and get use them). */
  let SCOPES: string | undefined;
  const withScopes = async <T>(scopes: string, act: () => Promise<T>): Promise<T> => {
    SCOPES = scopes;
    try {
      return await act();
    } finally {
      SCOPES = undefined;
    }
  };
  const post = (body: unknown, opts: Parameters<typeof request>[2] = {}) =>
    handler(request("POST", "/members", { body, scopes: SCOPES, ...opts }), lambdaContext());
  const get = (p: string, opts: Parameters<typeof request>[2] = {}) =>
    handler(request("GET", p, { scopes: SCOPES, ...opts }), lambdaContext());

  it("registers a Patient: 201, a server id, meta, and its head, first version and identifier in one commit", async () => {
    // Act
    const { result: res, output } = await captureOutput(() =>
      post({ ...patient("MBR-REG-1"), id: "client-chosen" }),
    );
    // Assess
    assert.equal(res.statusCode, 201);
    const body = json(res);
    assert.match(body.id, /^[0-9a-f-]{36}$/);
    assert.notEqual(body.id, "client-chosen");
    assert.equal(res.headers?.Location, `/members/${body.id}`);
    assert.equal(res.headers?.ETag, 'W/"1"');
    assert.equal(body.meta.versionId, "1");
    assert.match(body.meta.lastUpdated, /^\d{4}-\d\d-\d\dT/);
    const all = await items();
    assert.equal(all.length, 3);
    assert.deepEqual(
      all.map((i) => i.split(" ")[0]),
      ["H", "I", "V"],
    );
    assert.ok(
      all.includes(`H Patient/${body.id}`) ||
        all.includes(`H  Patient/${body.id}`) ||
        all.some((i) => i.endsWith(`Patient/${body.id}`)),
    );
    assert.ok(!all.join(" ").includes("MBR-REG-1"), "identifiers are hashed in item keys");
    assert.ok(
      !output.includes("Doe") && !output.includes("MBR-REG-1"),
      "no patient data in the logs",
    );
  });

  it("returns the latest version to its organisation only", async () => {
    const created = json(await post(patient()));
    const own = await get(`/members/${created.id}`);
    const other = await get(`/members/${created.id}`, { org: "globex" });
    const unknown = await get("/members/no-such-member");
    assert.equal(own.statusCode, 200);
    assert.deepEqual(json(own), created);
    assert.equal(own.headers?.ETag, 'W/"1"');
    for (const r of [other, unknown]) {
      assert.equal(r.statusCode, 404);
      assert.equal(json(r).issue[0].code, "not-found");
    }
  });

  it("registers a transaction of a Patient and its Coverage, rewriting the bundle-local reference", async () => {
    const tx = bundle("transaction", [
      { fullUrl: "urn:uuid:11111111-1111-4111-8111-111111111111", resource: patient() },
      { resource: coverage() },
    ]);
    const res = await post(tx);
    assert.equal(res.statusCode, 200);
    const body = json(res);
    assert.equal(body.type, "transaction-response");
    assert.deepEqual(statuses(res), ["201 Created", "201 Created"]);
    const [patientLocation, coverageLocation] = body.entry.map(
      (e: { response: { location: string } }) => e.response.location,
    );
    assert.match(patientLocation, /^Patient\/[0-9a-f-]{36}\/_history\/1$/);
    assert.match(coverageLocation, /^Coverage\/[0-9a-f-]{36}\/_history\/1$/);
    // head + version of each, the Patient's identifier, the transaction's record
    assert.deepEqual(
      (await items()).map((i) => i.split(" ")[0]),
      ["H", "H", "I", "T", "V", "V"],
    );
  });

  it("refuses a whole transaction when one entry is invalid, writing nothing", async () => {
    const incomplete = patient();
    delete incomplete.birthDate;
    const res = await post(
      bundle("transaction", [
        { fullUrl: "urn:uuid:22222222-2222-4222-8222-222222222222", resource: patient() },
        { resource: incomplete },
      ]),
    );
    assert.equal(res.statusCode, 422);
    assert.deepEqual(issues(res), [
      ["business-rule", "A member needs a birth date", "Bundle.entry[1].resource.birthDate"],
    ]);
    assert.deepEqual(await items(), []);
  });

  it("answers a batch entry by entry, registering the valid ones and refusing what depends on a refused one", async () => {
    const invalid = { ...patient(), gender: "robot" };
    const res = await post(
      bundle("batch", [
        { resource: patient() },
        { fullUrl: "urn:uuid:33333333-3333-4333-8333-333333333333", resource: invalid },
        {
          resource: {
            ...coverage(),
            beneficiary: { reference: "urn:uuid:33333333-3333-4333-8333-333333333333" },
          },
        },
      ]),
    );
    assert.equal(res.statusCode, 200);
    const entries = json(res).entry as {
      response: { status: string; outcome?: { issue: { expression: string[] }[] } };
    }[];
    assert.deepEqual(statuses(res), [
      "201 Created",
      "422 Unprocessable Entity",
      "422 Unprocessable Entity",
    ]);
    assert.deepEqual(entries[1].response.outcome?.issue[0].expression, [
      "Bundle.entry[1].resource.gender",
    ]);
    assert.deepEqual(entries[2].response.outcome?.issue[0].expression, [
      "Bundle.entry[2].resource.beneficiary.reference",
    ]);
    assert.equal((await items()).filter((i) => i.startsWith("H ")).length, 1);
  });

  it("makes a PUT its next version, with vread of each version and a history Bundle newest first", async () => {
    const created = json(await post(patient("MBR-HIST")));
    const res = await post(
      bundle("batch", [
        {
          resource: { ...patient("MBR-HIST"), id: created.id, gender: "other" },
          method: "PUT",
          url: `Patient/${created.id}`,
        },
      ]),
    );
    assert.deepEqual(statuses(res), ["200 OK"]);
    assert.equal(json(res).entry[0].response.location, `Patient/${created.id}/_history/2`);
    const latest = await get(`/members/${created.id}`);
    assert.equal(json(latest).meta.versionId, "2");
    assert.equal(json(latest).gender, "other");
    const v1 = await get(`/members/${created.id}/_history/1`);
    assert.equal(v1.statusCode, 200);
    assert.deepEqual(json(v1), created);
    assert.equal(v1.headers?.ETag, 'W/"1"');
    assert.equal((await get(`/members/${created.id}/_history/3`)).statusCode, 404);
    assert.equal(
      (await get(`/members/${created.id}/_history/1`, { org: "globex" })).statusCode,
      404,
    );
    const history = json(await get(`/members/${created.id}/_history`));
    assert.equal(history.type, "history");
    assert.equal(history.total, 2);
    assert.deepEqual(
      history.entry.map((e: { resource: Json; request: Json; response: Json }) => [
        (e.resource.meta as Json).versionId,
        e.request.method,
        e.response.status,
      ]),
      [
        ["2", "PUT", "200 OK"],
        ["1", "POST", "201 Created"],
      ],
    );
    assert.equal((await get(`/members/${created.id}/_history`, { org: "globex" })).statusCode, 404);
  });

  it("honours ifMatch: the latest version updates, a stale one is 412 and writes nothing", async () => {
    const created = json(await post(patient("MBR-IFM")));
    const put = (etag: string) =>
      post(
        bundle("transaction", [
          {
            resource: { ...patient("MBR-IFM"), id: created.id },
            method: "PUT",
            url: `Patient/${created.id}`,
            ifMatch: etag,
          },
        ]),
      );
    assert.deepEqual(statuses(await put('W/"1"')), ["200 OK"]);
    const before = await items();
    const stale = await put('W/"1"');
    assert.equal(stale.statusCode, 412);
    assert.deepEqual(issues(stale), [
      ["conflict", "The version in If-Match is not the latest version", "Bundle.entry[0].request"],
    ]);
    assert.deepEqual(await items(), before);
  });

  it("refuses a PUT of a resource that is not registered (404): updates never create", async () => {
    const res = await post(
      bundle("transaction", [
        {
          resource: { ...patient(), id: "not-registered" },
          method: "PUT",
          url: "Patient/not-registered",
        },
      ]),
    );
    assert.equal(res.statusCode, 404);
    assert.deepEqual(await items(), []);
  });

  it("ties a member identifier to one Patient per organisation: a second POST is 409, another organisation may register it", async () => {
    const first = await post(patient("MBR-DUP"));
    const again = await post(patient("MBR-DUP"));
    const elsewhere = await post(patient("MBR-DUP"), { org: `${ORG}-other` });
    assert.equal(first.statusCode, 201);
    assert.equal(again.statusCode, 409);
    assert.deepEqual(issues(again), [
      ["conflict", "A member with this identifier is already registered", "Patient.identifier[0]"],
    ]);
    assert.ok(!again.body.includes("MBR-DUP"));
    assert.equal(elsewhere.statusCode, 201);
    assert.equal((await items()).filter((i) => i.startsWith("H ")).length, 1);
  });

  it("moves identifier ownership with an update: a released identifier can be registered again", async () => {
    const created = json(await post(patient("MBR-OLD")));
    const moved = await post(
      bundle("transaction", [
        {
          resource: { ...patient("MBR-NEW"), id: created.id },
          method: "PUT",
          url: `Patient/${created.id}`,
        },
      ]),
    );
    assert.deepEqual(statuses(moved), ["200 OK"]);
    assert.equal((await post(patient("MBR-NEW"))).statusCode, 409);
    assert.equal((await post(patient("MBR-OLD"))).statusCode, 201);
  });

  it("creates conditionally: 200 with the existing member when the identifier matches, 201 when none, 412 for other criteria", async () => {
    const system = "https://example-health.org/member-id";
    const created = json(await post(patient("MBR-COND")));
    const match = await post(patient("MBR-COND"), {
      headers: { "If-None-Exist": `identifier=${system}|MBR-COND` },
    });
    assert.equal(match.statusCode, 200);
    assert.equal(json(match).id, created.id);
    const none = await post(patient("MBR-COND-2"), {
      headers: { "If-None-Exist": `identifier=${system}|MBR-COND-2` },
    });
    assert.equal(none.statusCode, 201);
    for (const criteria of ["name=Doe", "identifier=MBR-COND", `identifier=${system}|x&name=y`]) {
      const res = await post(patient(), { headers: { "If-None-Exist": criteria } });
      assert.equal(res.statusCode, 412, criteria);
    }
    // Another organisation's member never matches.
    const other = await post(patient("MBR-COND"), {
      org: `${ORG}-other`,
      headers: { "If-None-Exist": `identifier=${system}|MBR-COND` },
    });
    assert.equal(other.statusCode, 201);
    assert.notEqual(json(other).id, created.id);
    // In a Bundle: the matched entry answers 200 and its fullUrl resolves to the existing member.
    const tx = await post(
      bundle("transaction", [
        {
          fullUrl: "urn:uuid:66666666-6666-4666-8666-666666666666",
          resource: patient("MBR-COND"),
          ifNoneExist: `identifier=${system}|MBR-COND`,
        },
        {
          resource: {
            ...coverage(),
            beneficiary: { reference: "urn:uuid:66666666-6666-4666-8666-666666666666" },
          },
        },
      ]),
    );
    assert.deepEqual(statuses(tx), ["200 OK", "201 Created"]);
    assert.equal(json(tx).entry[0].response.location, `Patient/${created.id}/_history/1`);
  });

  it("searches by identifier: a searchset of the one member, empty for none and for another organisation", async () => {
    const system = "https://example-health.org/member-id";
    const created = json(await post(patient("MBR-SRCH")));
    const hit = json(await get("/members", { query: { identifier: `${system}|MBR-SRCH` } }));
    assert.equal(hit.type, "searchset");
    assert.equal(hit.total, 1);
    assert.equal(hit.entry[0].resource.id, created.id);
    assert.equal(hit.entry[0].search.mode, "match");
    const miss = json(await get("/members", { query: { identifier: `${system}|MBR-NONE` } }));
    assert.deepEqual([miss.total, miss.entry], [0, []]);
    const other = json(
      await get("/members", { org: `${ORG}-x`, query: { identifier: `${system}|MBR-SRCH` } }),
    );
    assert.deepEqual([other.total, other.entry], [0, []]);
    const queries: Record<string, string>[] = [{}, { name: "Doe" }, { identifier: "MBR-SRCH" }];
    for (const query of queries) {
      const res = await get("/members", { query });
      assert.equal(res.statusCode, 400, JSON.stringify(query));
      assert.ok(!res.body.includes("MBR-SRCH") && !res.body.includes("Doe"));
    }
  });

  it(`accepts a transaction of ${MAX_TRANSACTION_ENTRIES} entries and refuses one more, naming the limit`, async () => {
    const entries = (n: number) =>
      bundle(
        "transaction",
        Array.from({ length: n }, () => ({ resource: patient() })),
      );
    const atLimit = await post(entries(MAX_TRANSACTION_ENTRIES));
    assert.equal(atLimit.statusCode, 200);
    assert.equal(statuses(atLimit).length, MAX_TRANSACTION_ENTRIES);
    const over = await post(entries(MAX_TRANSACTION_ENTRIES + 1));
    assert.equal(over.statusCode, 422);
    assert.deepEqual(issues(over), [
      [
        "too-long",
        `A transaction Bundle may have at most ${MAX_TRANSACTION_ENTRIES} entries (one database transaction); split it or send a batch`,
        "Bundle.entry",
      ],
    ]);
    assert.equal((await items()).filter((i) => i.startsWith("H ")).length, MAX_TRANSACTION_ENTRIES);
  });

  it("answers a retried POST with the same Idempotency-Key as the first and writes nothing new; another body is 409", async () => {
    const body = patient();
    const first = await post(body, { key: "member-retry-1" });
    const written = await items();
    const second = await post(body, { key: "member-retry-1" });
    const conflict = await post({ ...body, gender: "male" }, { key: "member-retry-1" });
    assert.equal(first.statusCode, 201);
    assert.deepEqual(second, first);
    assert.deepEqual(await items(), written);
    assert.equal(conflict.statusCode, 409);
    assert.equal(json(conflict).issue[0].code, "conflict");
  });

  it("answers a retried batch with the same Idempotency-Key entry for entry as the first", async () => {
    const b = bundle("batch", [{ resource: patient() }, { resource: patient() }]);
    const first = await post(b, { key: "batch-retry-1" });
    const written = await items();
    const second = await post(b, { key: "batch-retry-1" });
    assert.deepEqual(statuses(first), ["201 Created", "201 Created"]);
    assert.deepEqual(json(second), json(first));
    assert.deepEqual(await items(), written);
  });

  describe("SMART scopes per resource type and interaction", () => {
    const system = "https://example-health.org/member-id";
    const tx = () =>
      bundle("transaction", [
        { fullUrl: "urn:uuid:77777777-7777-4777-8777-777777777777", resource: patient() },
        {
          resource: {
            ...coverage(),
            beneficiary: { reference: "urn:uuid:77777777-7777-4777-8777-777777777777" },
          },
        },
      ]);
    const cases: [string, string, () => Promise<APIGatewayProxyResult>, number, string?][] = [
      [
        "v2: a transaction with a Coverage, Patient only",
        "system/Patient.cruds",
        () => post(tx()),
        403,
        "system/Coverage.c",
      ],
      [
        "v1: a transaction with a Coverage, Patient only",
        "system/Patient.write system/Patient.read",
        () => post(tx()),
        403,
        "system/Coverage.c",
      ],
      ["v2 wildcard: a transaction", "system/*.c", () => post(tx()), 200],
      ["v1 wildcard: a transaction", "system/*.write", () => post(tx()), 200],
      ["v2: both types", "system/Patient.c system/Coverage.c", () => post(tx()), 200],
      [
        "user/ scopes grant nothing",
        "user/*.cruds",
        () => post(patient()),
        403,
        "system/Patient.c",
      ],
      [
        "a conditional create needs search too",
        "system/Patient.c",
        () => post(patient(), { headers: { "If-None-Exist": `identifier=${system}|x` } }),
        403,
        "system/Patient.s",
      ],
      [
        "a conditional create with c and s",
        "system/Patient.cs",
        () => post(patient(), { headers: { "If-None-Exist": `identifier=${system}|x` } }),
        201,
      ],
      [
        "read with s only",
        "system/Patient.s",
        () => get("/members/some-id"),
        403,
        "system/Patient.r",
      ],
      [
        "vread with s only",
        "system/Patient.s",
        () => get("/members/some-id/_history/1"),
        403,
        "system/Patient.r",
      ],
      [
        "history with c only",
        "system/Patient.c",
        () => get("/members/some-id/_history"),
        403,
        "system/Patient.r",
      ],
      [
        "search with r only",
        "system/Patient.r",
        () => get("/members", { query: { identifier: `${system}|x` } }),
        403,
        "system/Patient.s",
      ],
      [
        "search with v1 read",
        "system/Patient.read",
        () => get("/members", { query: { identifier: `${system}|x` } }),
        200,
      ],
      ["read with v1 read", "system/Patient.read", () => get("/members/some-id"), 404],
    ];
    for (const [what, scopes, act, status, needed] of cases) {
      it(`${what}: ${status}`, async () => {
        const res = await withScopes(scopes, act);
        assert.equal(res.statusCode, status, res.body);
        if (needed) {
          assert.equal(json(res).issue[0].code, "forbidden");
          assert.ok(
            json(res).issue[0].diagnostics.includes(needed),
            json(res).issue[0].diagnostics,
          );
          assert.deepEqual(await items(), []);
        }
      });
    }

    it("refuses in a batch only the entry the scopes do not grant", async () => {
      const res = await withScopes("system/Patient.c", () =>
        post(
          bundle("batch", [
            { resource: patient() },
            { resource: { ...coverage(), beneficiary: { reference: "Patient/x" } } },
          ]),
        ),
      );
      assert.deepEqual(statuses(res), ["201 Created", "403 Forbidden"]);
      assert.deepEqual(json(res).entry[1].response.outcome.issue[0].expression, [
        "Bundle.entry[1]",
      ]);
    });

    it("refuses a PUT without the update scope", async () => {
      const created = json(await post(patient("MBR-SCOPE-PUT")));
      const res = await withScopes("system/Patient.cr", () =>
        post(
          bundle("transaction", [
            {
              resource: { ...patient("MBR-SCOPE-PUT"), id: created.id },
              method: "PUT",
              url: `Patient/${created.id}`,
            },
          ]),
        ),
      );
      assert.equal(res.statusCode, 403);
      assert.ok(json(res).issue[0].diagnostics.includes("system/Patient.u"));
    });
  });

  it("answers 50 concurrent POSTs with one Idempotency-Key with one member, the same answer for all", async () => {
    const body = patient();
    const answers = await Promise.all(
      Array.from({ length: 50 }, () => post(body, { key: "same-key-50" })),
    );
    assert.deepEqual([...new Set(answers.map((a) => a.statusCode))], [201]);
    assert.equal(new Set(answers.map((a) => json(a).id)).size, 1);
    assert.equal((await items()).filter((i) => i.startsWith("H ")).length, 1);
  });

  it("answers 50 concurrent POSTs of one identifier without a key with exactly one 201 and 49 409", async () => {
    const answers = await Promise.all(Array.from({ length: 50 }, () => post(patient("MBR-RACE"))));
    const codes = answers.map((a) => a.statusCode).sort();
    assert.deepEqual(
      [codes.filter((c) => c === 201).length, codes.filter((c) => c === 409).length],
      [1, 49],
    );
    assert.equal((await items()).filter((i) => i.startsWith("H ")).length, 1);
  });

  it("gives 20 concurrent PUTs of one member the versions 2..21, each once", async () => {
    const created = json(await post(patient("MBR-PUT20")));
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        post(
          bundle("transaction", [
            {
              resource: { ...patient("MBR-PUT20"), id: created.id, active: i % 2 === 0 },
              method: "PUT",
              url: `Patient/${created.id}`,
            },
          ]),
        ),
      ),
    );
    const versions = answers
      .map((a) => {
        assert.equal(a.statusCode, 200, a.body);
        return Number(json(a).entry[0].response.etag.slice(3, -1));
      })
      .sort((a, b) => a - b);
    assert.deepEqual(
      versions,
      Array.from({ length: 20 }, (_, i) => i + 2),
    );
    const history = json(await get(`/members/${created.id}/_history`));
    assert.equal(history.total, 21);
    assert.equal(history.entry.length, 21);
  });

  const refusals: [
    string,
    () => APIGatewayProxyEvent,
    number,
    [string, string, string | undefined][],
  ][] = [
    [
      "invalid JSON",
      () => request("POST", "/members", { raw: "{not json" }),
      400,
      [["structure", "The body is not valid JSON", "$this"]],
    ],
    [
      "a content type that is not FHIR JSON",
      () => request("POST", "/members", { body: patient(), contentType: "text/plain" }),
      415,
      [
        [
          "not-supported",
          "Content-Type must be application/fhir+json or application/json",
          undefined,
        ],
      ],
    ],
    [
      "a body over 1 MB",
      () =>
        request("POST", "/members", {
          body: { ...patient(), text: { status: "generated", div: "x".repeat(1_100_000) } },
        }),
      413,
      [["too-long", "The body is larger than 1 MB", undefined]],
    ],
    [
      "an element FHIR does not define",
      () => request("POST", "/members", { body: { ...patient(), favouriteColour: "blue" } }),
      422,
      [
        [
          "structure",
          "Unknown element: not defined for this type in FHIR R4",
          "Patient.favouriteColour",
        ],
      ],
    ],
    [
      "a malformed birth date and a wrong gender",
      () =>
        request("POST", "/members", {
          body: { ...patient(), birthDate: "1974-13-45", gender: "m" },
        }),
      422,
      [
        [
          "code-invalid",
          "The code is not in the value set this element requires",
          "Patient.gender",
        ],
        ["value", "Not a valid date", "Patient.birthDate"],
      ],
    ],
    [
      "a Patient without the registration fields",
      () => request("POST", "/members", { body: { resourceType: "Patient", active: true } }),
      422,
      [
        ["business-rule", "A member needs an identifier with a value", "Patient.identifier"],
        ["business-rule", "A member needs a name", "Patient.name"],
        ["business-rule", "A member needs a gender", "Patient.gender"],
        ["business-rule", "A member needs a birth date", "Patient.birthDate"],
      ],
    ],
    [
      "a Coverage on its own",
      () => request("POST", "/members", { body: coverage() }),
      422,
      [
        [
          "not-supported",
          "Send a Patient, or a batch or transaction Bundle of Patient and Coverage",
          "resourceType",
        ],
      ],
    ],
    [
      "a collection Bundle",
      () => request("POST", "/members", { body: bundle("collection", [{ resource: patient() }]) }),
      422,
      [
        ["business-rule", "A registration Bundle has type batch or transaction", "Bundle.type"],
        [
          "invariant",
          "Invariant bdl-3 failed: entry.request mandatory for batch/transaction/history, otherwise prohibited",
          "Bundle",
        ],
      ],
    ],
    [
      // Found by the OpenAPI fuzz run (test/fuzz.test.ts): it used to answer 500.
      "a Bundle entry that is not an object",
      () =>
        request("POST", "/members", {
          body: { resourceType: "Bundle", type: "transaction", entry: ["AAA", null] },
        }),
      422,
      [
        ["structure", "This element must be a JSON object", "Bundle.entry[0]"],
        ["structure", "null is not a FHIR value", "Bundle.entry[1]"],
        [
          "invariant",
          "Invariant bdl-3 failed: entry.request mandatory for batch/transaction/history, otherwise prohibited",
          "Bundle",
        ],
      ],
    ],
    [
      "a reference to no entry of the Bundle",
      () =>
        request("POST", "/members", {
          body: bundle("transaction", [
            {
              resource: {
                ...coverage(),
                beneficiary: { reference: "urn:uuid:44444444-4444-4444-8444-444444444444" },
              },
            },
          ]),
        }),
      422,
      [
        [
          "invalid",
          "The reference names no entry of this Bundle",
          "Bundle.entry[0].resource.beneficiary.reference",
        ],
      ],
    ],
    [
      "a reference to a member of another organisation",
      () =>
        request("POST", "/members", {
          body: bundle("transaction", [
            { resource: { ...coverage(), beneficiary: { reference: "Patient/not-ours" } } },
          ]),
        }),
      422,
      [
        [
          "invalid",
          "The referenced Patient is not registered for this organisation",
          "Bundle.entry[0].resource.beneficiary.reference",
        ],
      ],
    ],
    [
      "a token without an organisation",
      () => request("POST", "/members", { body: patient(), org: null }),
      403,
      [["forbidden", "The access token names no organisation", undefined]],
    ],
  ];
  for (const [what, event, status, expected] of refusals) {
    it(`answers ${what} with ${status} and writes nothing`, async () => {
      const res = await handler(event(), lambdaContext());
      assert.equal(res.statusCode, status);
      assert.equal(res.headers?.["Content-Type"], "application/fhir+json");
      assert.deepEqual(issues(res), expected);
      assert.deepEqual(await items(), []);
    });
  }

  it("answers every invalid mutant of the FHIR corpus with its status and issue expressions, writing nothing", async () => {
    // Prepare: test/fixtures/fhir-corpus (see test/support/fhirCorpus.ts), the 400
    // mutants (duplicate keys, depth) and the 422 ones alike.
    const cases = mutants();
    assert.ok(cases.length >= 120);
    assert.ok(cases.some((m) => m.status === 400));
    const before = await items();
    const wrong: string[] = [];
    for (const m of cases) {
      // Act
      const res = await handler(request("POST", "/members", { raw: m.text }), lambdaContext());
      // Assess
      const issued = (json(res).issue ?? []) as { expression?: string[] }[];
      const got = [...new Set(issued.flatMap((x) => x.expression ?? []))].sort();
      if (res.statusCode !== m.status || JSON.stringify(got) !== JSON.stringify(m.expression)) {
        wrong.push(`${m.file}: ${res.statusCode} ${JSON.stringify(got)}`);
      }
    }
    assert.deepEqual(wrong, []);
    assert.deepEqual(await items(), before);
  });

  it("accepts every official HL7 R4 Patient example that has the registration fields, and names what the others lack", async () => {
    const files = fs.readdirSync(EXAMPLES).filter((f) => f.startsWith("Patient-"));
    assert.equal(files.length, 22);
    const outcomes: string[] = [];
    for (const file of files) {
      const example = JSON.parse(fs.readFileSync(path.join(EXAMPLES, file), "utf8")) as Json;
      const lacks = [
        ...((example.identifier as Json[] | undefined)?.some((i) => i.value)
          ? []
          : ["Patient.identifier"]),
        ...(example.name ? [] : ["Patient.name"]),
        ...(example.gender ? [] : ["Patient.gender"]),
        ...(example.birthDate ? [] : ["Patient.birthDate"]),
      ];
      // Several examples share identifiers: each registers for an organisation of its own.
      const res = await post(example, {
        org: `${ORG}-${file.replace(/[^a-z0-9]/gi, "").toLowerCase()}`,
      });
      if (lacks.length === 0) {
        assert.equal(res.statusCode, 201, `${file}: ${res.body}`);
        outcomes.push(`${file}: accepted`);
      } else {
        assert.equal(res.statusCode, 422, file);
        assert.deepEqual(
          issues(res).map((i) => [i[0], i[2]]),
          lacks.map((l) => ["business-rule", l]),
          file,
        );
        outcomes.push(`${file}: refused`);
      }
    }
    assert.ok(outcomes.some((o) => o.endsWith("accepted")));
    assert.ok(outcomes.some((o) => o.endsWith("refused")));
  });

  it("accepts every patient of the Synthea sample export", async function () {
    if (!fs.existsSync(SYNTHEA)) {
      console.log(`      skipped: ${SYNTHEA} is not present on this machine`);
      this.skip();
    }
    const patients = fs
      .readFileSync(SYNTHEA, "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    assert.ok(patients.length > 0);
    for (const [i, p] of patients.entries()) {
      const res = await post(p);
      assert.equal(res.statusCode, 201, `patient ${i}: ${res.statusCode === 201 ? "" : res.body}`);
    }
  });
});
