import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { CreateKeyCommand, GetPublicKeyCommand, KMSClient } from "@aws-sdk/client-kms";
import { CreateBucketCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { CreateSecretCommand, SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { BULK_DOWNLOAD_TIMEOUT_SECONDS, BULK_STEP_TIMEOUT_SECONDS } from "../contracts/budgets";
import { bundleHandler } from "../contracts/bundle";
import { parseStackConfig } from "../contracts/config";
import { type GlueJobKind, glueJobName, JOBS } from "../contracts/glueJobNames";
import type { BulkDefinitionArgs } from "../contracts/migrationDefinition";
import { migrationDefinition } from "../contracts/migrationDefinition";
import { ROUTES } from "../contracts/routes";
import { jwks, publicJwk } from "../handlers/lib/smartBackend";
import { startApiGateway } from "./apiGateway";
import { type RegisteredClient, startBulkSource } from "./bulkSource";
import { type LocalJob, startGlue } from "./glue";
import { startLambda } from "./lambda";
import { startMoto, stopMoto } from "./moto";
import { LOCAL_CLIENTS, startOkta } from "./okta";
import type { PyEvent } from "./python";
import { createRegistryTable } from "./registryTable";
import { stackConfigFile } from "./stackConfig";
import { type PublishedEvent, startStepFunctions } from "./stepFunctions";

/**
 * The platform on one machine, wired the way the Pulumi program wires it:
 * moto (Secrets Manager, S3) seeded from the same typed stack config, a local
 * Okta, the local Glue (the real job scripts on warm local Spark), Step
 * Functions running the same definition, and the API Gateway emulator in
 * front of the two Lambda bundles Pulumi ships, each in its own worker with
 * its own environment.
 */

const ROOT = path.join(__dirname, "..");
const ACCOUNT = "000000000000";
const REGION = "us-east-1";
/** The lake's top-level prefixes (components/glueJobs.ts). */
const LAKE_PREFIXES = ["landing/", "curated/", "quarantine/", "reports/", "scripts/", "tmp/"];

export interface LocalStackOptions {
  /** @default "dev" */
  stack?: string;
  apiPort?: number;
  oktaPort?: number;
  /** The AWS emulator's port. @default a free port */
  awsPort?: number;
  /** The local Bulk Data source's port (the `local` source of the stack config). @default a free port */
  bulkPort?: number;
  /** Overrides the stack's authorizer result cache TTL (s); 0 turns the cache off. */
  authorizerCacheTtlSeconds?: number;
  /** Progress lines (npm start prints them). */
  log?: (line: string) => void;
  /** Migration events (Step Functions executions, Glue runs, published events). */
  onMigrationEvent?: (line: string) => void;
}

export type LocalStack = Awaited<ReturnType<typeof startStack>>;

export async function startStack(o: LocalStackOptions = {}) {
  const log = o.log ?? (() => {});
  const report = o.onMigrationEvent ?? (() => {});
  const stack = o.stack ?? "dev";
  const config = parseStackConfig(stack, stackConfigFile(stack));
  const p = config.prefix;
  const lakeBucket = `${p}-lake`;
  const ids = {
    okta: `${p}/okta-settings`,
    app: `${p}/app`,
    tokenization: `${p}/tokenization-key`,
  };
  const stops: (() => Promise<void>)[] = [];
  const stopAll = async () => {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
    stops.length = 0;
  };

  try {
    log(`stack ${stack}: starting the AWS emulator (moto) and the local Okta`);
    const [motoUrl, okta] = await Promise.all([
      startMoto(o.awsPort),
      startOkta({
        port: o.oktaPort ?? 0,
        audience: config.okta.audience,
        orgClaim: config.okta.orgClaim,
      }),
    ]);
    stops.push(stopMoto, okta.stop);

    log("starting local Glue (Spark warms up in the background)");
    const jobs: Record<string, LocalJob> = Object.fromEntries(
      (Object.keys(JOBS) as GlueJobKind[]).map((kind): [string, LocalJob] => [
        glueJobName(p, kind),
        {
          script: path.join(ROOT, "glue", "jobs", JOBS[kind].script),
          defaultArguments:
            kind === "ingest" ? { "--tokenization_secret_id": ids.tokenization } : {},
        },
      ]),
    );
    const glue = await startGlue({ jobs, awsEndpoint: motoUrl });
    stops.push(glue.stop);
    glue.onEvent((e: PyEvent) => {
      if (e.event === "run") report(`glue ${e.job} ${e.id}: ${e.state}`);
    });

    log("seeding secrets and the data lake from the stack config");
    const sm = new SecretsManagerClient({});
    const seed = async (name: string, value: unknown) =>
      sm
        .send(new CreateSecretCommand({ Name: name, SecretString: JSON.stringify(value) }))
        .catch((e: Error) => {
          if (e.name !== "ResourceExistsException") throw e;
        });
    const s3 = new S3Client({ forcePathStyle: true });
    await Promise.all([
      seed(ids.okta, {
        issuer: okta.issuer,
        audience: config.okta.audience,
        allowedClientIds: LOCAL_CLIENTS.map((c) => c.clientId),
        jwksUri: okta.jwksUri,
      }),
      seed(ids.app, { signingKey: randomBytes(24).toString("base64") }),
      seed(ids.tokenization, { key: randomBytes(32).toString("base64") }),
      s3
        .send(new CreateBucketCommand({ Bucket: lakeBucket }))
        .catch((e: Error) => {
          if (e.name !== "BucketAlreadyOwnedByYou") throw e;
        })
        .then(() =>
          Promise.all(
            LAKE_PREFIXES.map((Key) =>
              s3.send(
                new PutObjectCommand({ Bucket: lakeBucket, Key, Body: "", ContentLength: 0 }),
              ),
            ),
          ),
        ),
    ]);

    const registryTable = await createRegistryTable(p);
    // The stack key (SecretStore's, in AWS) that upload forms name for SSE-KMS.
    const lakeKey = await new KMSClient({}).send(
      new CreateKeyCommand({ Description: `${p} lake key (local)` }),
    );
    const lakeKeyArn = lakeKey.KeyMetadata?.Arn as string;

    // SMART Backend Services: an asymmetric signing key in the emulated KMS
    // (moto signs ECDSA_SHA_384 and RSASSA_PKCS1_V1_5_SHA_384 with RAW
    // messages), its public JWKS, and the local Bulk Data source standing in
    // for the stack's source named `local`, which trusts that JWKS by URL.
    const kms = new KMSClient({});
    const signingKey = await kms.send(
      new CreateKeyCommand({
        Description: `${p} bulk signing key (local)`,
        KeyUsage: "SIGN_VERIFY",
        KeySpec: config.bulk.signingKeySpec,
      }),
    );
    const signingKeyArn = signingKey.KeyMetadata?.Arn as string;
    const publicKey = (await kms.send(new GetPublicKeyCommand({ KeyId: signingKeyArn })))
      .PublicKey as Uint8Array;
    const bulkJwks = JSON.stringify(
      jwks([publicJwk(publicKey, config.bulk.signingKeySpec === "RSA_3072" ? "RS384" : "ES384")]),
    );
    const localSource = config.bulk.sources.find((s) => s.name === "local");
    const bulkClient: RegisteredClient = {
      clientId: localSource?.clientId ?? `${p}-local`,
      scopes: localSource?.scopes ?? ["system/*.read"],
    };
    const bulkSource = await startBulkSource({ clients: [bulkClient], port: o.bulkPort ?? 0 });
    stops.push(bulkSource.stop);
    const bulkSources = config.bulk.sources.map((s) =>
      s.name === "local"
        ? { ...s, fhirBaseUrl: bulkSource.baseUrl, tokenUrl: bulkSource.tokenUrl }
        : s,
    );
    const bulkArn = (step: string) =>
      `arn:aws:lambda:${REGION}:${ACCOUNT}:function:${p}-bulk-${step}`;
    const BULK_STEPS = ["initiate", "poll", "download", "check", "delete"] as const;
    const bulkFunctions: Record<string, { invoke: (event: unknown) => Promise<unknown> }> = {};
    const bulk: BulkDefinitionArgs = {
      functionArns: Object.fromEntries(
        BULK_STEPS.map((s) => [s, bulkArn(s)]),
      ) as BulkDefinitionArgs["functionArns"],
      deadlineSeconds: config.bulk.deadlineSeconds,
      downloadConcurrency: config.bulk.downloadConcurrency,
      stepTimeoutSeconds: BULK_STEP_TIMEOUT_SECONDS,
      downloadTimeoutSeconds: BULK_DOWNLOAD_TIMEOUT_SECONDS,
    };

    const stateMachineArn = `arn:aws:states:${REGION}:${ACCOUNT}:stateMachine:${p}-migration`;
    const exportArn = `arn:aws:lambda:${REGION}:${ACCOUNT}:function:${p}-registry-export`;
    // Started below with the other bundles; the state machine calls it through this.
    let registryExport: { invoke: (event: unknown) => Promise<unknown> } | undefined;
    const sfn = await startStepFunctions({
      stateMachineArn,
      definition: migrationDefinition({
        legacyJobName: glueJobName(p, "legacy"),
        ingestJobName: glueJobName(p, "ingest"),
        lakeBucket,
        eventBusName: `${p}-migrations`,
        legacyTimeoutSeconds: config.glue.timeoutMinutes * 60,
        ingestTimeoutSeconds: config.glue.timeoutMinutes * 60,
        registryExportFunctionArn: exportArn,
        registryExportTimeoutSeconds: config.registry.exportTimeoutSeconds,
        bulk,
      }),
      glue,
      functions: {
        [exportArn]: (payload) =>
          registryExport ? registryExport.invoke(payload) : Promise.reject(new Error("not ready")),
        ...Object.fromEntries(
          BULK_STEPS.map((s) => [
            bulkArn(s),
            (payload: unknown) =>
              bulkFunctions[s]
                ? bulkFunctions[s].invoke(payload)
                : Promise.reject(new Error("not ready")),
          ]),
        ),
      },
      onEvent: (e: PublishedEvent) =>
        report(`event ${e.DetailType} ${JSON.stringify(e.Detail)} (bus ${e.EventBusName})`),
      onExecution: (e) =>
        report(`migration ${e.name}: ${e.status}${e.error ? ` (${e.error})` : ""}`),
    });
    stops.push(sfn.stop);

    log("loading the handler bundles (the same bytes Pulumi ships)");
    const common = {
      AWS_ENDPOINT_URL: motoUrl,
      AWS_ENDPOINT_URL_SFN: sfn.url,
      AWS_REGION: REGION,
      AWS_ACCESS_KEY_ID: "testing",
      AWS_SECRET_ACCESS_KEY: "testing",
      SECRET_CACHE_TTL_SECONDS: String(config.secretCacheTtlSeconds),
      LOG_LEVEL: process.env.LOG_LEVEL ?? "WARN",
    };
    const lambda = async (
      name: "app" | "authorizer" | "registryExport" | "bulk",
      environment: Record<string, string>,
      timeoutSeconds = config.lambda.timeoutSeconds,
      functionName: string = name,
    ) => {
      // One directory per function: workers of one bundle start at once.
      const dir = path.join(ROOT, ".local", "dist", `${stack}-${functionName}`);
      fs.mkdirSync(dir, { recursive: true });
      const file = path.join(dir, "index.js");
      fs.writeFileSync(file, bundleHandler(name).code);
      const fn = await startLambda({
        functionName: `${p}-${functionName}`,
        file,
        environment: { ...common, ...environment },
        timeoutSeconds,
        memoryMb: config.lambda.memorySizeMb,
      });
      stops.push(fn.stop);
      return fn;
    };
    // The environments of components/authorizedApi.ts and index.ts.
    const [authorizer, app, exporter] = await Promise.all([
      lambda("authorizer", {
        OKTA_SECRET_ID: ids.okta,
        OKTA_SETTINGS_TTL_SECONDS: String(config.secretCacheTtlSeconds),
        // The local issuer is plain http on loopback; Okta itself is https.
        OKTA_ALLOW_INSECURE_ISSUER: "true",
        ORG_CLAIM: config.okta.orgClaim,
      }),
      lambda("app", {
        APP_SECRET_ID: ids.app,
        STACK: `local-${stack}`,
        STATE_MACHINE_ARN: stateMachineArn,
        LAKE_BUCKET: lakeBucket,
        REGISTRY_TABLE: registryTable,
        UPLOAD_KEY_ARN: lakeKeyArn,
        UPLOAD_MAX_BYTES: String(config.uploads.maxBytes),
        UPLOAD_EXPIRES_SECONDS: String(config.uploads.expiresSeconds),
        BULK_JWKS: bulkJwks,
        BULK_SOURCE_NAMES: bulkSources.map((s) => s.name).join(","),
      }),
      lambda(
        "registryExport",
        { REGISTRY_TABLE: registryTable, LAKE_BUCKET: lakeBucket },
        config.registry.exportTimeoutSeconds,
      ),
    ]);
    registryExport = exporter;
    // The bulk functions: one bundle, one function per step (components/bulkFunctions.ts).
    await Promise.all(
      BULK_STEPS.map(async (s) => {
        bulkFunctions[s] = await lambda(
          "bulk",
          {
            BULK_STEP: s,
            BULK_SOURCES: JSON.stringify(bulkSources),
            SIGNING_KEY_ARN: signingKeyArn,
            SIGNING_PUBLIC_KEY: Buffer.from(publicKey).toString("base64"),
            SIGNING_KEY_SPEC: config.bulk.signingKeySpec,
            LAKE_BUCKET: lakeBucket,
            LAKE_KEY_ARN: lakeKeyArn,
          },
          s === "download" ? BULK_DOWNLOAD_TIMEOUT_SECONDS : BULK_STEP_TIMEOUT_SECONDS,
          `bulk-${s}`,
        );
      }),
    );
    const api = await startApiGateway({
      routes: ROUTES,
      stage: "local",
      authorizer: (event) => authorizer.invoke(event),
      app: (event, context) => app.invoke(event, context.awsRequestId),
      cacheTtlSeconds: o.authorizerCacheTtlSeconds ?? config.api.authorizerCacheTtlSeconds,
      timeoutMs: config.lambda.timeoutSeconds * 1000,
      port: o.apiPort ?? 0,
    });
    stops.push(api.stop);
    // The source verifies HOTH's client assertions against the JWKS the API publishes.
    bulkClient.jwksUrl = `${api.url}/.well-known/jwks.json`;

    return {
      stack,
      apiUrl: api.url,
      tokenUrl: okta.tokenUrl,
      issuer: okta.issuer,
      motoUrl,
      lakeBucket,
      lakeKeyArn,
      signingKeyArn,
      bulkSource,
      registryTable,
      stateMachineArn,
      /** Resolves when Spark is warm (migrations run from then on). */
      sparkReady: glue.sparkReady,
      glueLog: glue.logFile,
      events: sfn.events,
      settled: sfn.settled,
      stop: stopAll,
    };
  } catch (error) {
    await stopAll();
    throw error;
  }
}
