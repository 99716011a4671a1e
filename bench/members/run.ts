import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { CreateBucketCommand, S3Client } from "@aws-sdk/client-s3";
import { CreateSecretCommand, SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from "aws-lambda";
import * as esbuild from "esbuild";
import { bundleHandler } from "../../contracts/bundle";
import { EXAMPLES } from "../../contracts/openapi";
import { validateBundleShape, validateMember } from "../../handlers/lib/fhir";
import { createRegistryTable } from "../../local/registryTable";
import { startMoto, stopMoto } from "../../test/support/moto";
import { countingProxy } from "../../test/support/oidc";
import { baselineBundle, coldLoadPair, commitBefore, median, ms, percentile, table } from "../lib";

/**
 * bench/members: p50/p99 of FHIR validation and of the whole POST /members
 * handler (the bundled app, DynamoDB emulated by moto on loopback) for a
 * single Patient, a 25-entry transaction of POSTs and a 25-entry transaction
 * of PUTs of registered members, with the registry calls each makes
 * (counted); the app bundle's size and cold load. Targets: a transaction
 * costs a constant number of round trips; PUT transactions within 1.5x of
 * POST transactions; one Patient p50 no worse than the S3 registry's 8.5 ms;
 * 100-entry bundle validated in under 5 ms p50; cold load under 150 ms
 * and at most 20 ms over today's bundle (main's, built and loaded in the same
 * run, alternately); the validator's one-off model build on the first call.
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

/** Wall time of each run (ms); `cpu` gets this process's CPU time of each (ms), which other load on a shared machine inflates less. */
function time(fn: () => unknown, runs: number, cpu: number[] = []): number[] {
  const out: number[] = [];
  for (let i = 0; i < runs; i++) {
    const c = process.cpuUsage();
    const t = process.hrtime.bigint();
    fn();
    out.push(Number(process.hrtime.bigint() - t) / 1e6);
    const used = process.cpuUsage(c);
    cpu.push((used.user + used.system) / 1e3);
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

/**
 * The validator's first call in a fresh process (it builds its model from the
 * generated R4 definitions then), against the second: medians of `runs`.
 */
function firstValidation(runs: number): {
  requireMs: number[];
  firstMs: number[];
  secondMs: number[];
} {
  const fhir = path.join(__dirname, "..", "..", "handlers", "lib", "fhir.ts");
  const code = esbuild.buildSync({
    stdin: {
      contents: `const h=()=>Number(process.hrtime.bigint())/1e6;const p=${JSON.stringify(patient)};
const t0=h();const f=require(${JSON.stringify(fhir)});const t1=h();
if(f.validateMember(p).length)throw new Error("invalid");const t2=h();f.validateMember(p);const t3=h();
process.stdout.write(JSON.stringify([t1-t0,t2-t1,t3-t2]));`,
      resolveDir: __dirname,
      loader: "js",
    },
    bundle: true,
    platform: "node",
    target: "node22",
    minify: true,
    write: false,
    logLevel: "silent",
  }).outputFiles[0].text;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "hoth-bench-first-"));
  const file = path.join(dir, "first.js");
  fs.writeFileSync(file, code);
  const out = { requireMs: [] as number[], firstMs: [] as number[], secondMs: [] as number[] };
  for (let i = 0; i < runs; i++) {
    const run = spawnSync(process.execPath, [file], { encoding: "utf8" });
    if (run.status !== 0) throw new Error(`first validation failed: ${run.stderr || run.error}`);
    const [r, f, s] = JSON.parse(run.stdout) as number[];
    out.requireMs.push(r);
    out.firstMs.push(f);
    out.secondMs.push(s);
  }
  fs.rmSync(dir, { recursive: true, force: true });
  return out;
}

/** The app bundle of the commit before the DynamoDB registry (its S3 registry), if git has it. */
function s3RegistryBaseline() {
  const git = (...args: string[]) =>
    spawnSync("git", args, { cwd: path.join(__dirname, "..", ".."), encoding: "utf8" });
  const removed = git(
    "rev-list",
    "-n",
    "1",
    "HEAD",
    "--",
    "handlers/lib/memberStore.ts",
  ).stdout.trim();
  return removed ? baselineBundle("app", `${removed}^`) : undefined;
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
  const vTxCpu: number[] = [];
  const vTx = time(validateTx, 500, vTxCpu);

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
      requestContext: {
        requestId: "bench",
        authorizer: { org: "bench", scopes: "system/Patient.cruds system/Coverage.cruds" },
      },
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

  // The S3 registry this one replaced (the app bundle of the commit before the
  // DynamoDB registry), on the same moto in the same run, for "one Patient".
  const s3Baseline = s3RegistryBaseline();
  let hSingleS3: number[] = [];
  let s3Handler: Handler | undefined;
  if (s3Baseline) {
    const bucket = `bench-s3-registry-${Date.now()}`;
    await new S3Client({ forcePathStyle: true }).send(new CreateBucketCommand({ Bucket: bucket }));
    const s3File = path.join(dir, "s3-registry.js");
    fs.writeFileSync(s3File, s3Baseline.code);
    process.env.LAKE_BUCKET = bucket;
    s3Handler = (require(s3File) as { handler: Handler }).handler;
    process.env.LAKE_BUCKET = env.LAKE_BUCKET;
  }

  // Timings, direct to moto (the two registries alternate in rounds of 20).
  await timeAsync(() => call(handler, newPatient(), 201), 20);
  const hSingle: number[] = [];
  for (let round = 0; round < 10; round++) {
    hSingle.push(...(await timeAsync(() => call(handler, newPatient(), 201), 20)));
    if (s3Handler) {
      const h = s3Handler;
      hSingleS3.push(...(await timeAsync(() => call(h, newPatient(), 201), 20)));
    }
  }
  if (!s3Handler) hSingleS3 = [];
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

  // The app before the R4 validator replaced the JSON-schema one (issue 13's budget).
  const baseline = baselineBundle(
    "app",
    process.env.BENCH_BASELINE ?? commitBefore("handlers/generated/fhirValidators.js"),
  );
  const baseFile = path.join(dir, "baseline.js");
  if (baseline) fs.writeFileSync(baseFile, baseline.code);
  const loads = coldLoadPair(file, baseline ? baseFile : file, { ...env, AWS_REGION: "us-east-1" });
  const loadMs = loads.a;
  const first = firstValidation(10);
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
      ...(hSingleS3.length
        ? [
            [
              "handler: one Patient (201), the S3 registry before",
              hSingleS3.length,
              ms(median(hSingleS3)),
              ms(percentile(hSingleS3, 99)),
              "",
            ],
          ]
        : []),
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
      ...(baseline
        ? [
            [
              `cold module load of the bundle before the R4 validator (${baseline.ref}), same run`,
              ms(median(loads.b)),
              "",
            ],
            [
              "cold load growth over the bundle before the R4 validator",
              ms(median(loadMs) - median(loads.b)),
              "<= 20 ms",
            ],
            [
              "cold load growth, median of the paired differences",
              ms(median(loadMs.map((a, i) => a - loads.b[i]))),
              "<= 20 ms",
            ],
            ["size of the bundle before the R4 validator", `${baseline.code.length} bytes`, ""],
          ]
        : [["the bundle before the R4 validator", "not found (git)", ""]]),
      ["100-entry validation p50", ms(median(vTx)), "< 5 ms"],
      ["100-entry validation p50, CPU time of this process", ms(median(vTxCpu)), ""],
      [
        "one Patient p50",
        ms(median(hSingle)),
        s3Baseline
          ? `<= the S3 registry's p50 in this run: ${ms(median(hSingleS3))} (${s3Baseline.ref})`
          : "<= 8.5 ms (the S3 registry's figure before this change)",
      ],
      ["PUT / POST transaction p50", `${(median(hPuts) / median(hPosts)).toFixed(2)}x`, "<= 1.5x"],
    ],
  );
  console.log();
  table(
    ["validator in a fresh process, median of 10", "value"],
    [
      ["require handlers/lib/fhir", ms(median(first.requireMs))],
      ["first validateMember (builds the R4 model)", ms(median(first.firstMs))],
      ["second validateMember", ms(median(first.secondMs))],
    ],
  );
}

main().catch((e) => {
  console.error(e);
  stopMoto();
  process.exit(1);
});
