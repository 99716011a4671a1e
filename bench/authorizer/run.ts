import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
  CreateSecretCommand,
  GetSecretValueCommand,
  SecretsManagerClient,
} from "@aws-sdk/client-secrets-manager";

import OktaJwtVerifier = require("@okta/jwt-verifier");

import { JwtRsaVerifier } from "aws-jwt-verify";
import type { APIGatewayAuthorizerResult, APIGatewayRequestAuthorizerEvent } from "aws-lambda";
import { bundleHandler } from "../../contracts/bundle";
import "../../local/node22";
import { startMoto, stopMoto } from "../../test/support/moto";
import { countingProxy, startIssuer } from "../../test/support/oidc";
import { coldLoad, median, ms, percentile, table } from "../lib";

/**
 * bench/authorizer: the bundled authorizer against a local OIDC issuer and
 * moto on loopback, with three baselines measured in the same run: the
 * literal flow (read the secret and build a verifier per request), a bare
 * aws-jwt-verify verify, and a bare @okta/jwt-verifier verify.
 */

const CLIENT = "0oa-bench";
const AUDIENCE = "api://bench";
const API = "arn:aws:execute-api:us-east-1:123456789012:bench1/dev";

async function timed(n: number, fn: (i: number) => Promise<unknown>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = process.hrtime.bigint();
    await fn(i);
    out.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  return out;
}

const event = (token: string) =>
  ({
    type: "REQUEST",
    methodArn: `${API}/POST/members`,
    headers: { Authorization: `Bearer ${token}`, "X-Client-Id": CLIENT },
    requestContext: { requestId: "bench" },
  }) as unknown as APIGatewayRequestAuthorizerEvent;

