import { createHash } from "node:crypto";
import { SecretsManagerClient } from "@aws-sdk/client-secrets-manager";

import OktaJwtVerifier = require("@okta/jwt-verifier");

import type { APIGatewayAuthorizerResult, APIGatewayRequestAuthorizerEvent } from "aws-lambda";
import { ROUTES } from "../components/routes";
import { allowedRoutes, policyFor } from "./lib/authz";
import { envSeconds, requireEnv } from "./lib/env";
import { correlationId, createLogger } from "./lib/logger";
import { parseScopes, tokenScopes } from "./lib/scopes";
import { SecretCache } from "./lib/secrets";

/**
 * REQUEST authorizer: checks the request's shape, verifies the Okta access
 * token with @okta/jwt-verifier against the settings in Secrets Manager, and
 * returns a policy allowing exactly the routes the token's SMART scopes grant.
 * Fails closed: a bad token is `Unauthorized` (401); anything else failing is
 * an error (API Gateway answers 500), never an Allow. See docs/authorizer.md.
 */

const logger = createLogger("hoth-authorizer");
const settings = {
  oktaSecretId: requireEnv("OKTA_SECRET_ID"),
  orgClaim: process.env.ORG_CLAIM || "org",
  // Only the local stack and tests serve an issuer over http.
  allowInsecureIssuer: process.env.OKTA_ALLOW_INSECURE_ISSUER === "true",
};
const secrets = new SecretCache(
  new SecretsManagerClient({ maxAttempts: 2 }),
  envSeconds("OKTA_SETTINGS_TTL_SECONDS", 300),
);

export const MAX_TOKEN_BYTES = 8 * 1024;
const JWT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;
/** Verified tokens kept per container (LRU), each no longer than its exp or the settings' life. */
const DECISION_CACHE_SIZE = 1000;
/** Refresh the settings after a failure they could explain at most this often. */
const REFRESH_INTERVAL_MS = 30_000;

interface OktaSettings {
  issuer: string;
  audience: string;
  allowedClientIds: string[];
  jwksUri?: string;
}

/** A refusal of the token or request: API Gateway's 401. `reason` is logged, never the token. */
class Unauthorized extends Error {
  constructor(readonly reason: string) {
    super("Unauthorized");
    this.name = "Unauthorized";
  }
}

/** Refetch the JWKS for an unknown key id at most this often. */
const JWKS_REFETCH_MS = 10_000;
const JWKS_TIMEOUT_MS = 2_000;
/** Keys are refetched at least this often, so a key Okta withdrew stops verifying. */
const JWKS_MAX_AGE_MS = 60 * 60_000;

/**
 * The issuer's keys, fetched by the authorizer itself and handed to the
 * library (getKeysInterceptor): concurrent fetches share one request, and an
 * unknown key id triggers at most one refetch per JWKS_REFETCH_MS, so a flood
 * of made-up kids is refused at once instead of queueing behind jwks-rsa's
 * rate limiter.
 */
class Jwks {
  private keys: { kid?: string }[] = [];
  private fetchedAt = 0;
  private inFlight?: Promise<void>;

  constructor(private readonly uri: string) {}

  interceptor = () => this.keys as never;

  async has(kid: string): Promise<boolean> {
    const age = Date.now() - this.fetchedAt;
    if (age > JWKS_MAX_AGE_MS || (!this.known(kid) && age > JWKS_REFETCH_MS)) {
      await this.fetch();
    }
    return this.known(kid);
  }

  private known = (kid: string) => this.keys.some((k) => k.kid === kid);

  private fetch(): Promise<void> {
    this.inFlight ??= (async () => {
      try {
        const res = await fetch(this.uri, { signal: AbortSignal.timeout(JWKS_TIMEOUT_MS) });
        if (!res.ok) throw new Error(`JWKS answered ${res.status}`);
        const body = (await res.json()) as { keys?: { kid?: string }[] };
        this.keys = Array.isArray(body.keys) ? body.keys : [];
        this.fetchedAt = Date.now();
      } finally {
        this.inFlight = undefined;
      }
    })();
    return this.inFlight;
  }
}

let verifier:
  | { key: string; settings: OktaSettings; instance: OktaJwtVerifier; jwks: Jwks }
  | undefined;
const verified = new Map<
  string,
  { claims: Record<string, unknown>; until: number; settingsKey: string }
>();
let lastRefresh = 0;

function header(event: APIGatewayRequestAuthorizerEvent, name: string): string | undefined {
  const wanted = name.toLowerCase();
  return (
    Object.entries(event.headers ?? {}).find(([k]) => k.toLowerCase() === wanted)?.[1] ?? undefined
  );
}

function requestShape(event: APIGatewayRequestAuthorizerEvent): {
  token: string;
  clientId: string;
} {
  const authorization = header(event, "Authorization");
  if (!authorization) throw new Unauthorized("no-authorization-header");
  if (Buffer.byteLength(authorization) > MAX_TOKEN_BYTES + 7)
    throw new Unauthorized("token-too-large");
  const m = /^Bearer ([^\s]+)$/.exec(authorization);
  if (!m) throw new Unauthorized("not-bearer");
  if (!JWT.test(m[1])) throw new Unauthorized("malformed-token");
  const clientId = header(event, "X-Client-Id");
  if (!clientId) throw new Unauthorized("no-client-id-header");
  return { token: m[1], clientId };
}

