import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { CreateSecretCommand, SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from "aws-lambda";
import { bundleHandler } from "../../components/bundle";
import { EXAMPLES } from "../../components/openapi";
import { validateBundleShape, validateMember } from "../../handlers/lib/fhir";
import { createRegistryTable } from "../../local/registryTable";
import { startMoto, stopMoto } from "../../test/support/moto";
import { countingProxy } from "../../test/support/oidc";
import { coldLoad, median, ms, percentile, table } from "../lib";

/**
 * bench/members: p50/p99 of FHIR validation and of the whole POST /members
 * handler (the bundled app, DynamoDB emulated by moto on loopback) for a
 * single Patient, a 25-entry transaction of POSTs and a 25-entry transaction
 * of PUTs of registered members, with the registry calls each makes
 * (counted); the app bundle's size and cold load. Targets: a transaction
 * costs a constant number of round trips; PUT transactions within 1.5x of
 * POST transactions; one Patient p50 no worse than the S3 registry's 8.5 ms;
 * 100-entry bundle validated in under 5 ms p50; cold load under 150 ms.
 */

type Json = Record<string, unknown>;
const patient = EXAMPLES.patient as Json;

function transaction(n: number): Json {
  const entry = Array.from({ length: n }, (_, i) =>
    i % 2 === 0
      ? {
          fullUrl: `urn:uuid:00000000-0000-4000-8000-${String(i).padStart(12, "0")}`,
          resource: {
            ...patient,
            identifier: [{ system: "https://example-health.org/member-id", value: `MBR-${i}` }],
          },
          request: { method: "POST", url: "Patient" },
        }
      : {
          resource: {
            resourceType: "Coverage",
            status: "active",
            beneficiary: {
              reference: `urn:uuid:00000000-0000-4000-8000-${String(i - 1).padStart(12, "0")}`,
            },
            payor: [{ display: "Example Health Plan" }],
          },
          request: { method: "POST", url: "Coverage" },
        },
  );
  return { resourceType: "Bundle", type: "transaction", entry };
}

function time(fn: () => unknown, runs: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = process.hrtime.bigint();
    fn();
    out.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  return out;
}

async function timeAsync(fn: () => Promise<unknown>, runs: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = process.hrtime.bigint();
    await fn();
    out.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  return out;
}

async function main() {
  const tx = transaction(100);
  const validateTx = () => {
    validateBundleShape(tx);
    for (const [i, e] of (tx.entry as Json[]).entries()) {
      validateMember(e.resource, `Bundle.entry[${i}].resource`);
    }
  };
  time(validateTx, 50); // warm up
  const vSingle = time(() => validateMember(patient), 2000);
  const vTx = time(validateTx, 500);

  await startMoto();
  const motoUrl = process.env.AWS_ENDPOINT_URL as string;
  const tableName = await createRegistryTable("bench", `bench-registry-${Date.now()}`);
  const secret = `bench/app-${Date.now()}`;
  await new SecretsManagerClient({}).send(
    new CreateSecretCommand({ Name: secret, SecretString: "{}" }),
  );
  const env = {
    APP_SECRET_ID: secret,
    STATE_MACHINE_ARN: "arn:aws:states:us-east-1:123456789012:stateMachine:bench",
    LAKE_BUCKET: "unused",
    REGISTRY_TABLE: tableName,
    UPLOAD_KEY_ARN: "arn:aws:kms:us-east-1:123456789012:key/unused",
    UPLOAD_MAX_BYTES: "1048576",
  };
  Object.assign(process.env, env);
  const { code } = bundleHandler("app");
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "hoth-bench-members-"));
  const file = path.join(dir, "index.js");
  fs.writeFileSync(file, code);
  type Handler = (e: APIGatewayProxyEvent, c: Context) => Promise<APIGatewayProxyResult>;
  const { handler } = require(file) as { handler: Handler };

  let serial = 0;
  const newPatient = () => ({
    ...patient,
    identifier: [{ system: "https://example-health.org/member-id", value: `B-${++serial}` }],
  });
  const posts = (n: number) => ({
    resourceType: "Bundle",
    type: "transaction",
    entry: Array.from({ length: n }, () => ({
      resource: newPatient(),
      request: { method: "POST", url: "Patient" },
    })),
  });
  const puts = (members: Json[]) => ({
    resourceType: "Bundle",
    type: "transaction",
    entry: members.map((m) => ({
      resource: m,
      request: { method: "PUT", url: `Patient/${m.id}` },
    })),
  });
  const event = (body: unknown) =>
    ({
      httpMethod: "POST",
      path: "/members",
      resource: "/members",
      headers: { "Content-Type": "application/fhir+json" },
      body: JSON.stringify(body),
      isBase64Encoded: false,
      requestContext: { requestId: "bench", authorizer: { org: "bench" } },
    }) as unknown as APIGatewayProxyEvent;
  const ctx = { awsRequestId: "bench", getRemainingTimeInMillis: () => 10_000 } as Context;
  const call = async (h: Handler, body: unknown, status: number) => {
    const r = await h(event(body), ctx);
    if (r.statusCode !== status)
      throw new Error(`expected ${status}, got ${r.statusCode}: ${r.body.slice(0, 200)}`);
    return JSON.parse(r.body) as Json;
  };
  /** 25 registered members, as PUT bodies that keep their identifiers. */
  const registered = async (h: Handler) => {
    const body = posts(25);
    const out = await call(h, body, 200);
    return (out.entry as { response: { location: string } }[]).map((e, i) => ({
      ...(body.entry[i].resource as Json),
      id: e.response.location.split("/")[1],
      active: true,
    }));
  };

  // Timings, direct to moto.
  await timeAsync(() => call(handler, newPatient(), 201), 20);
  const hSingle = await timeAsync(() => call(handler, newPatient(), 201), 200);
  const hPosts = await timeAsync(() => call(handler, posts(25), 200), 30);
  const members = await registered(handler);
  const hPuts = await timeAsync(() => call(handler, puts(members), 200), 30);

  // A second copy of the bundle, loaded with its endpoint on a proxy that
  // counts DynamoDB calls by operation (timings above are direct to moto).
  const proxy = await countingProxy(motoUrl);
  const counted = path.join(dir, "counted.js");
  fs.writeFileSync(counted, code);
  process.env.AWS_ENDPOINT_URL = proxy.url;
  const { handler: countedHandler } = require(counted) as { handler: Handler };
  // Calls per request, counted through the proxy.
  const OPS = ["TransactWriteItems", "BatchGetItem", "GetItem", "Query", "PutItem"];
  const callsOf = async (fn: () => Promise<unknown>) => {
    const before = OPS.map((op) => proxy.count(`DynamoDB_20120810.${op}`));
    await fn();
    return OPS.map((op, i) => [op, proxy.count(`DynamoDB_20120810.${op}`) - before[i]] as const)
      .filter(([, n]) => n > 0)
      .map(([op, n]) => `${n} ${op}`)
      .join(" + ");
  };
  const countedMembers = await registered(countedHandler);
  const calls = {
    single: await callsOf(() => call(countedHandler, newPatient(), 201)),
    posts: await callsOf(() => call(countedHandler, posts(25), 200)),
    puts: await callsOf(() => call(countedHandler, puts(countedMembers), 200)),
  };
  await proxy.close();

  stopMoto();

  const { loadMs } = coldLoad(file, { ...env, AWS_REGION: "us-east-1" });
  fs.rmSync(dir, { recursive: true, force: true });

  console.log(
    `bench/members on Node ${process.version}, ${os.cpus().length} cores, load ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(" ")}; DynamoDB = moto on loopback\n`,
  );
  table(
    ["what", "runs", "p50", "p99", "registry calls per request"],
    [
      [
        "validate one Patient",
        vSingle.length,
        ms(median(vSingle)),
        ms(percentile(vSingle, 99)),
        "",
      ],
      ["validate 100-entry transaction", vTx.length, ms(median(vTx)), ms(percentile(vTx, 99)), ""],
      [
        "handler: one Patient (201)",
        hSingle.length,
        ms(median(hSingle)),
        ms(percentile(hSingle, 99)),
        calls.single,
      ],
      [
        "handler: 25-entry transaction of POSTs (200)",
        hPosts.length,
        ms(median(hPosts)),
        ms(percentile(hPosts, 99)),
        calls.posts,
      ],
      [
        "handler: 25-entry transaction of PUTs (200)",
        hPuts.length,
        ms(median(hPuts)),
        ms(percentile(hPuts, 99)),
        calls.puts,
      ],
    ],
  );
  console.log();
  table(
    ["figure", "value", "target"],
    [
      ["app bundle size", `${code.length} bytes`, ""],
      ["cold module load, median of 20", ms(median(loadMs)), "< 150 ms"],
      ["100-entry validation p50", ms(median(vTx)), "< 5 ms"],
      ["one Patient p50", ms(median(hSingle)), "<= 8.5 ms (S3 registry, same bench)"],
      ["PUT / POST transaction p50", `${(median(hPuts) / median(hPosts)).toFixed(2)}x`, "<= 1.5x"],
    ],
  );
}

main().catch((e) => {
  console.error(e);
  stopMoto();
  process.exit(1);
});