async function main() {
  const motoUrl = await startMoto();
  const proxy = await countingProxy(motoUrl);
  const issuer = await startIssuer({
    aud: AUDIENCE,
    cid: CLIENT,
    sub: CLIENT,
    scp: ["system/Patient.cruds"],
  });
  const secretId = `bench/okta-${Date.now()}`;
  const settings = {
    issuer: issuer.issuer,
    audience: AUDIENCE,
    allowedClientIds: [CLIENT],
    jwksUri: issuer.jwksUri,
  };
  await new SecretsManagerClient({}).send(
    new CreateSecretCommand({ Name: secretId, SecretString: JSON.stringify(settings) }),
  );
  const env = {
    OKTA_SECRET_ID: secretId,
    OKTA_ALLOW_INSECURE_ISSUER: "true",
    AWS_ENDPOINT_URL: proxy.url,
  };

  const { code } = bundleHandler("authorizer");
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "hoth-bench-authz-"));
  const file = path.join(dir, "index.js");
  fs.writeFileSync(file, code);
  Object.assign(process.env, env, { LOG_LEVEL: "ERROR" });
  const { handler } = require(file) as {
    handler: (e: APIGatewayRequestAuthorizerEvent) => Promise<APIGatewayAuthorizerResult>;
  };

  const same = await issuer.token();
  const fresh = await Promise.all(
    Array.from({ length: 1000 }, (_, i) => issuer.token({ jti: `f${i}` })),
  );
  const many = await Promise.all(
    Array.from({ length: 2000 }, (_, i) => issuer.token({ jti: `m${i}` })),
  );
  await handler(event(same)); // warm: settings, keys, JIT

  const repeated = await timed(2000, () => handler(event(same)));
  const freshTimes = await timed(fresh.length, (i) => handler(event(fresh[i])));

  // Calls to Secrets Manager and the JWKS endpoint per 10,000 decisions (a fifth fresh tokens).
  const [reads0, jwks0] = [proxy.count("secretsmanager.GetSecretValue"), issuer.jwksRequests()];
  for (let i = 0; i < 10_000; i++) await handler(event(i % 5 === 0 ? many[i % many.length] : same));
  const reads = proxy.count("secretsmanager.GetSecretValue") - reads0;
  const jwksCalls = issuer.jwksRequests() - jwks0;

  // Baselines, same run, same tokens.
  const sm = new SecretsManagerClient({ endpoint: proxy.url });
  const literal = await timed(200, async () => {
    const s = JSON.parse(
      (await sm.send(new GetSecretValueCommand({ SecretId: secretId }))).SecretString as string,
    );
    const v = new OktaJwtVerifier({
      issuer: s.issuer,
      jwksUri: s.jwksUri,
      testing: { disableHttpsCheck: true },
    });
    await v.verifyAccessToken(same, s.audience);
  });
  const jwks = (await (await fetch(issuer.jwksUri)).json()) as never;
  const aws = JwtRsaVerifier.create({
    issuer: issuer.issuer,
    audience: AUDIENCE,
    jwksUri: issuer.jwksUri,
  });
  aws.cacheJwks(jwks);
  await aws.verify(same);
  const bareAws = await timed(2000, () => aws.verify(same));
  const okta = new OktaJwtVerifier({
    issuer: issuer.issuer,
    jwksUri: issuer.jwksUri,
    testing: { disableHttpsCheck: true },
  });
  await okta.verifyAccessToken(same, AUDIENCE);
  const bareOkta = await timed(fresh.length, (i) => okta.verifyAccessToken(fresh[i], AUDIENCE));

  const { loadMs } = coldLoad(file, env);
  await issuer.stop();
  await proxy.close();
  stopMoto();
  fs.rmSync(dir, { recursive: true, force: true });

  const p50 = median;
  console.log(
    `bench/authorizer on Node ${process.version}, ${os.cpus().length} cores; Okta = local OIDC issuer, Secrets Manager = moto\n`,
  );
  table(
    ["measure", "runs", "p50", "p99"],
    [
      [
        "HOTH authorizer, same token repeated",
        repeated.length,
        ms(p50(repeated)),
        ms(percentile(repeated, 99)),
      ],
      [
        "HOTH authorizer, fresh token each time",
        freshTimes.length,
        ms(p50(freshTimes)),
        ms(percentile(freshTimes, 99)),
      ],
      [
        "baseline: literal flow (secret + new verifier per request)",
        literal.length,
        ms(p50(literal)),
        ms(percentile(literal, 99)),
      ],
      [
        "baseline: bare aws-jwt-verify verify",
        bareAws.length,
        ms(p50(bareAws)),
        ms(percentile(bareAws, 99)),
      ],
      [
        "baseline: bare @okta/jwt-verifier verify, fresh token",
        bareOkta.length,
        ms(p50(bareOkta)),
        ms(percentile(bareOkta, 99)),
      ],
    ],
  );
  console.log();
  table(
    ["figure", "value", "target"],
    [
      ["bundle size", `${code.length} bytes`, ""],
      ["cold module load, median of 20", ms(p50(loadMs)), ""],
      [
        "repeated p50 / bare aws-jwt-verify p50",
        `${(p50(repeated) / p50(bareAws)).toFixed(2)}x`,
        "<= 2x",
      ],
      [
        "fresh p50 / bare @okta/jwt-verifier p50",
        `${(p50(freshTimes) / p50(bareOkta)).toFixed(2)}x`,
        "<= 1.25x",
      ],
      [
        "literal flow p50 / repeated p50",
        `${(p50(literal) / p50(repeated)).toFixed(1)}x faster`,
        ">= 10x",
      ],
      [
        "literal flow p50 / fresh p50",
        `${(p50(literal) / p50(freshTimes)).toFixed(1)}x faster`,
        ">= 10x",
      ],
      ["Secrets Manager calls per 10,000 decisions", String(reads), "<= 1 per TTL (300 s)"],
      ["JWKS calls per 10,000 decisions", String(jwksCalls), ""],
    ],
  );
}

main().catch((e) => {
  console.error(e);
  stopMoto();
  process.exit(1);
});
