import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
  CreateSecretCommand,
  PutSecretValueCommand,
  SecretsManagerClient,
} from "@aws-sdk/client-secrets-manager";
import type { APIGatewayProxyHandler, APIGatewayProxyResult } from "aws-lambda";
import { bundleHandler } from "../contracts/bundle";
import { SecretCache, SecretUnavailableError } from "../handlers/lib/secrets";
import { captureOutput, lambdaContext, loadHandler, proxyEvent } from "./support/handlers";
import { startMoto } from "./support/moto";

const SECRET_VALUE = "s3cr3t-value-that-must-never-leak";

type Handler = (...a: Parameters<APIGatewayProxyHandler>) => Promise<APIGatewayProxyResult>;

async function createSecret(name: string, value = JSON.stringify({ signingKey: SECRET_VALUE })) {
  const sm = new SecretsManagerClient({});
  const out = await sm.send(new CreateSecretCommand({ Name: name, SecretString: value }));
  return { sm, arn: out.ARN as string, versionId: out.VersionId as string };
}

describe("app handler: POST /health against a real Secrets Manager API (moto)", () => {
  let handler: Handler;
  let secretName: string;
  let versionId: string;

  before(async function () {
    this.timeout(60_000);
    await startMoto();
    secretName = `hoth-test/app-${Date.now()}`;
    ({ versionId } = await createSecret(secretName));
    ({ handler } = loadHandler<{ handler: Handler }>("handlers/app.ts", {
      APP_SECRET_ID: secretName,
      STATE_MACHINE_ARN: "arn:aws:states:us-east-1:123456789012:stateMachine:hoth-test-migration",
      LAKE_BUCKET: "hoth-test-lake",
      REGISTRY_TABLE: "hoth-test-registry",
      UPLOAD_KEY_ARN: "arn:aws:kms:us-east-1:123456789012:key/unused",
      UPLOAD_MAX_BYTES: "1048576",
      STACK: "test",
      SECRET_CACHE_TTL_SECONDS: "300",
    }));
  });

  it("returns 200 JSON with the secret's metadata and never its value", async () => {
    // Prepare
    const event = proxyEvent("health");
    // Act
    const { result, output } = await captureOutput(() => handler(event, lambdaContext(), () => {}));
    // Assess
    assert.equal(result.statusCode, 200);
    assert.equal(result.headers?.["Content-Type"], "application/json");
    const body = JSON.parse(result.body);
    assert.deepEqual(Object.keys(body).sort(), [
      "requestId",
      "secret",
      "stack",
      "status",
      "version",
    ]);
    assert.equal(body.status, "ok");
    assert.equal(body.stack, "test");
    assert.equal(body.requestId, "c6af9ac6-7b61-11e6-9a41-93e8deadbeef");
    assert.deepEqual(Object.keys(body.secret).sort(), ["lastChanged", "name", "versionId"]);
    assert.equal(body.secret.name, secretName);
    assert.equal(body.secret.versionId, versionId);
    assert.match(body.secret.lastChanged, /^\d{4}-\d\d-\d\dT/);
    assert.ok(!result.body.includes(SECRET_VALUE));
    assert.ok(!output.includes(SECRET_VALUE));
  });

  it("echoes a well-formed X-Correlation-Id and otherwise uses the API Gateway request id", async () => {
    const given = proxyEvent("health", {
      headers: { ...proxyEvent("health").headers, "X-Correlation-Id": "corr-123" },
    });
    const bad = proxyEvent("health", {
      headers: { ...proxyEvent("health").headers, "x-correlation-id": "bad id with spaces" },
    });
    const a = await handler(given, lambdaContext(), () => {});
    const b = await handler(bad, lambdaContext(), () => {});
    assert.equal(a.headers?.["X-Correlation-Id"], "corr-123");
    assert.equal(b.headers?.["X-Correlation-Id"], "c6af9ac6-7b61-11e6-9a41-93e8deadbeef");
  });

  it("answers an unknown path with 404 and a wrong method with 405, both OperationOutcome", async () => {
    const notFound = await handler(
      proxyEvent("health", { path: "/nope", resource: "/nope" }),
      lambdaContext(),
      () => {},
    );
    const wrongMethod = await handler(
      proxyEvent("health", { httpMethod: "GET" }),
      lambdaContext(),
      () => {},
    );
    assert.equal(notFound.statusCode, 404);
    assert.equal(notFound.headers?.["Content-Type"], "application/fhir+json");
    assert.deepEqual(JSON.parse(notFound.body), {
      resourceType: "OperationOutcome",
      issue: [
        {
          severity: "error",
          code: "not-found",
          diagnostics: "No route matches this method and path",
        },
      ],
    });
    assert.equal(wrongMethod.statusCode, 405);
    assert.equal(wrongMethod.headers?.Allow, "POST");
    assert.equal(JSON.parse(wrongMethod.body).issue[0].code, "not-supported");
  });

  it("answers 503 OperationOutcome when the secret cannot be read, logging only the error class", async () => {
    // Prepare: a handler whose secret does not exist
    const { handler: broken } = loadHandler<{ handler: Handler }>("handlers/app.ts", {
      APP_SECRET_ID: `hoth-test/missing-${Date.now()}`,
    });
    // Act
    const { result, output } = await captureOutput(() =>
      broken(proxyEvent("health"), lambdaContext(), () => {}),
    );
    // Assess
    assert.equal(result.statusCode, 503);
    assert.deepEqual(JSON.parse(result.body), {
      resourceType: "OperationOutcome",
      issue: [
        {
          severity: "error",
          code: "transient",
          diagnostics: "A required secret is unavailable; retry later",
        },
      ],
    });
    const log = output
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l))
      .find((l) => l.message === "secret unavailable");
    assert.ok(log, `no 'secret unavailable' log line in: ${output}`);
    assert.equal(log.level, "ERROR");
    assert.equal(log.errorClass, "SecretUnavailableError");
    assert.equal(log.cause, "ResourceNotFoundException");
    assert.equal(log.correlationId, "c6af9ac6-7b61-11e6-9a41-93e8deadbeef");
  });
});

