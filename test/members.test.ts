import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import {
  CreateBucketCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  S3Client,
} from "@aws-sdk/client-s3";
import { CreateSecretCommand, SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from "aws-lambda";
import { createLogger } from "../handlers/lib/logger";
import { MemberStore } from "../handlers/lib/memberStore";
import { registerMembers } from "../handlers/routes/members";
import { captureOutput, fixture, lambdaContext, loadHandler, proxyEvent } from "./support/handlers";
import { startMoto } from "./support/moto";

type Handler = (event: APIGatewayProxyEvent, context: Context) => Promise<APIGatewayProxyResult>;
type Json = Record<string, unknown>;

const LAKE = `hoth-test-members-${Date.now()}`;
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

const s3 = () => new S3Client({ forcePathStyle: true });
const patient = (): Json => fixture("members/patient.json");
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
  } = {},
): APIGatewayProxyEvent {
  const base = proxyEvent("health");
  const authorizer = { ...base.requestContext.authorizer } as Json;
  if (opts.org === null) delete authorizer.org;
  else authorizer.org = opts.org ?? "acme";
  return {
    ...base,
    httpMethod: method,
    path: urlPath,
    resource: urlPath.startsWith("/members/") ? "/members/{id}" : urlPath,
    headers: {
      ...base.headers,
      "Content-Type": opts.contentType ?? "application/fhir+json",
      ...(opts.key ? { "Idempotency-Key": opts.key } : {}),
    },
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

async function keys(prefix = ""): Promise<string[]> {
  const out = await s3().send(new ListObjectsV2Command({ Bucket: LAKE, Prefix: prefix }));
  return (out.Contents ?? []).map((o) => o.Key as string).sort();
}

async function object(key: string): Promise<string> {
  const out = await s3().send(new GetObjectCommand({ Bucket: LAKE, Key: key }));
  return (await out.Body?.transformToString()) ?? "";
}

function bundle(
  type: string,
  entries: { resource: Json; fullUrl?: string; method?: string; url?: string }[],
): Json {
  return {
    resourceType: "Bundle",
    type,
    entry: entries.map((e) => ({
      ...(e.fullUrl ? { fullUrl: e.fullUrl } : {}),
      resource: e.resource,
      request: { method: e.method ?? "POST", url: e.url ?? (e.resource.resourceType as string) },
    })),
  };
}

describe("member registration against moto (S3)", () => {
  let handler: Handler;

  before(async function () {
    this.timeout(60_000);
    await startMoto();
    await s3().send(new CreateBucketCommand({ Bucket: LAKE }));
    const secret = `hoth-test/app-members-${Date.now()}`;
    await new SecretsManagerClient({}).send(
      new CreateSecretCommand({ Name: secret, SecretString: "{}" }),
    );
    ({ handler } = loadHandler<{ handler: Handler }>("handlers/app.ts", {
      APP_SECRET_ID: secret,
      STATE_MACHINE_ARN: "arn:aws:states:us-east-1:123456789012:stateMachine:unused",
      LAKE_BUCKET: LAKE,
    }));
  });

  const post = (body: unknown, opts: Parameters<typeof request>[2] = {}) =>
    handler(request("POST", "/members", { body, ...opts }), lambdaContext());

  it("registers a Patient: 201, a server id, meta, the landing NDJSON and the registry copy", async () => {
    // Prepare
    const before = await keys();
    // Act
    const { result: res, output } = await captureOutput(() =>
      post({ ...patient(), id: "client-chosen" }),
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
    const added = (await keys()).filter((k) => !before.includes(k));
    assert.equal(added.length, 2);
    const ndjson = added.find((k) => k.endsWith("/Patient.ndjson")) as string;
    assert.match(
      ndjson,
      /^landing\/acme\/members\/\d{4}-\d\d-\d\d\/[0-9a-f-]{36}\/Patient\.ndjson$/,
    );
    const lines = (await object(ndjson))
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    assert.deepEqual(lines, [body]);
    assert.deepEqual(JSON.parse(await object(`registry/acme/Patient/${body.id}.json`)), body);
    assert.ok(!output.includes("Doe"), "no patient name in the logs");
  });

  it("returns the latest registered version to its organisation only", async () => {
    const created = json(await post(patient()));
    const own = await handler(request("GET", `/members/${created.id}`), lambdaContext());
    const other = await handler(
      request("GET", `/members/${created.id}`, { org: "globex" }),
      lambdaContext(),
    );
    const unknown = await handler(request("GET", "/members/no-such-member"), lambdaContext());
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
    assert.deepEqual(
      body.entry.map((e: { response: { status: string } }) => e.response.status),
      ["201 Created", "201 Created"],
    );
    const [patientLocation, coverageLocation] = body.entry.map(
      (e: { response: { location: string } }) => e.response.location,
    );
    assert.match(patientLocation, /^Patient\/[0-9a-f-]{36}\/_history\/1$/);
    const coverageId = coverageLocation.split("/")[1];
    const stored = JSON.parse(await object(`registry/acme/Coverage/${coverageId}.json`));
    assert.equal(stored.beneficiary.reference, patientLocation.split("/_history")[0]);
  });

  it("refuses a whole transaction when one entry is invalid, writing nothing", async () => {
    const before = await keys();
    const incomplete = { ...patient() };
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
    assert.deepEqual(await keys(), before);
  });

  it("answers a batch entry by entry, registering the valid ones and refusing what depends on a refused one", async () => {
    const before = await keys();
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
    assert.deepEqual(
      entries.map((e) => e.response.status),
      ["201 Created", "422 Unprocessable Entity", "422 Unprocessable Entity"],
    );
    assert.deepEqual(entries[1].response.outcome?.issue[0].expression, [
      "Bundle.entry[1].resource.gender",
    ]);
    assert.deepEqual(entries[2].response.outcome?.issue[0].expression, [
      "Bundle.entry[2].resource.beneficiary.reference",
    ]);
    const added = (await keys()).filter((k) => !before.includes(k));
    assert.equal(added.filter((k) => k.startsWith("registry/")).length, 1);
  });

  it("makes a PUT of a registered member its next version", async () => {
    const created = json(await post(patient()));
    const res = await post(
      bundle("batch", [
        { resource: { ...patient(), id: created.id }, method: "PUT", url: `Patient/${created.id}` },
      ]),
    );
    assert.equal(json(res).entry[0].response.status, "200 OK");
    assert.equal(json(res).entry[0].response.location, `Patient/${created.id}/_history/2`);
    const latest = await handler(request("GET", `/members/${created.id}`), lambdaContext());
    assert.equal(json(latest).meta.versionId, "2");
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
      [["structure", "The body is not valid JSON", undefined]],
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
      const before = await keys();
      const res = await handler(event(), lambdaContext());
      assert.equal(res.statusCode, status);
      assert.equal(res.headers?.["Content-Type"], "application/fhir+json");
      assert.deepEqual(issues(res), expected);
      assert.deepEqual(await keys(), before);
    });
  }

  it("answers a retried POST with the same Idempotency-Key as the first and writes nothing new", async () => {
    const first = await post(patient(), { key: "member-retry-1" });
    const written = await keys();
    const second = await post(patient(), { key: "member-retry-1" });
    const conflict = await post({ ...patient(), gender: "male" }, { key: "member-retry-1" });
    assert.equal(first.statusCode, 201);
    assert.deepEqual(second, first);
    assert.deepEqual(await keys(), written);
    assert.equal(conflict.statusCode, 409);
    assert.equal(json(conflict).issue[0].code, "conflict");
  });

  it("leaves nothing half-written when S3 fails in the middle of a transaction (503)", async () => {
    // Prepare: a store whose third PutObject fails
    const client = s3();
    let puts = 0;
    client.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === "PutObjectCommand" && ++puts === 3) {
          throw Object.assign(new Error("We encountered an internal error"), {
            name: "InternalError",
          });
        }
        return next(args);
      },
      { step: "initialize" },
    );
    const route = registerMembers({ store: new MemberStore(client, LAKE) });
    const before = await keys();
    const tx = bundle("transaction", [
      { fullUrl: "urn:uuid:55555555-5555-4555-8555-555555555555", resource: patient() },
      {
        resource: {
          ...coverage(),
          beneficiary: { reference: "urn:uuid:55555555-5555-4555-8555-555555555555" },
        },
      },
      { resource: patient() },
    ]);
    // Act
    const call = route({
      event: request("POST", "/members", { body: tx }),
      params: {},
      correlationId: "c",
      logger: createLogger("test"),
    });
    // Assess
    await assert.rejects(call, (e: Error & { statusCode?: number }) => {
      assert.equal(e.name, "ServiceUnavailableError");
      assert.equal(e.statusCode, 503);
      return true;
    });
    assert.ok(puts >= 3);
    assert.deepEqual(await keys(), before);
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
      const res = await post(example);
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
