import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { CreateBucketCommand, S3Client } from "@aws-sdk/client-s3";
import { CreateSecretCommand, SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { CreateStateMachineCommand, SFNClient } from "@aws-sdk/client-sfn";
import { bundleHandler } from "../components/bundle";
import { parseStackConfig } from "../components/config";
import { migrationDefinition } from "../components/migrationDefinition";
import { ROUTES } from "../components/routes";
import { startApiGateway } from "./apiGateway";
import { startMoto, stopMoto } from "./moto";
import { LOCAL_CLIENTS, startOkta } from "./okta";
import { stackConfigFile } from "./stackConfig";

/**
 * The platform on one machine: moto (Secrets Manager, S3, Step Functions)
 * seeded from the same typed stack config as the Pulumi program, a local Okta,
 * and the API Gateway emulator running the same bundles Pulumi ships.
 */

const ROOT = path.join(__dirname, "..");

export interface LocalStackOptions {
  /** @default "dev" */
  stack?: string;
  apiPort?: number;
  oktaPort?: number;
  /** Progress lines (npm start prints them). */
  log?: (line: string) => void;
}

export async function startStack(o: LocalStackOptions = {}) {
  const log = o.log ?? (() => {});
  const stack = o.stack ?? "dev";
  const config = parseStackConfig(stack, stackConfigFile(stack));
  log(`stack ${stack}: starting the AWS emulator (moto)`);
  const motoUrl = await startMoto();
  log("starting the local Okta issuer");
  const okta = await startOkta({
    port: o.oktaPort ?? 0,
    audience: config.okta.audience,
    orgClaim: config.okta.orgClaim,
  });

  const lakeBucket = `${config.prefix}-lake`;
  const ids = {
    okta: `${config.prefix}/okta-settings`,
    app: `${config.prefix}/app`,
    tokenization: `${config.prefix}/tokenization-key`,
  };
  const sm = new SecretsManagerClient({});
  const seed = async (name: string, value: unknown) =>
    sm
      .send(new CreateSecretCommand({ Name: name, SecretString: JSON.stringify(value) }))
      .catch((e: Error) => {
        if (e.name !== "ResourceExistsException") throw e;
      });
  log("seeding secrets, the data lake and the state machine");
  await seed(ids.okta, {
    issuer: okta.issuer,
    audience: config.okta.audience,
    allowedClientIds: LOCAL_CLIENTS.map((c) => c.clientId),
    jwksUri: okta.jwksUri,
  });
  await seed(ids.app, { signingKey: randomBytes(24).toString("base64") });
  await seed(ids.tokenization, { key: randomBytes(32).toString("base64") });
  await new S3Client({ forcePathStyle: true })
    .send(new CreateBucketCommand({ Bucket: lakeBucket }))
    .catch(() => undefined);
  const machine = await new SFNClient({}).send(
    new CreateStateMachineCommand({
      name: `${config.prefix}-migration`,
      roleArn: "arn:aws:iam::123456789012:role/local-migration",
      definition: JSON.stringify(
        migrationDefinition({
          legacyJobName: `${config.prefix}-legacy-members-to-fhir`,
          ingestJobName: `${config.prefix}-ingest-fhir`,
          lakeBucket,
          eventBusName: `${config.prefix}-migrations`,
          legacyTimeoutSeconds: config.glue.timeoutMinutes * 60,
          ingestTimeoutSeconds: config.glue.timeoutMinutes * 60,
        }),
      ),
    }),
  );

  log("bundling the handlers (the same bytes Pulumi ships)");
  const load = <T>(name: "app" | "authorizer"): T => {
    const dir = path.join(ROOT, ".local", "dist", name);
    fs.mkdirSync(dir, { recursive: true });
    const file = path.join(dir, "index.js");
    fs.writeFileSync(file, bundleHandler(name).code);
    delete require.cache[file];
    return require(file) as T;
  };
  Object.assign(process.env, {
    OKTA_SECRET_ID: ids.okta,
    OKTA_ALLOW_INSECURE_ISSUER: "true",
    ORG_CLAIM: config.okta.orgClaim,
    APP_SECRET_ID: ids.app,
    STATE_MACHINE_ARN: machine.stateMachineArn,
    LAKE_BUCKET: lakeBucket,
    STACK: `local-${stack}`,
    LOG_LEVEL: process.env.LOG_LEVEL ?? "WARN",
  });
  const authorizer = load<{ handler: never }>("authorizer").handler;
  const app = load<{ handler: never }>("app").handler;
  const api = await startApiGateway({
    routes: ROUTES,
    stage: "local",
    authorizer,
    app,
    cacheTtlSeconds: config.api.authorizerCacheTtlSeconds,
    timeoutMs: config.lambda.timeoutSeconds * 1000,
    port: o.apiPort ?? 0,
  });
  return {
    apiUrl: api.url,
    tokenUrl: okta.tokenUrl,
    issuer: okta.issuer,
    motoUrl,
    lakeBucket,
    async stop() {
      await api.stop();
      await okta.stop();
      stopMoto();
    },
  };
}
