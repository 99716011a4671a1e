import * as assert from "node:assert/strict";
import { CreateBucketCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { CreateSecretCommand, SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import {
  CreateStateMachineCommand,
  DescribeExecutionCommand,
  ExecutionAlreadyExists,
  ListExecutionsCommand,
  SFNClient,
  StartExecutionCommand,
} from "@aws-sdk/client-sfn";
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from "aws-lambda";
import { migrationDefinition } from "../contracts/migrationDefinition";
import { createLogger } from "../handlers/lib/logger";
import { failure, getMigration, migrationId, startMigration } from "../handlers/routes/migrations";
import { lambdaContext, loadHandler, proxyEvent } from "./support/handlers";
import { freePort, startMoto } from "./support/moto";

type Handler = (event: APIGatewayProxyEvent, context: Context) => Promise<APIGatewayProxyResult>;

const LAKE = "hoth-test-lake";

function request(
  method: "GET" | "POST",
  path: string,
  opts: {
    body?: unknown;
    key?: string;
    org?: string | null;
    rawBody?: string;
    scopes?: string;
    contentType?: string | null;
  } = {},
): APIGatewayProxyEvent {
  const base = proxyEvent("health");
  const authorizer = { ...base.requestContext.authorizer } as Record<string, unknown>;
  if (opts.org === null) delete authorizer.org;
  else authorizer.org = opts.org ?? "acme";
  authorizer.scopes = opts.scopes ?? "system/Task.cr";
  const headers: Record<string, string | undefined> = { ...base.headers };
  if (opts.contentType === null) delete headers["Content-Type"];
  else if (opts.contentType !== undefined) headers["Content-Type"] = opts.contentType;
  return {
    ...base,
    httpMethod: method,
    path,
    resource: path.startsWith("/migrations/") ? "/migrations/{id}" : path,
    headers: { ...headers, ...(opts.key ? { "Idempotency-Key": opts.key } : {}) },
    body: opts.rawBody ?? (opts.body === undefined ? null : JSON.stringify(opts.body)),
    requestContext: { ...base.requestContext, authorizer },
  };
}

const body = (r: APIGatewayProxyResult) => JSON.parse(r.body);
const issue = (r: APIGatewayProxyResult) => body(r).issue[0];

describe("migrations API against moto (Step Functions, S3)", () => {
  let handler: Handler;
  let stateMachineArn: string;
  const sfn = () => new SFNClient({});

  before(async function () {
    this.timeout(60_000);
    await startMoto();
    const name = `hoth-test-migration-${Date.now()}`;
    const created = await sfn().send(
      new CreateStateMachineCommand({
        name,
        roleArn: "arn:aws:iam::123456789012:role/hoth-test-migration",
        definition: JSON.stringify(
          migrationDefinition({
            legacyJobName: "l",
            ingestJobName: "i",
            registryExportFunctionArn: "arn:aws:lambda:us-east-1:123456789012:function:e",
            registryExportTimeoutSeconds: 300,
            lakeBucket: LAKE,
            eventBusName: "b",
            legacyTimeoutSeconds: 60,
            ingestTimeoutSeconds: 60,
          }),
        ),
      }),
    );
    stateMachineArn = created.stateMachineArn as string;
    const secret = `hoth-test/app-migrations-${Date.now()}`;
    await new SecretsManagerClient({}).send(
      new CreateSecretCommand({ Name: secret, SecretString: "{}" }),
    );
    ({ handler } = loadHandler<{ handler: Handler }>("handlers/app.ts", {
      APP_SECRET_ID: secret,
      STATE_MACHINE_ARN: stateMachineArn,
      LAKE_BUCKET: LAKE,
      REGISTRY_TABLE: "hoth-test-registry",
      UPLOAD_KEY_ARN: "arn:aws:kms:us-east-1:123456789012:key/unused",
      UPLOAD_MAX_BYTES: "1048576",
    }));
  });

  const executions = async () =>
    (await sfn().send(new ListExecutionsCommand({ stateMachineArn }))).executions ?? [];

  it("starts a migration for the caller's organisation and answers 202 with its Location", async () => {
    // Act
    const res = await handler(
      request("POST", "/migrations", {
        key: "k-start",
        body: { source: "legacy", inputPrefix: "extracts/m.csv" },
      }),
      lambdaContext(),
    );
    // Assess
    const id = migrationId("acme", "k-start");
    assert.equal(res.statusCode, 202);
    assert.equal(res.headers?.Location, `/migrations/${id}`);
    assert.deepEqual(Object.keys(body(res)).sort(), ["id", "startDate", "status"]);
    assert.equal(body(res).id, id);
    const described = await sfn().send(
      new DescribeExecutionCommand({
        executionArn: `${stateMachineArn.replace(":stateMachine:", ":execution:")}:${id}`,
      }),
    );
    assert.deepEqual(JSON.parse(described.input as string), {
      runId: id,
      org: "acme",
      source: "legacy",
      inputPrefix: "extracts/m.csv",
    });
  });

  it("answers a retried POST with the same Idempotency-Key as the first, starting nothing new", async () => {
    const req = () =>
      request("POST", "/migrations", {
        key: "k-retry",
        body: { source: "fhir", inputPrefix: "exports/a/" },
      });
    const first = await handler(req(), lambdaContext());
    const before = (await executions()).length;
    const second = await handler(req(), lambdaContext());
    assert.equal(first.statusCode, 202);
    assert.equal(second.statusCode, 202);
    assert.deepEqual(body(second), body(first));
    assert.equal(second.headers?.Location, first.headers?.Location);
    assert.equal((await executions()).length, before);
  });

  it("accepts the SMART v1 and wildcard spellings of Task create and read, and application/json with a charset", async () => {
    for (const [i, scopes] of [
      "system/Task.write system/Task.read",
      "system/*.*",
      "system/*.cruds",
    ].entries()) {
      const started = await handler(
        request("POST", "/migrations", {
          key: `k-spelling-${i}`,
          scopes,
          contentType: "Application/JSON; charset=utf-8",
          body: { source: "fhir", inputPrefix: "a/" },
        }),
        lambdaContext(),
      );
      assert.equal(started.statusCode, 202, scopes);
      const got = await handler(
        request("GET", started.headers?.Location as string, { scopes }),
        lambdaContext(),
      );
      assert.equal(got.statusCode, 200, scopes);
    }
  });

  it("answers a replay after the run ended with the original 202 and Location and the run's current state", async () => {
    // Prepare: Step Functions as AWS answers once the execution has SUCCEEDED
    const id = migrationId("acme", "k-ended");
    const input = JSON.stringify({ runId: id, org: "acme", source: "fhir", inputPrefix: "a/" });
    const ended = {
      send: async (command: unknown) => {
        if (command instanceof StartExecutionCommand) {
          throw new ExecutionAlreadyExists({ message: "Execution Already Exists", $metadata: {} });
        }
        return {
          status: "SUCCEEDED",
          input,
          startDate: new Date("2026-11-22T10:00:00Z"),
          stopDate: new Date("2026-11-22T10:05:00Z"),
        };
      },
    } as unknown as SFNClient;
    const replay = (body: unknown) =>
      startMigration(
        { stateMachineArn, lakeBucket: LAKE },
        ended,
      )({
        event: request("POST", "/migrations", { key: "k-ended", body }),
        params: {},
        correlationId: "c",
        logger: createLogger("test"),
      });
    // Act
    const res = await replay({ source: "fhir", inputPrefix: "a/" });
    // Assess
    assert.equal(res.statusCode, 202);
    assert.equal(res.headers?.Location, `/migrations/${id}`);
    assert.deepEqual(body(res), {
      id,
      status: "SUCCEEDED",
      startDate: "2026-11-22T10:00:00.000Z",
      stopDate: "2026-11-22T10:05:00.000Z",
    });
    await assert.rejects(replay({ source: "fhir", inputPrefix: "b/" }), { statusCode: 409 });
  });

  it("refuses a reused Idempotency-Key with a different body with 409", async () => {
    await handler(
      request("POST", "/migrations", {
        key: "k-conflict",
        body: { source: "fhir", inputPrefix: "a/" },
      }),
      lambdaContext(),
    );
    const res = await handler(
      request("POST", "/migrations", {
        key: "k-conflict",
        body: { source: "fhir", inputPrefix: "b/" },
      }),
      lambdaContext(),
    );
    assert.equal(res.statusCode, 409);
    assert.deepEqual(issue(res), {
      severity: "error",
      code: "conflict",
      diagnostics: "This Idempotency-Key was already used for a different migration request",
    });
  });

  it("keeps tenants apart: the same key from another organisation is another migration, invisible to the first", async () => {
    const a = await handler(
      request("POST", "/migrations", {
        key: "k-shared",
        body: { source: "fhir", inputPrefix: "x/" },
      }),
      lambdaContext(),
    );
    const b = await handler(
      request("POST", "/migrations", {
        key: "k-shared",
        org: "globex",
        body: { source: "fhir", inputPrefix: "x/" },
      }),
      lambdaContext(),
    );
    assert.notEqual(body(a).id, body(b).id);
    const own = await handler(request("GET", `/migrations/${body(a).id}`), lambdaContext());
    const other = await handler(request("GET", `/migrations/${body(b).id}`), lambdaContext());
    assert.equal(own.statusCode, 200);
    assert.equal(other.statusCode, 404);
    assert.deepEqual(issue(other), {
      severity: "error",
      code: "not-found",
      diagnostics: "The migration does not exist",
    });
  });

  it("reports a running migration's status and times", async () => {
    const started = await handler(
      request("POST", "/migrations", {
        key: "k-get",
        body: { source: "fhir", inputPrefix: "exports/b/" },
      }),
      lambdaContext(),
    );
    const res = await handler(request("GET", `/migrations/${body(started).id}`), lambdaContext());
    assert.equal(res.statusCode, 200);
    const got = body(res);
    assert.deepEqual(
      [got.id, got.status, got.source, got.inputPrefix, got.stopDate],
      [body(started).id, "RUNNING", "fhir", "exports/b/", null],
    );
    assert.match(got.startDate, /^\d{4}-\d\d-\d\dT/);
  });

  const refusals: [string, APIGatewayProxyEvent, number, string, string][] = [
    [
      "no Idempotency-Key",
      request("POST", "/migrations", { body: { source: "fhir", inputPrefix: "a/" } }),
      400,
      "required",
      "An Idempotency-Key header (1-255 printable characters) is required",
    ],
    [
      "a body that is not JSON",
      request("POST", "/migrations", { key: "k1", rawBody: "{nope" }),
      400,
      "structure",
      "The body is not valid JSON",
    ],
    [
      "no body",
      request("POST", "/migrations", { key: "k1" }),
      400,
      "required",
      "The request has no body",
    ],
    [
      "an unknown source",
      request("POST", "/migrations", { key: "k1", body: { source: "csv", inputPrefix: "a/" } }),
      400,
      "invalid",
      "source must be 'legacy', 'fhir', 'registry' or 'bulk'",
    ],
    [
      "a prefix that climbs out of the landing area",
      request("POST", "/migrations", {
        key: "k1",
        body: { source: "fhir", inputPrefix: "../globex/a/" },
      }),
      400,
      "invalid",
      "inputPrefix must be a relative key prefix under your landing area (no leading '/', no '..')",
    ],
    [
      "a body naming an organisation",
      request("POST", "/migrations", {
        key: "k1",
        body: { source: "fhir", inputPrefix: "a/", org: "globex" },
      }),
      400,
      "invalid",
      "The body may hold only source and inputPrefix (or source 'registry' alone)",
    ],
    [
      "a token without an organisation",
      request("POST", "/migrations", {
        key: "k1",
        org: null,
        body: { source: "fhir", inputPrefix: "a/" },
      }),
      403,
      "forbidden",
      "The access token names no organisation",
    ],
    [
      "a malformed migration id",
      request("GET", "/migrations/not-an-id"),
      404,
      "not-found",
      "The migration does not exist",
    ],
    [
      "an unknown migration id",
      request("GET", `/migrations/m-${"0".repeat(40)}`),
      404,
      "not-found",
      "The migration does not exist",
    ],
    ...(["text/plain", "application/xml", "application/fhir+json", null] as const).map(
      (contentType): [string, APIGatewayProxyEvent, number, string, string] => [
        `Content-Type ${contentType ?? "absent"}`,
        request("POST", "/migrations", {
          key: "k-media",
          contentType,
          body: { source: "fhir", inputPrefix: "a/" },
        }),
        415,
        "not-supported",
        "POST /migrations takes Content-Type: application/json",
      ],
    ),
    [
      "a token without a Task create scope",
      request("POST", "/migrations", {
        key: "k-scope",
        scopes: "system/Task.r system/Patient.cruds user/Task.c",
        body: { source: "fhir", inputPrefix: "a/" },
      }),
      403,
      "forbidden",
      "The access token's scopes do not grant create on Task; it needs system/Task.c (or a SMART v1 or wildcard scope that includes it)",
    ],
    [
      "a token without a Task read scope",
      request("GET", `/migrations/m-${"0".repeat(40)}`, { scopes: "system/Task.c" }),
      403,
      "forbidden",
      "The access token's scopes do not grant read on Task; it needs system/Task.r (or a SMART v1 or wildcard scope that includes it)",
    ],
  ];
  for (const [what, event, status, code, diagnostics] of refusals) {
    it(`answers ${what} with ${status} ${code}`, async () => {
      const before = (await executions()).length;
      const res = await handler(event, lambdaContext());
      assert.equal(res.statusCode, status);
      assert.equal(res.headers?.["Content-Type"], "application/fhir+json");
      assert.deepEqual(issue(res), { severity: "error", code, diagnostics });
      assert.equal((await executions()).length, before, "nothing was started");
    });
  }

  it("answers 503 when Step Functions cannot be reached, and starts nothing", async () => {
    const dead = `http://127.0.0.1:${await freePort()}`;
    const saved = process.env.AWS_ENDPOINT_URL;
    process.env.AWS_ENDPOINT_URL = dead;
    try {
      const { handler: offline } = loadHandler<{ handler: Handler }>("handlers/app.ts", {});
      const res = await offline(
        request("POST", "/migrations", {
          key: "k-down",
          body: { source: "fhir", inputPrefix: "a/" },
        }),
        lambdaContext(),
      );
      assert.equal(res.statusCode, 503);
      assert.equal(res.headers?.["Retry-After"], "5");
      assert.equal(issue(res).code, "transient");
    } finally {
      process.env.AWS_ENDPOINT_URL = saved;
      loadHandler("handlers/app.ts", {});
    }
  });

  it("returns a finished migration's report from the caller's reports prefix only", async () => {
    // Prepare: a report in (real, emulated) S3, and a state machine answering SUCCEEDED
    const s3 = new S3Client({ forcePathStyle: true });
    await s3.send(new CreateBucketCommand({ Bucket: LAKE })).catch(() => undefined);
    const id = migrationId("acme", "k-done");
    const report = { runId: id, read: { Patient: 3 }, written: { patient: 3 }, quarantined: {} };
    await s3.send(
      new PutObjectCommand({
        Bucket: LAKE,
        Key: `reports/acme/${id}/report.json`,
        Body: JSON.stringify(report),
      }),
    );
    const finished = (output: Record<string, string>) =>
      ({
        send: async () => ({
          status: "SUCCEEDED",
          input: JSON.stringify({ runId: id, org: "acme", source: "fhir", inputPrefix: "a/" }),
          output: JSON.stringify(output),
          startDate: new Date("2026-11-22T10:00:00Z"),
          stopDate: new Date("2026-11-22T10:05:00Z"),
        }),
      }) as unknown as SFNClient;
    const route = (output: Record<string, string>) =>
      getMigration(
        { stateMachineArn, lakeBucket: LAKE },
        finished(output),
        s3,
      )({
        event: request("GET", `/migrations/${id}`),
        params: { id },
        correlationId: "c",
        logger: createLogger("test"),
      });
    // Act
    const own = await route({ reportUri: `s3://${LAKE}/reports/acme/${id}/report.json` });
    const foreign = await route({ reportUri: `s3://${LAKE}/reports/globex/${id}/report.json` });
    // Assess
    assert.equal(own.statusCode, 200);
    assert.deepEqual(body(own), {
      id,
      status: "SUCCEEDED",
      source: "fhir",
      inputPrefix: "a/",
      startDate: "2026-11-22T10:00:00.000Z",
      stopDate: "2026-11-22T10:05:00.000Z",
      reportUri: `s3://${LAKE}/reports/acme/${id}/report.json`,
      report,
    });
    assert.equal(body(foreign).report, null);
  });
});

describe("a failed migration's cause", () => {
  it("is plain fields: a Glue job run's error class and message, the state error and the job", () => {
    const cause = JSON.stringify({
      Id: "jr_1",
      JobName: "hoth-dev-ingest-fhir",
      JobRunState: "FAILED",
      ErrorMessage: "InputNotFound: Path does not exist: s3://lake/landing/acme/x/",
    });
    assert.deepEqual(failure("States.TaskFailed", cause), {
      code: "InputNotFound",
      message: "Path does not exist: s3://lake/landing/acme/x/",
      state: "States.TaskFailed",
      job: { name: "hoth-dev-ingest-fhir", runId: "jr_1", state: "FAILED" },
    });
  });

  it("is plain fields for a Lambda error and for a plain-text cause", () => {
    assert.deepEqual(
      failure(
        "InvalidExportInput",
        JSON.stringify({
          errorType: "InvalidExportInput",
          errorMessage: "org must be an organisation id",
        }),
      ),
      {
        code: "InvalidExportInput",
        message: "org must be an organisation id",
        state: "InvalidExportInput",
      },
    );
    assert.deepEqual(failure("InvalidInput", "Input needs runId"), {
      code: "InvalidInput",
      message: "Input needs runId",
      state: "InvalidInput",
    });
    assert.deepEqual(failure(undefined, undefined), {
      code: "Unknown",
      message: null,
      state: null,
    });
  });
});
