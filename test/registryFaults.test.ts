import * as assert from "node:assert/strict";
import { DynamoDBClient, ScanCommand } from "@aws-sdk/client-dynamodb";
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from "aws-lambda";
import { clientOptions } from "../handlers/lib/aws";
import { Deadline } from "../handlers/lib/deadline";
import { createLogger } from "../handlers/lib/logger";
import { MemberRegistry } from "../handlers/lib/registry";
import { registerMembers } from "../handlers/routes/members";
import { type PyProcess, spawnPython } from "../local/python";
import { createRegistryTable } from "../local/registryTable";
import { fixture, lambdaContext, proxyEvent } from "./support/handlers";
import { freePort } from "./support/moto";

type Json = Record<string, unknown>;

/**
 * The registry under faults, on a moto of its own (so stopping or killing it
 * disturbs no other test): the backend paused (SIGSTOP) or killed (SIGKILL)
 * while a 25-entry transaction is on its way, and an export racing a commit.
 */
describe("member registry under backend faults (private moto)", function () {
  this.timeout(120_000);
  const TABLE = "hoth-faults-registry";
  let moto: PyProcess;
  let endpoint: string;
  let serial = 0;

  const client = (onTransact?: () => void) => {
    const db = new DynamoDBClient({
      ...clientOptions(),
      endpoint,
      region: "us-east-1",
      credentials: { accessKeyId: "testing", secretAccessKey: "testing" },
    });
    if (onTransact) {
      db.middlewareStack.add(
        (next, context) => async (args) => {
          if (context.commandName === "TransactWriteItemsCommand") onTransact();
          return next(args);
        },
        { step: "finalizeRequest" },
      );
    }
    return db;
  };

  const startBackend = async () => {
    const port = await freePort();
    moto = spawnPython(`moto-faults-${port}`, "moto_server.py", [String(port)]);
    await moto.waitFor("listening", 30_000);
    endpoint = `http://127.0.0.1:${port}`;
    await createRegistryTable("hoth-faults", TABLE, client());
  };

  before(startBackend);
  after(async () => {
    await moto?.stop();
  });

  const patient = (): Json => {
    const p = fixture<Json>("members/patient.json");
    (p.identifier as Json[])[0].value = `MBR-FAULT-${++serial}`;
    return p;
  };
  const transaction = (n: number): Json => ({
    resourceType: "Bundle",
    type: "transaction",
    entry: Array.from({ length: n }, () => ({
      resource: patient(),
      request: { method: "POST", url: "Patient" },
    })),
  });
  const event = (org: string, body: Json, key?: string): APIGatewayProxyEvent => {
    const base = proxyEvent("health");
    return {
      ...base,
      httpMethod: "POST",
      path: "/members",
      headers: {
        ...base.headers,
        "Content-Type": "application/fhir+json",
        ...(key ? { "Idempotency-Key": key } : {}),
      },
      body: JSON.stringify(body),
      requestContext: {
        ...base.requestContext,
        authorizer: { org, scopes: "system/Patient.cruds system/Coverage.cruds" },
      },
    };
  };
  const call = (registry: MemberRegistry, org: string, body: Json, key?: string) =>
    registerMembers({ registry })({
      event: event(org, body, key),
      params: {},
      correlationId: "c",
      logger: createLogger("test"),
      context: lambdaContext(),
    });
  const orgItems = async (org: string) => {
    const out = await client().send(new ScanCommand({ TableName: TABLE }));
    return (out.Items ?? []).filter((i) => (i.pk.S as string).split("#")[1] === org);
  };

  it("answers 503 within the budget when the backend is paused during a 25-entry transaction; after it resumes the registration is all or nothing, and the retry makes it exactly once", async () => {
    // Prepare: pause moto just as the transaction is sent
    const org = "paused";
    const pid = moto.proc.pid as number;
    let paused = false;
    const body = transaction(25);
    const registry = new MemberRegistry(
      client(() => {
        paused = true;
        process.kill(pid, "SIGSTOP");
      }),
      TABLE,
    );
    // Act
    const started = Date.now();
    let answer: APIGatewayProxyResult | Error;
    try {
      answer = await call(registry, org, body, "paused-key");
    } catch (error) {
      answer = error as Error;
    }
    const elapsed = Date.now() - started;
    process.kill(pid, "SIGCONT");
    // Assess: a 503 before the function's 10 s timeout
    assert.ok(paused, "the backend was paused during the transaction");
    assert.equal((answer as { statusCode?: number }).statusCode, 503);
    assert.ok(elapsed < 9_000, `answered after ${elapsed} ms`);
    // The request had reached the backend, which may still commit it when it
    // resumes (DynamoDB documents the same for a timed-out call): whole or not at all.
    await new Promise((r) => setTimeout(r, 1500));
    const heads = async () =>
      (await orgItems(org)).filter((i) => (i.pk.S as string).startsWith("H#")).length;
    const afterResume = await heads();
    assert.ok([0, 25].includes(afterResume), `${afterResume} of 25 heads visible`);
    const exported = [];
    for await (const page of new MemberRegistry(client(), TABLE).exportHeads(
      org,
      new Deadline(5000),
    ))
      exported.push(...page);
    assert.equal(exported.length, afterResume, "a migration sees exactly what committed, whole");
    // The client's retry with its Idempotency-Key settles it: 25 members, once.
    const retry = await call(new MemberRegistry(client(), TABLE), org, body, "paused-key");
    assert.equal(retry.statusCode, 200);
    assert.equal(await heads(), 25);
    const again = await call(new MemberRegistry(client(), TABLE), org, body, "paused-key");
    assert.deepEqual(again, retry);
    assert.equal(await heads(), 25);
  });

  it("answers 503 within the budget when the backend is killed during a transaction", async () => {
    const pid = moto.proc.pid as number;
    const registry = new MemberRegistry(
      client(() => process.kill(-pid, "SIGKILL")),
      TABLE,
    );
    const started = Date.now();
    let answer: APIGatewayProxyResult | Error;
    try {
      answer = await call(registry, "killed", transaction(25));
    } catch (error) {
      answer = error as Error;
    }
    assert.equal((answer as { statusCode?: number }).statusCode, 503);
    assert.ok(Date.now() - started < 9_000);
    await startBackend();
  });

  it("exports a consistent cut: a transaction committed while the export reads is in it whole", async () => {
    // Prepare: two members registered together, then read by an export that
    // sees one head per page while a transaction updates both in between.
    const org = "cut";
    const registry = new MemberRegistry(client(), TABLE);
    const created = await call(registry, org, transaction(2));
    const ids = (JSON.parse(created.body).entry as { response: { location: string } }[]).map(
      (e) => e.response.location.split("/")[1],
    );
    const [first] = [...ids].sort();
    const reader = client();
    let pages = 0;
    reader.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === "QueryCommand") {
          (args.input as { Limit?: number }).Limit = 1;
          const out = await next(args);
          pages += 1;
          if (pages === 1) {
            // The first head was read in version 1: now both become version 2.
            const body = (id: string) => ({
              resourceType: "Bundle",
              type: "transaction",
              entry: [id, ids.find((x) => x !== id) as string].map((x) => ({
                resource: { ...patientFor(x), id: x },
                request: { method: "PUT", url: `Patient/${x}` },
              })),
            });
            const updated = await call(registry, org, body(first));
            assert.equal(updated.statusCode, 200);
          }
          return out;
        }
        return next(args);
      },
      { step: "initialize" },
    );
    const heads = await registry.read(
      org,
      { heads: ids.map((id) => ({ type: "Patient", id })) },
      new Deadline(5000),
    );
    const patientFor = (id: string) => heads.heads.get(`Patient/${id}`)?.body as Json;
    // Act
    const exported = [];
    for await (const page of new MemberRegistry(reader, TABLE).exportHeads(org, new Deadline(5000)))
      exported.push(...page);
    // Assess: without the re-read the first head would still be version 1
    assert.ok(pages >= 2, "the export paged");
    assert.deepEqual(
      exported.map((h) => [h.id, h.version]).sort(),
      ids.map((id) => [id, 2]).sort(),
    );
  });
});
