import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHmac } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { type AttributeValue, DynamoDBClient, QueryCommand } from "@aws-sdk/client-dynamodb";
import { ListObjectsV2Command, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { GetSecretValueCommand, SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { EXAMPLES } from "../contracts/openapi";
import { generateNdjson } from "../local/bulkSource";
import { fetchToken, LOCAL_CLIENTS } from "../local/okta";
import type { LocalStack } from "../local/stack";
import { localStack } from "./support/localStack";
import { evaluatePost } from "./support/postPolicy";

// biome-ignore lint/suspicious/noExplicitAny: response bodies, checked field by field
type Json = Record<string, any>;
const ROOT = path.join(__dirname, "..");
const PYTHON = path.join(ROOT, ".venv", "bin", "python");

/**
 * The local stack end to end: local Okta -> API Gateway emulator -> the real
 * bundles -> moto, Step Functions running the deployed definition, and the
 * real Glue job scripts on local Spark.
 */
describe("local stack (npm start) end to end", function () {
  this.timeout(240_000);
  let stack: LocalStack;
  let s3: S3Client;
  const [acme, globex] = LOCAL_CLIENTS;
  const call = async (
    method: string,
    urlPath: string,
    opts: { token?: string; clientId?: string; body?: unknown; key?: string } = {},
  ) => {
    const res = await fetch(`${stack.apiUrl}${urlPath}`, {
      method,
      headers: {
        ...(opts.token ? { Authorization: `Bearer ${opts.token}` } : {}),
        ...(opts.clientId ? { "X-Client-Id": opts.clientId } : {}),
        ...(opts.body
          ? {
              "Content-Type": /^\/(migrations|uploads)/.test(urlPath)
                ? "application/json"
                : "application/fhir+json",
            }
          : {}),
        ...(opts.key ? { "Idempotency-Key": opts.key } : {}),
      },
      body: opts.body ? JSON.stringify(opts.body) : undefined,
    });
    return { status: res.status, headers: res.headers, body: (await res.json()) as Json };
  };
  const unique = () => `${Date.now()}-${Math.random().toString(36).slice(2, 8)}`;
  /** A member with an identifier no other registration uses (the registry holds each once). */
  const newPatient = () => ({
    resourceType: "Patient",
    identifier: [{ system: "https://example.org/mrn", value: `LOCAL-${unique()}` }],
    name: [{ family: "Local", given: ["Lee"] }],
    gender: "other",
    birthDate: "1990-01-01",
  });
  const patient = newPatient();
  const transaction = () => ({
    ...EXAMPLES.transaction,
    entry: EXAMPLES.transaction.entry.map((e, i) =>
      i === 0 ? { ...e, resource: { ...e.resource, identifier: newPatient().identifier } } : e,
    ),
  });

  /** Starts a migration and follows it through the API until it leaves RUNNING. */
  async function migrate(token: string, body: unknown, client = acme) {
    const started = await call("POST", "/migrations", {
      token,
      clientId: client.clientId,
      body,
      key: unique(),
    });
    assert.equal(started.status, 202, JSON.stringify(started.body));
    assert.equal(started.headers.get("location"), `/migrations/${started.body.id}`);
    for (;;) {
      const followed = await call("GET", `/migrations/${started.body.id}`, {
        token,
        clientId: client.clientId,
      });
      assert.equal(followed.status, 200);
      if (followed.body.status !== "RUNNING") return followed.body;
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  /** Rows of the curated Parquet files under a prefix, read with pyarrow from moto's S3. */
  function parquet(prefix: string): Json[] {
    const script = `
import io, json, os, sys, boto3, pyarrow.parquet as pq
s3 = boto3.client("s3")
rows = []
for page in s3.get_paginator("list_objects_v2").paginate(Bucket=sys.argv[1], Prefix=sys.argv[2]):
    for o in page.get("Contents", []):
        if o["Key"].endswith(".parquet"):
            body = s3.get_object(Bucket=sys.argv[1], Key=o["Key"])["Body"].read()
            rows += pq.read_table(io.BytesIO(body)).to_pylist()
print(json.dumps(rows, default=str), flush=True)
os._exit(0)  # pyarrow's AWS SDK teardown can abort at interpreter exit`;
    const run = spawnSync(PYTHON, ["-c", script, stack.lakeBucket, prefix], {
      encoding: "utf8",
      env: { ...process.env, AWS_ENDPOINT_URL: stack.motoUrl },
    });
    assert.equal(run.status, 0, run.stderr);
    return JSON.parse(run.stdout) as Json[];
  }

  /** How many resources of a type an organisation has committed in the registry (its heads). */
  async function registryHeads(org: string, type: string): Promise<number> {
    const db = new DynamoDBClient({ endpoint: stack.motoUrl });
    let count = 0;
    let start: Record<string, AttributeValue> | undefined;
    do {
      const page = await db.send(
        new QueryCommand({
          TableName: stack.registryTable,
          KeyConditionExpression: "pk = :pk AND begins_with(sk, :type)",
          ExpressionAttributeValues: { ":pk": { S: `H#${org}` }, ":type": { S: `${type}/` } },
          ConsistentRead: true,
          ExclusiveStartKey: start,
        }),
      );
      count += page.Items?.length ?? 0;
      start = page.LastEvaluatedKey;
    } while (start);
    return count;
  }

  const keys = async (prefix: string) =>
    (
      (await s3.send(new ListObjectsV2Command({ Bucket: stack.lakeBucket, Prefix: prefix })))
        .Contents ?? []
    ).map((o) => o.Key as string);

  before(async () => {
    stack = await localStack();
    s3 = new S3Client({ forcePathStyle: true, endpoint: stack.motoUrl });
  });

  it("serves health and member registration (single and bundle) to a token from the local Okta", async () => {
    const token = await fetchToken(
      stack.tokenUrl,
      acme,
      "system/Patient.cruds system/Coverage.cruds",
    );
    const health = await call("POST", "/health", { token, clientId: acme.clientId });
    assert.equal(health.status, 200);
    assert.equal(health.body.stack, "local-dev");

    const created = await call("POST", "/members", {
      token,
      clientId: acme.clientId,
      body: patient,
    });
    assert.equal(created.status, 201);
    const got = await call("GET", `/members/${created.body.id}`, {
      token,
      clientId: acme.clientId,
    });
    assert.equal(got.status, 200);
    assert.equal(got.body.id, created.body.id);

    const bundle = await call("POST", "/members", {
      token,
      clientId: acme.clientId,
      body: transaction(),
    });
    assert.equal(bundle.status, 200);
    assert.equal(bundle.body.type, "transaction-response");
    assert.deepEqual(
      bundle.body.entry.map((e: Json) => e.response.status),
      ["201 Created", "201 Created"],
    );
  });

  it("runs a legacy migration end to end: Glue on local Spark writes curated Parquet, quarantine and reports", async () => {
    // Prepare: a generated extract of 40 members plus two bad rows
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "hoth-e2e-"));
    const csv = path.join(dir, "members.csv");
    const gen = spawnSync(
      PYTHON,
      [
        "-m",
        "hoth_glue.generate",
        "legacy",
        "--members",
        "40",
        "--seed",
        "11",
        "--out",
        csv,
        "--bad-fraction",
        "0",
      ],
      { cwd: path.join(ROOT, "glue"), encoding: "utf8" },
    );
    assert.equal(gen.status, 0, gen.stderr);
    const lines = fs.readFileSync(csv, "utf8").trimEnd().split("\n");
    const duplicate = lines[1];
    const missingId = `,No,Id,1980-01-01,F,,,,,,,,,,self,2026-01-01,`;
    const extract = `${[...lines, duplicate, missingId].join("\n")}\n`;
    const prefix = `extracts/${unique()}/members.csv`;
    await s3.send(
      new PutObjectCommand({
        Bucket: stack.lakeBucket,
        Key: `landing/acme/${prefix}`,
        Body: extract,
      }),
    );
    const token = await fetchToken(stack.tokenUrl, acme, "system/Task.cruds");

    // Act
    const done = await migrate(token, { source: "legacy", inputPrefix: prefix });

    // Assess: the run, its report, the curated rows and the quarantine
    assert.equal(done.status, "SUCCEEDED", JSON.stringify(done.error));
    const id = done.id as string;
    assert.equal(done.reportUri, `s3://${stack.lakeBucket}/reports/acme/${id}/report.json`);
    assert.deepEqual(
      [
        done.report.job,
        done.report.org,
        done.report.runId,
        done.report.written,
        done.report.quarantined,
      ],
      ["ingest_fhir", "acme", id, { Coverage: 40, Patient: 40 }, {}],
    );
    const partition = `org=acme/ingest_date=${done.report.ingestDate}/run_id=${id}/`;
    const patients = parquet(`curated/patient/${partition}`);
    assert.equal(patients.length, 40);
    assert.ok(patients.every((p) => String(p.identifier_tokens[0]).startsWith("tok:")));
    assert.ok(!JSON.stringify(patients).includes("M00000000"), "a member id is in clear text");
    assert.equal(parquet(`curated/coverage/${partition}`).length, 40);
    assert.ok((await keys(`quarantine/acme/${id}/legacy/`)).some((k) => k.endsWith(".json")));
    assert.deepEqual(await keys(`reports/acme/${id}/`), [
      `reports/acme/${id}/legacy-report.json`,
      `reports/acme/${id}/report.json`,
    ]);
    const succeeded = stack.events.filter((e) => e.Detail.runId === id);
    assert.deepEqual(
      succeeded.map((e) => [e.Source, e.DetailType, e.EventBusName]),
      [["hoth.migration", "MigrationSucceeded", "hoth-dev-migrations"]],
    );
  });

  it("takes an extract in through an upload form (fetch + FormData) and migrates it; refuses what S3 would", async () => {
    // Prepare: a generated extract of 25 members, and a form for it
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "hoth-e2e-upload-"));
    const csv = path.join(dir, "members.csv");
    const gen = spawnSync(
      PYTHON,
      ["-m", "hoth_glue.generate", "legacy", "--members", "25", "--seed", "15", "--out", csv],
      { cwd: path.join(ROOT, "glue"), encoding: "utf8" },
    );
    assert.equal(gen.status, 0, gen.stderr);
    const extract = fs.readFileSync(csv);
    const token = await fetchToken(stack.tokenUrl, acme, "system/Binary.c system/Task.cruds");
    const created = await call("POST", "/uploads", {
      token,
      clientId: acme.clientId,
      body: { fileName: "members.csv", contentType: "text/csv", size: extract.length },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const upload = created.body;
    assert.equal(upload.key, `landing/acme/uploads/${upload.id}/members.csv`);
    assert.equal(upload.fields["x-amz-server-side-encryption-aws-kms-key-id"], stack.lakeKeyArn);

    // Act: upload as a browser or curl would (not the SDK), then migrate from the upload
    const form = new FormData();
    for (const [k, v] of Object.entries(upload.fields as Record<string, string>)) form.append(k, v);
    form.append("file", new Blob([extract], { type: "text/csv" }), "members.csv");
    const posted = await fetch(upload.url, { method: "POST", body: form });
    const done = await migrate(token, { source: "legacy", inputPrefix: upload.inputPrefix });

    // Assess: stored under the pinned key, migrated to curated rows
    assert.equal(posted.status, 204);
    assert.deepEqual(await keys(`landing/acme/uploads/${upload.id}/`), [upload.key]);
    assert.equal(done.status, "SUCCEEDED", JSON.stringify(done.error));
    assert.equal(done.inputPrefix, upload.inputPrefix);
    const written = done.report.written as Record<string, number>;
    const partition = `org=acme/ingest_date=${done.report.ingestDate}/run_id=${done.id}/`;
    const rows = parquet(`curated/patient/${partition}`);
    assert.equal(rows.length, written.Patient);
    assert.ok(written.Patient > 0 && written.Patient <= 25, JSON.stringify(done.report));

    // Refusals. S3 (AWS's documented POST policy semantics; moto enforces none of
    // them, see test/uploads.test.ts) refuses a bigger file, an expired form and
    // another key; the API refuses a size above hoth:uploads.maxBytes.
    const attempt = {
      fields: upload.fields as Record<string, string>,
      bucket: stack.lakeBucket,
      fileSize: extract.length,
      now: new Date(),
      secretAccessKey: "testing",
    };
    assert.deepEqual(evaluatePost(attempt), { ok: true });
    assert.deepEqual(evaluatePost({ ...attempt, fileSize: extract.length + 1 }), {
      ok: false,
      reason: "content-length-range",
    });
    assert.deepEqual(
      evaluatePost({ ...attempt, now: new Date(Date.parse(upload.expiresAt) + 1000) }),
      {
        ok: false,
        reason: "policy expired",
      },
    );
    assert.deepEqual(
      evaluatePost({
        ...attempt,
        fields: { ...attempt.fields, key: `landing/acme/extracts/${upload.id}/members.csv` },
      }),
      { ok: false, reason: "condition failed: key" },
    );
    const oversized = await call("POST", "/uploads", {
      token,
      clientId: acme.clientId,
      body: { fileName: "big.csv", contentType: "text/csv", size: 104857601 },
    });
    assert.equal(oversized.status, 400);
    assert.equal(oversized.body.issue[0].diagnostics, "size must be at most 104857600 bytes");

    // Another organisation naming acme's upload id, or an upload whose file never
    // arrived, is refused before any run starts (its own landing area has no such file).
    const globexToken = await fetchToken(stack.tokenUrl, globex, "system/Task.cruds");
    const before = (await keys("reports/globex/")).length;
    const stolen = await call("POST", "/migrations", {
      token: globexToken,
      clientId: globex.clientId,
      body: { source: "legacy", inputPrefix: upload.inputPrefix },
      key: unique(),
    });
    const unsent = await call("POST", "/uploads", {
      token,
      clientId: acme.clientId,
      body: { fileName: "later.csv", contentType: "text/csv", size: 10 },
    });
    const early = await call("POST", "/migrations", {
      token,
      clientId: acme.clientId,
      body: { source: "legacy", inputPrefix: unsent.body.inputPrefix },
      key: unique(),
    });
    for (const refused of [stolen, early]) {
      assert.equal(refused.status, 422);
      assert.deepEqual(
        [refused.body.issue[0].code, refused.body.issue[0].diagnostics],
        [
          "not-found",
          "No uploaded file under this inputPrefix in your landing area: upload it with the form POST /uploads returned first",
        ],
      );
    }
    assert.equal((await keys("reports/globex/")).length, before);
  });

  it("pulls a Bulk Data export from the local source (SMART Backend Services, KMS-signed) and migrates it", async () => {
    // Prepare: what the source holds of the configured types, and HOTH's public JWKS
    const lines = (type: string) =>
      fs
        .readdirSync(stack.bulkSource.dataDir)
        .filter((f) => f.startsWith(`${type}.`) && f.endsWith(".ndjson"))
        .flatMap((f) =>
          fs
            .readFileSync(path.join(stack.bulkSource.dataDir, f), "utf8")
            .split("\n")
            .filter((l) => l.trim()),
        ).length;
    // The configured types the source holds lines of: the Synthea fixture has
    // both, the generated data (no ../shared) Patients only; a report counts
    // only the types it wrote.
    const types = ["Condition", "Patient"].filter((t) => lines(t) > 0);
    const expected = Object.fromEntries(types.map((t) => [t, lines(t)]));
    assert.ok(expected.Patient > 0);
    const published = await fetch(`${stack.apiUrl}/.well-known/jwks.json`);
    assert.equal(published.status, 200);
    const keySet = (await published.json()) as Json;
    assert.deepEqual(
      keySet.keys.map((k: Json) => [k.kty, k.crv, k.alg, k.use, "d" in k]),
      [["EC", "P-384", "ES384", "sig", false]],
    );
    const token = await fetchToken(stack.tokenUrl, acme, "system/Task.cruds");
    const before = { ...stack.bulkSource.stats };

    // Act
    const done = await migrate(token, { source: "bulk", server: "local" });

    // Assess: every resource of the export curated, the job deleted at the source
    assert.equal(done.status, "SUCCEEDED", JSON.stringify(done.error));
    assert.equal(done.source, "bulk");
    assert.equal(done.inputPrefix, `bulk/${done.id}/output/`);
    assert.deepEqual(done.report.written, expected);
    assert.deepEqual(done.report.quarantined, {});
    assert.deepEqual(await keys(`landing/acme/bulk/${done.id}/`), [
      ...types.map((t) => `landing/acme/bulk/${done.id}/output/${t}.000.ndjson`),
      `landing/acme/bulk/${done.id}/tasks.json`,
    ]);
    const rows = parquet(
      `curated/patient/org=acme/ingest_date=${done.report.ingestDate}/run_id=${done.id}/`,
    );
    assert.equal(rows.length, expected.Patient);
    assert.deepEqual(
      [
        stack.bulkSource.stats.kickoffs - before.kickoffs,
        stack.bulkSource.stats.deletes - before.deletes,
      ],
      [1, 1],
    );
    assert.ok(stack.bulkSource.stats.tokens > before.tokens);
  });

  it("migrates a Bulk Data export of 450 files (one run once took at most 400) with exactly their resources, the state staying small", async () => {
    // Prepare: 450 generated Patients (their Observations are not among the
    // source's types), exported one per file
    const dir = await generateNdjson({ resources: 4500, perPatient: 10 });
    const serving = { ...stack.bulkSource.serving };
    Object.assign(stack.bulkSource.serving, { dataDir: dir, linesPerFile: 1 });
    const token = await fetchToken(stack.tokenUrl, acme, "system/Task.cruds");
    try {
      // Act
      const done = await migrate(token, { source: "bulk", server: "local" });

      // Assess: every file landed and every resource curated, once
      assert.equal(done.status, "SUCCEEDED", JSON.stringify(done.error));
      assert.deepEqual(done.report.written, { Patient: 450 });
      assert.deepEqual(done.report.quarantined, {});
      const landed = await keys(`landing/acme/bulk/${done.id}/`);
      assert.equal(landed.filter((k) => k.includes("/output/Patient.")).length, 450);
      assert.deepEqual(
        landed.filter((k) => !k.includes("/output/Patient.")),
        [`landing/acme/bulk/${done.id}/tasks.json`],
      );
      const rows = parquet(
        `curated/patient/org=acme/ingest_date=${done.report.ingestDate}/run_id=${done.id}/`,
      );
      assert.equal(rows.length, 450);
      const execution = await stack.settled(
        `${stack.stateMachineArn.replace(":stateMachine:", ":execution:")}:${done.id}`,
      );
      assert.ok(
        execution.largestStateBytes > 0 && execution.largestStateBytes < 4096,
        `the largest state is ${execution.largestStateBytes} bytes`,
      );
    } finally {
      Object.assign(stack.bulkSource.serving, serving);
      if (!("linesPerFile" in serving)) delete stack.bulkSource.serving.linesPerFile;
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("fails a bulk migration with a clear cause when the source refuses the export or its tokens expire", async () => {
    const token = await fetchToken(stack.tokenUrl, acme, "system/Task.cruds");
    const faults = stack.bulkSource.faults;
    try {
      // A source that refuses the kick-off (403): no job to delete.
      faults.kickoffStatus = 403;
      const refused = await migrate(token, { source: "bulk", server: "local" });
      // A source whose access tokens are expired when used (the ones the
      // functions hold revoked): refreshed once, then refused.
      faults.kickoffStatus = undefined;
      faults.expiredTokens = true;
      stack.bulkSource.revokeTokens();
      const expired = await migrate(token, { source: "bulk", server: "local" });

      assert.deepEqual(
        [refused.status, refused.error.code, expired.status, expired.error.code],
        ["FAILED", "SourceHttpError", "FAILED", "SourceUnauthorizedError"],
      );
      // The cause as plain fields (the function's error type and message)
      assert.match(refused.error.message, /^Export kick-off: the source answered 403/);
      assert.equal(
        expired.error.message,
        "Export kick-off: the source refused a freshly issued access token (401)",
      );
      for (const run of [refused, expired]) {
        assert.deepEqual(
          stack.events
            .filter((e) => e.Detail.runId === run.id)
            .map((e) => [e.DetailType, e.Detail.error]),
          [["MigrationFailed", run.error.code]],
        );
        assert.deepEqual(await keys(`landing/acme/bulk/${run.id}/`), []);
      }
    } finally {
      faults.kickoffStatus = undefined;
      faults.expiredTokens = false;
    }
  });

  it("refuses a bulk migration naming a source the stack does not configure, naming no value", async () => {
    const token = await fetchToken(stack.tokenUrl, acme, "system/Task.cruds");
    const refused = await call("POST", "/migrations", {
      token,
      clientId: acme.clientId,
      body: { source: "bulk", server: "elsewhere" },
      key: unique(),
    });
    assert.equal(refused.status, 400);
    assert.equal(
      refused.body.issue[0].diagnostics,
      "server must be the name of one of the stack's bulk sources",
    );
  });

  it("migrates exactly the committed registry members: refused and conflicting registrations never reach curated data", async () => {
    const token = await fetchToken(
      stack.tokenUrl,
      acme,
      "system/Patient.cruds system/Coverage.cruds system/Task.cruds",
    );
    const as = { token, clientId: acme.clientId };
    // Prepare: one committed member, one refused transaction, one conflicting POST
    const member = await call("POST", "/members", { ...as, body: newPatient() });
    assert.equal(member.status, 201);
    const incomplete = { ...newPatient(), birthDate: undefined };
    const refused = await call("POST", "/members", {
      ...as,
      body: {
        resourceType: "Bundle",
        type: "transaction",
        entry: [newPatient(), incomplete].map((resource) => ({
          resource,
          request: { method: "POST", url: "Patient" },
        })),
      },
    });
    assert.equal(refused.status, 422);
    const conflict = await call("POST", "/members", {
      ...as,
      body: { ...newPatient(), identifier: member.body.identifier },
    });
    assert.equal(conflict.status, 409);
    const committed = await registryHeads("acme", "Patient");
    // Act
    const done = await migrate(token, { source: "registry" });
    // Assess: one curated row per committed Patient, the new member among them
    assert.equal(done.status, "SUCCEEDED", JSON.stringify(done.error));
    const rows = parquet(
      `curated/patient/org=acme/ingest_date=${done.report.ingestDate}/run_id=${done.id}/`,
    );
    assert.equal(rows.length, committed);
    assert.equal(done.report.written.Patient, committed);
    // Curated ids are tokens: HMAC-SHA256 of `Patient/<id>` under the stack's tokenization key.
    const secret = await new SecretsManagerClient({ endpoint: stack.motoUrl }).send(
      new GetSecretValueCommand({ SecretId: "hoth-dev/tokenization-key" }),
    );
    const key = Buffer.from(JSON.parse(secret.SecretString ?? "{}").key, "base64");
    const idToken = createHmac("sha256", key).update(`Patient/${member.body.id}`).digest("hex");
    assert.ok(rows.some((r) => r.id === idToken));
    assert.ok(!rows.some((r) => r.id === member.body.id), "a registry id is in clear text");
  });

  it("fails a migration whose input does not exist, and publishes MigrationFailed", async () => {
    const token = await fetchToken(stack.tokenUrl, acme, "system/Task.cruds");

    const done = await migrate(token, { source: "fhir", inputPrefix: `nothing-${unique()}/` });

    assert.equal(done.status, "FAILED");
    // The cause as plain fields, not JSON inside a string
    assert.equal(done.error.state, "States.TaskFailed");
    assert.equal(done.error.code, "InputNotFound");
    assert.match(
      done.error.message,
      /^Path does not exist: s3:\/\/hoth-dev-lake\/landing\/acme\/nothing-/,
    );
    assert.deepEqual(
      [done.error.job.name, done.error.job.state],
      ["hoth-dev-ingest-fhir", "FAILED"],
    );
    const failed = stack.events.filter((e) => e.Detail.runId === done.id);
    assert.deepEqual(
      failed.map((e) => [e.DetailType, e.Detail.error]),
      [["MigrationFailed", "States.TaskFailed"]],
    );
  });

  it("keeps organisations apart", async () => {
    const acmeToken = await fetchToken(stack.tokenUrl, acme, "system/Patient.cruds");
    const globexToken = await fetchToken(stack.tokenUrl, globex, "system/Patient.cruds");
    const member = await call("POST", "/members", {
      token: acmeToken,
      clientId: acme.clientId,
      body: patient,
    });
    const other = await call("GET", `/members/${member.body.id}`, {
      token: globexToken,
      clientId: globex.clientId,
    });
    assert.equal(other.status, 404);
  });

  it("answers 401 without a token and 403 when the scopes do not grant the route, as OperationOutcome", async () => {
    const noToken = await call("POST", "/members", { clientId: acme.clientId, body: patient });
    assert.equal(noToken.status, 401);
    assert.equal(noToken.body.issue[0].code, "login");
    const readOnly = await fetchToken(stack.tokenUrl, acme, "system/Patient.rs");
    const refused = await call("POST", "/members", {
      token: readOnly,
      clientId: acme.clientId,
      body: patient,
    });
    assert.equal(refused.status, 403);
    assert.equal(refused.body.issue[0].code, "forbidden");
    const noMigrationScope = await call("POST", "/migrations", {
      token: readOnly,
      clientId: acme.clientId,
      body: { source: "fhir", inputPrefix: "members/" },
      key: unique(),
    });
    assert.equal(noMigrationScope.status, 403);
    // The gateway's 403 names the scope the route needs (the authorizer's Deny context).
    assert.deepEqual(
      [refused.body.issue[0].diagnostics, noMigrationScope.body.issue[0].diagnostics],
      [
        "The access token's scopes do not grant this route; it needs system/Patient.c",
        "The access token's scopes do not grant this route; it needs system/Task.c",
      ],
    );
    assert.equal(refused.headers.get("www-authenticate"), 'Bearer error="insufficient_scope"');
    const forged = await call("POST", "/health", { token: "a.b.c", clientId: acme.clientId });
    assert.equal(forged.status, 401);
    const unknown = await call("GET", "/nowhere", { token: readOnly, clientId: acme.clientId });
    // MISSING_AUTHENTICATION_TOKEN, answered as 404 (contracts/gatewayResponses.ts)
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.issue[0].code, "not-found");
  });

  it("answers a token with an empty signature with 401 and keeps serving valid tokens (issue 14)", async () => {
    const valid = await fetchToken(stack.tokenUrl, acme, "system/Patient.rs");
    const kid = JSON.parse(Buffer.from(valid.split(".")[0], "base64url").toString()).kid;
    const b64u = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");
    const attack = `${b64u({ alg: "RS256", kid })}.${b64u({ exp: Math.floor(Date.now() / 1000) + 600 })}.`;
    // Empty, and a signature of the right size that verifies nothing (this one reaches the library).
    for (const [i, token] of [attack, `${attack}${"A".repeat(342)}`, attack].entries()) {
      const res = await call("POST", "/health", { token, clientId: `attacker-${i}` });
      assert.equal(res.status, 401);
      assert.equal(res.body.issue[0].code, "login");
    }
    const after = await call("POST", "/health", { token: valid, clientId: acme.clientId });
    assert.equal(after.status, 200);
  });

  it("refuses a client with a wrong secret at the token endpoint", async () => {
    await assert.rejects(
      fetchToken(stack.tokenUrl, { ...acme, secret: "wrong" }, "system/Patient.r"),
      {
        message: "token endpoint answered 401",
      },
    );
  });
});
