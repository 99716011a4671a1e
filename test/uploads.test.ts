import * as assert from "node:assert/strict";
import { CreateBucketCommand, GetObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { CreateSecretCommand, SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from "aws-lambda";
import * as fc from "fast-check";
import { sanitiseFileName } from "../handlers/routes/uploads";
import { lambdaContext, loadHandler, proxyEvent } from "./support/handlers";
import { startMoto } from "./support/moto";
import { decodePolicy, evaluatePost, type PostAttempt } from "./support/postPolicy";

type Handler = (event: APIGatewayProxyEvent, context: Context) => Promise<APIGatewayProxyResult>;

const LAKE = `hoth-test-uploads-${Date.now()}`;
const KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/hoth-test-lake-key";
const MAX = 1_048_576;

function request(
  opts: {
    body?: unknown;
    org?: string;
    scopes?: string;
    contentType?: string;
    rawBody?: string;
  } = {},
): APIGatewayProxyEvent {
  const base = proxyEvent("health");
  const authorizer = {
    ...base.requestContext.authorizer,
    org: opts.org ?? "acme",
    scopes: opts.scopes ?? "system/Binary.c",
  };
  return {
    ...base,
    httpMethod: "POST",
    path: "/uploads",
    resource: "/uploads",
    headers: { ...base.headers, "Content-Type": opts.contentType ?? "application/json" },
    body: opts.rawBody ?? (opts.body === undefined ? null : JSON.stringify(opts.body)),
    requestContext: { ...base.requestContext, authorizer },
  };
}

const body = (r: APIGatewayProxyResult) => JSON.parse(r.body);
const diagnostics = (r: APIGatewayProxyResult) => body(r).issue[0].diagnostics as string;
const FILE = "id,name\n1,Lee\n";
const size = Buffer.byteLength(FILE);

/** Posts a form the way a browser or curl does: fields first, the file last (not the SDK). */
async function post(url: string, fields: Record<string, string>, content: string) {
  const form = new FormData();
  for (const [k, v] of Object.entries(fields)) form.append(k, v);
  form.append("file", new Blob([content], { type: fields["Content-Type"] }), "members.csv");
  return fetch(url, { method: "POST", body: form });
}

describe("POST /uploads (pre-signed S3 POST) against moto", () => {
  let handler: Handler;
  let s3: S3Client;

  before(async function () {
    this.timeout(60_000);
    await startMoto();
    s3 = new S3Client({ forcePathStyle: true });
    await s3.send(new CreateBucketCommand({ Bucket: LAKE }));
    const secret = `hoth-test/app-uploads-${Date.now()}`;
    await new SecretsManagerClient({}).send(
      new CreateSecretCommand({ Name: secret, SecretString: "{}" }),
    );
    ({ handler } = loadHandler<{ handler: Handler }>("handlers/app.ts", {
      APP_SECRET_ID: secret,
      STATE_MACHINE_ARN: "arn:aws:states:us-east-1:123456789012:stateMachine:unused",
      LAKE_BUCKET: LAKE,
      REGISTRY_TABLE: "unused",
      UPLOAD_KEY_ARN: KEY_ARN,
      UPLOAD_MAX_BYTES: String(MAX),
      UPLOAD_EXPIRES_SECONDS: "900",
    }));
  });

  const create = (
    b: unknown = { fileName: "members.csv", contentType: "text/csv", size },
    o = {},
  ) => handler(request({ body: b, ...o }), lambdaContext());

  it("answers 201 with a form whose policy pins bucket, key, exact size, type and SSE-KMS for 15 minutes", async () => {
    // Act
    const before = Date.now();
    const res = await create();
    // Assess
    assert.equal(res.statusCode, 201);
    const form = body(res);
    assert.match(form.id, /^u-[0-9a-f]{32}$/);
    const key = `landing/acme/uploads/${form.id}/members.csv`;
    assert.deepEqual(
      [form.key, form.size, form.inputPrefix, form.url],
      [key, size, `uploads/${form.id}/`, `${process.env.AWS_ENDPOINT_URL}/${LAKE}`],
    );
    const policy = decodePolicy(form.fields.Policy);
    const credential = form.fields["X-Amz-Credential"];
    assert.deepEqual(policy.conditions, [
      ["content-length-range", size, size],
      { "Content-Type": "text/csv" },
      { "x-amz-server-side-encryption": "aws:kms" },
      { "x-amz-server-side-encryption-aws-kms-key-id": KEY_ARN },
      { bucket: LAKE },
      { "X-Amz-Algorithm": "AWS4-HMAC-SHA256" },
      { "X-Amz-Credential": credential },
      { "X-Amz-Date": form.fields["X-Amz-Date"] },
      { key },
    ]);
    const expires = Date.parse(policy.expiration);
    assert.ok(expires - before <= 900_000 + 1000 && expires - before >= 899_000);
    assert.ok(Math.abs(Date.parse(form.expiresAt) - expires) < 1000);
    assert.deepEqual(Object.keys(form.fields).sort(), [
      "Content-Type",
      "Policy",
      "X-Amz-Algorithm",
      "X-Amz-Credential",
      "X-Amz-Date",
      "X-Amz-Signature",
      "bucket",
      "key",
      "x-amz-server-side-encryption",
      "x-amz-server-side-encryption-aws-kms-key-id",
    ]);
  });

  it("stores the file under the pinned key when posted with fetch and FormData, and S3's rules admit it", async () => {
    // Prepare
    const form = body(await create());
    // Act
    const res = await post(form.url, form.fields, FILE);
    // Assess: moto stored it; AWS's documented checks pass for this exact form
    assert.equal(res.status, 204);
    const got = await s3.send(new GetObjectCommand({ Bucket: LAKE, Key: form.key }));
    assert.equal(await got.Body?.transformToString(), FILE);
    const attempt: PostAttempt = {
      fields: form.fields,
      bucket: LAKE,
      fileSize: size,
      now: new Date(),
      secretAccessKey: "testing",
    };
    assert.deepEqual(evaluatePost(attempt), { ok: true });
  });

  describe("what S3 refuses (AWS's documented POST policy semantics)", () => {
    let form: { fields: Record<string, string>; id: string };
    let attempt: PostAttempt;
    before(async () => {
      form = body(await create());
      attempt = {
        fields: form.fields,
        bucket: LAKE,
        fileSize: size,
        now: new Date(),
        secretAccessKey: "testing",
      };
    });
    const refused = (change: Partial<PostAttempt>, reason: string) =>
      assert.deepEqual(evaluatePost({ ...attempt, ...change }), { ok: false, reason });

    it("refuses a file larger or smaller than declared", () => {
      refused({ fileSize: size + 1 }, "content-length-range");
      refused({ fileSize: size - 1 }, "content-length-range");
      refused({ fileSize: MAX + 1 }, "content-length-range");
    });

    it("refuses the form once it has expired", () => {
      refused({ now: new Date(Date.now() + 900_000 + 1000) }, "policy expired");
    });

    it("refuses a key outside the pinned one: another organisation, another upload, another name", () => {
      for (const key of [
        `landing/globex/uploads/${form.id}/members.csv`,
        `landing/acme/uploads/u-${"0".repeat(32)}/members.csv`,
        `landing/acme/uploads/${form.id}/other.csv`,
        `landing/acme/extracts/members.csv`,
        `curated/patient/members.csv`,
      ]) {
        refused({ fields: { ...form.fields, key } }, "condition failed: key");
      }
    });

    it("refuses an upload without SSE-KMS with the stack key, another bucket, or another type", () => {
      refused(
        { fields: { ...form.fields, "x-amz-server-side-encryption": "AES256" } },
        "condition failed: x-amz-server-side-encryption",
      );
      refused(
        {
          fields: {
            ...form.fields,
            "x-amz-server-side-encryption-aws-kms-key-id": `${KEY_ARN}-other`,
          },
        },
        "condition failed: x-amz-server-side-encryption-aws-kms-key-id",
      );
      refused({ bucket: "another-bucket" }, "condition failed: bucket");
      refused(
        { fields: { ...form.fields, "Content-Type": "text/html" } },
        "condition failed: content-type",
      );
    });

    it("refuses a widened policy (the signature no longer matches) and a field the policy does not name", () => {
      const policy = decodePolicy(form.fields.Policy);
      const widened = {
        ...policy,
        conditions: policy.conditions.map((c) =>
          Array.isArray(c) && c[0] === "content-length-range" ? [c[0], 0, 5 * 1024 ** 3] : c,
        ),
      };
      refused(
        {
          fields: {
            ...form.fields,
            Policy: Buffer.from(JSON.stringify(widened)).toString("base64"),
          },
        },
        "signature mismatch",
      );
      refused({ fields: { ...form.fields, acl: "public-read" } }, "field not in policy: acl");
    });

    it("moto does not enforce any of it (why the checks above stand in for S3)", async () => {
      // A canary: if moto starts enforcing POST policies, this fails and the
      // end-to-end refusals can be tested against the emulator itself.
      const res = await post(
        `${process.env.AWS_ENDPOINT_URL}/${LAKE}`,
        { ...form.fields, key: `landing/globex/uploads/${form.id}/x.csv` },
        `${FILE}extra`,
      );
      assert.equal(res.status, 204);
    });
  });

  it("refuses (422) to migrate an upload whose file is not in the caller's landing area: another organisation's, or not sent", async () => {
    // Prepare: acme's upload, sent; and one never sent
    const sent = body(await create());
    assert.equal((await post(sent.url, sent.fields, FILE)).status, 204);
    const unsent = body(await create());
    const migrate = (org: string, inputPrefix: string) =>
      handler(
        {
          ...request({ org, body: { source: "legacy", inputPrefix }, scopes: "system/Task.c" }),
          path: "/migrations",
          resource: "/migrations",
          headers: {
            "Content-Type": "application/json",
            "Idempotency-Key": `k-${org}-${inputPrefix}`,
          },
        },
        lambdaContext(),
      );
    // Act
    const stolen = await migrate("globex", sent.inputPrefix);
    const early = await migrate("acme", unsent.inputPrefix);
    // Assess: refused before any run (no state machine is even reachable here)
    for (const res of [stolen, early]) {
      assert.equal(res.statusCode, 422);
      assert.equal(body(res).issue[0].code, "not-found");
      assert.equal(
        diagnostics(res),
        "No uploaded file under this inputPrefix in your landing area: upload it with the form POST /uploads returned first",
      );
    }
  });

  it("takes the organisation from the token only: the same body from globex lands under globex", async () => {
    const res = await create(
      { fileName: "members.csv", contentType: "text/csv", size },
      { org: "globex" },
    );
    assert.equal(res.statusCode, 201);
    assert.match(body(res).key, /^landing\/globex\/uploads\/u-[0-9a-f]{32}\/members\.csv$/);
  });

  it("sanitises the file name: the last segment, safe characters only", async () => {
    const res = await create({
      fileName: "../../curated/x/Members 2026 (final).csv",
      contentType: "text/csv",
      size,
    });
    assert.equal(res.statusCode, 201);
    assert.match(
      body(res).key,
      /^landing\/acme\/uploads\/u-[0-9a-f]{32}\/Members_2026__final_\.csv$/,
    );
  });

  it("answers 400 naming the field for a size above the maximum, a bad size, type or name, and unknown keys", async () => {
    const cases: [unknown, string][] = [
      [
        { fileName: "a.csv", contentType: "text/csv", size: MAX + 1 },
        `size must be at most ${MAX} bytes`,
      ],
      [{ fileName: "a.csv", contentType: "text/csv", size: 0 }, "size must be at least 1 byte"],
      [
        { fileName: "a.csv", contentType: "text/csv", size: 1.5 },
        "size must be a whole number of bytes",
      ],
      [
        { fileName: "a.csv", contentType: "text/csv", size: "10" },
        "size must be a number of bytes",
      ],
      [
        { fileName: "a.csv", contentType: "text/csv; x", size: 10 },
        "contentType must be a media type such as text/csv",
      ],
      [
        { fileName: "../..", contentType: "text/csv", size: 10 },
        "fileName must contain a letter or digit (it becomes the object's name)",
      ],
      [
        { fileName: "a.csv", contentType: "text/csv", size: 10, org: "globex" },
        "The body may hold only fileName, contentType and size",
      ],
      [[], "The body must be an object with fileName, contentType and size"],
    ];
    for (const [b, message] of cases) {
      const res = await create(b);
      assert.equal(res.statusCode, 400, JSON.stringify(b));
      assert.equal(diagnostics(res), message);
    }
  });

  it("answers 415 for a body that is not JSON and 403 without a Binary create scope (v2 or v1)", async () => {
    const json = { fileName: "a.csv", contentType: "text/csv", size: 10 };
    assert.equal((await create(json, { contentType: "text/plain" })).statusCode, 415);
    const denied = await create(json, { scopes: "system/Binary.r system/Task.c" });
    assert.equal(denied.statusCode, 403);
    assert.match(diagnostics(denied), /it needs system\/Binary\.c/);
    assert.equal((await create(json, { scopes: "system/Binary.write" })).statusCode, 201);
    assert.equal((await create(json, { scopes: "system/*.c" })).statusCode, 201);
  });
});

describe("sanitiseFileName", () => {
  it("always yields a plain object name: no separator, no leading dot, at most 128 characters", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 300 }), (name) => {
        const out = sanitiseFileName(name);
        if (out === undefined) return;
        assert.match(out, /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$/);
        assert.match(out, /[A-Za-z0-9]/);
      }),
    );
  });

  it("keeps an ordinary name as it is", () => {
    assert.equal(sanitiseFileName("members-2026_01.ndjson"), "members-2026_01.ndjson");
    assert.equal(sanitiseFileName("C:\\exports\\members.csv"), "members.csv");
    assert.equal(sanitiseFileName(".."), undefined);
  });
});