describe("SecretCache against moto", () => {
  before(async function () {
    this.timeout(60_000);
    await startMoto();
  });

  function countingClient() {
    const client = new SecretsManagerClient({});
    const calls = { n: 0 };
    client.middlewareStack.add(
      (next) => async (args) => {
        calls.n++;
        return next(args);
      },
      { step: "initialize" },
    );
    return { client, calls };
  }

  it("reads a secret once per TTL however many requests arrive at once", async () => {
    const name = `hoth-test/cache-${Date.now()}`;
    await createSecret(name);
    const { client, calls } = countingClient();
    let now = 1_000_000;
    const cache = new SecretCache(client, 300, () => now);

    await Promise.all(Array.from({ length: 50 }, () => cache.get(name)));
    await cache.get(name);
    now += 299_000;
    await cache.get(name);
    assert.equal(calls.n, 1);

    now += 2_000;
    await cache.get(name);
    assert.equal(calls.n, 2);
  });

  it("re-reads on refresh and returns the rotated version", async () => {
    const name = `hoth-test/rotate-${Date.now()}`;
    const { sm } = await createSecret(name, "v1");
    const { client, calls } = countingClient();
    const cache = new SecretCache(client, 300);
    assert.equal((await cache.get(name)).value, "v1");
    await sm.send(new PutSecretValueCommand({ SecretId: name, SecretString: "v2" }));
    assert.equal((await cache.get(name)).value, "v1");
    assert.equal((await cache.get(name, { refresh: true })).value, "v2");
    assert.equal(calls.n, 2);
  });

  it("does not cache a failure, and names the secret but carries the AWS error as cause", async () => {
    const name = `hoth-test/absent-${Date.now()}`;
    const { client, calls } = countingClient();
    const cache = new SecretCache(client, 300);
    await assert.rejects(cache.get(name), (e: unknown) => {
      assert.ok(e instanceof SecretUnavailableError);
      assert.equal(e.message, `Secret ${name} could not be read`);
      assert.equal((e.cause as Error).name, "ResourceNotFoundException");
      return true;
    });
    await assert.rejects(cache.get(name));
    assert.equal(calls.n, 2);
  });
});

describe("the bundled app (dist/app/index.js)", () => {
  it("serves POST /health from the esbuild bundle in a fresh Node process", async function () {
    this.timeout(60_000);
    // Prepare: the same bundle Pulumi ships, written where `npm run bundle` writes it
    const url = await startMoto();
    const name = `hoth-test/bundle-${Date.now()}`;
    await createSecret(name);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "hoth-bundle-"));
    fs.writeFileSync(path.join(dir, "index.js"), bundleHandler("app").code);
    const script = `
      const { handler } = require(${JSON.stringify(path.join(dir, "index.js"))});
      const event = ${JSON.stringify(proxyEvent("health"))};
      handler(event, { awsRequestId: "r1" }).then((r) => process.stdout.write("RESULT " + JSON.stringify(r) + "\\n"));`;
    // Act
    const run = spawnSync(process.execPath, ["-e", script], {
      env: {
        ...process.env,
        APP_SECRET_ID: name,
        STATE_MACHINE_ARN: "arn:aws:states:us-east-1:123456789012:stateMachine:m",
        LAKE_BUCKET: "lake",
        REGISTRY_TABLE: "registry",
        UPLOAD_KEY_ARN: "arn:aws:kms:us-east-1:123456789012:key/k",
        UPLOAD_MAX_BYTES: "1048576",
        AWS_ENDPOINT_URL: url,
      },
      encoding: "utf8",
    });
    // Assess
    const line = run.stdout.split("\n").find((l) => l.startsWith("RESULT "));
    assert.ok(line, `no result; stderr: ${run.stderr}`);
    const result = JSON.parse(line.slice(7));
    assert.equal(result.statusCode, 200);
    assert.equal(JSON.parse(result.body).secret.name, name);
    assert.ok(!run.stdout.includes(SECRET_VALUE));
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