async function currentVerifier(refresh: boolean) {
  const record = await secrets.get(settings.oktaSecretId, { refresh });
  if (verifier?.key !== record.versionId + record.value) {
    const s = JSON.parse(record.value) as OktaSettings;
    const jwks = new Jwks(s.jwksUri ?? `${s.issuer}/v1/keys`);
    verifier = {
      key: record.versionId + record.value,
      settings: s,
      jwks,
      instance: new OktaJwtVerifier({
        issuer: s.issuer,
        jwksUri: s.jwksUri,
        jwksRequestsPerMinute: 10,
        cacheMaxAge: 60 * 60 * 1000,
        getKeysInterceptor: jwks.interceptor,
        ...(settings.allowInsecureIssuer ? { testing: { disableHttpsCheck: true } } : {}),
      }),
    };
  }
  return verifier;
}

/** Failures a rotated issuer, audience, client list or key could explain. */
const ROTATABLE = /issuer|audience|kid|signing key|no matching key|cid-not-allowed/i;

async function verify(
  token: string,
): Promise<{ claims: Record<string, unknown>; settings: OktaSettings }> {
  const hash = createHash("sha256").update(token).digest("hex");
  const v = await currentVerifier(false);
  const hit = verified.get(hash);
  if (hit && hit.settingsKey === v.key && Date.now() < hit.until) {
    verified.delete(hash); // refresh its LRU position
    verified.set(hash, hit);
    return { claims: hit.claims, settings: v.settings };
  }
  try {
    return await verifyWith(v, token, hash);
  } catch (error) {
    const now = Date.now();
    if (
      error instanceof Unauthorized &&
      ROTATABLE.test(error.reason) &&
      now - lastRefresh > REFRESH_INTERVAL_MS
    ) {
      lastRefresh = now;
      const fresh = await currentVerifier(true);
      if (fresh.key !== v.key) return verifyWith(fresh, token, hash);
    }
    throw error;
  }
}

function keyId(token: string): string {
  try {
    const kid = JSON.parse(Buffer.from(token.split(".")[0], "base64url").toString("utf8")).kid;
    if (typeof kid === "string" && kid) return kid;
  } catch {
    // not JSON: refused below
  }
  throw new Unauthorized("no-kid");
}

async function verifyWith(v: NonNullable<typeof verifier>, token: string, hash: string) {
  if (!(await v.jwks.has(keyId(token)))) throw new Unauthorized("unknown-kid");
  let claims: Record<string, unknown>;
  try {
    claims = (await v.instance.verifyAccessToken(token, v.settings.audience)).claims as Record<
      string,
      unknown
    >;
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    // A JWKS endpoint that cannot be reached is not the caller's fault.
    if (/ECONNREFUSED|ENOTFOUND|ETIMEDOUT|socket|status code 5\d\d|Expected .* JSON/i.test(message))
      throw error;
    throw new Unauthorized(`invalid-token: ${message.replace(/[^\w .:-]/g, "").slice(0, 80)}`);
  }
  // The library accepts a token without exp; an access token must expire.
  if (typeof claims.exp !== "number") throw new Unauthorized("no-exp");
  if (typeof claims.cid !== "string" || !v.settings.allowedClientIds.includes(claims.cid)) {
    throw new Unauthorized("cid-not-allowed");
  }
  const until = Math.min(claims.exp * 1000, Date.now() + 5 * 60_000);
  verified.set(hash, { claims, until, settingsKey: v.key });
  if (verified.size > DECISION_CACHE_SIZE) verified.delete(verified.keys().next().value as string);
  return { claims, settings: v.settings };
}

export const handler = async (
  event: APIGatewayRequestAuthorizerEvent,
): Promise<APIGatewayAuthorizerResult> => {
  logger.appendKeys({
    correlationId: correlationId(event.headers ?? null, event.requestContext?.requestId ?? ""),
  });
  try {
    const { token, clientId } = requestShape(event);
    const { claims } = await verify(token);
    if (claims.cid !== clientId) throw new Unauthorized("cid-differs-from-header");
    const granted = tokenScopes(claims);
    const routes = allowedRoutes(parseScopes(granted), ROUTES);
    const org = claims[settings.orgClaim];
    const context: Record<string, string> = {
      clientId,
      scopes: granted.join(" "),
      ...(typeof org === "string" ? { org } : {}),
    };
    const sub = typeof claims.sub === "string" ? claims.sub : clientId;
    logger.info("decision", { effect: routes.length ? "Allow" : "Deny", routes: routes.length });
    return policyFor(sub, event.methodArn, routes, context);
  } catch (error) {
    if (error instanceof Unauthorized) {
      logger.info("unauthorized", { reason: error.reason.split(":")[0] });
      throw new Error("Unauthorized");
    }
    const cause =
      error instanceof Error && error.cause instanceof Error ? error.cause.name : undefined;
    logger.error("authorizer failure", {
      errorClass: error instanceof Error ? error.name : typeof error,
      cause,
    });
    throw new Error("AuthorizerFailure");
  } finally {
    logger.removeKeys(["correlationId"]);
  }
};
