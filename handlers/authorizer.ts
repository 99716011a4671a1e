import { createHash, createPublicKey, type JsonWebKey, type KeyObject } from "node:crypto";
import { SecretsManagerClient } from "@aws-sdk/client-secrets-manager";

import OktaJwtVerifier = require("@okta/jwt-verifier");

import type { APIGatewayAuthorizerResult, APIGatewayRequestAuthorizerEvent } from "aws-lambda";
import { ROUTES } from "../contracts/routes";
import { allowedRoutes, policyFor } from "./lib/authz";
import { clientOptions } from "./lib/aws";
import { envSeconds, requireEnv } from "./lib/env";
import { MalformedToken, tokenShape } from "./lib/jwtShape";
import { correlationId, createLogger } from "./lib/logger";
import { parseScopes, scopeName, tokenScopes } from "./lib/scopes";
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
  new SecretsManagerClient(clientOptions()),
  envSeconds("OKTA_SETTINGS_TTL_SECONDS", 300),
);

export const MAX_TOKEN_BYTES = 8 * 1024;
/** The library gets this long to verify a token whose key is already in memory. */
const VERIFY_TIMEOUT_MS = 2_000;
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

/**
 * A refusal of the token or request: API Gateway's 401. `kind` says whether
 * the credentials were missing, malformed or refused; `reason` is a fixed
 * code. Both are logged; neither ever holds a value from the request.
 */
class Unauthorized extends Error {
  constructor(
    readonly kind: "missing" | "malformed" | "refused",
    readonly reason: string,
  ) {
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
 * The issuer's keys, fetched by the authorizer itself: concurrent fetches
 * share one request, and an unknown key id triggers at most one refetch per
 * JWKS_REFETCH_MS, so a flood of made-up kids is refused at once. The library
 * gets them through a synchronous key resolver (see `keyResolver`), never
 * through jwks-rsa's asynchronous callback.
 */
class Jwks {
  private keys = new Map<string, KeyObject>();
  private fetchedAt = 0;
  private inFlight?: Promise<void>;

  constructor(private readonly uri: string) {}

  async has(kid: string): Promise<boolean> {
    const age = Date.now() - this.fetchedAt;
    if (age > JWKS_MAX_AGE_MS || (!this.keys.has(kid) && age > JWKS_REFETCH_MS)) {
      await this.fetch();
    }
    return this.keys.has(kid);
  }

  key(kid: string): KeyObject | undefined {
    return this.keys.get(kid);
  }

  private fetch(): Promise<void> {
    this.inFlight ??= (async () => {
      try {
        const res = await fetch(this.uri, { signal: AbortSignal.timeout(JWKS_TIMEOUT_MS) });
        if (!res.ok) throw new Error(`JWKS answered ${res.status}`);
        const body = (await res.json()) as { keys?: unknown };
        const keys = new Map<string, KeyObject>();
        for (const jwk of Array.isArray(body.keys) ? body.keys : []) {
          const kid = (jwk as { kid?: unknown })?.kid;
          if (typeof kid !== "string" || (jwk as { kty?: unknown }).kty !== "RSA") continue;
          try {
            keys.set(kid, createPublicKey({ key: jwk as JsonWebKey, format: "jwk" }));
          } catch {
            // a key Node cannot read verifies nothing
          }
        }
        this.keys = keys;
        this.fetchedAt = Date.now();
      } finally {
        this.inFlight = undefined;
      }
    })();
    return this.inFlight;
  }
}

/**
 * njwt's key resolver, answered synchronously from keys already fetched. njwt
 * calls it from inside verify(), which @okta/jwt-verifier calls inside a
 * Promise executor: whatever njwt throws while checking the signature (it
 * threw a TypeError on an empty signature, uncaught, from jwks-rsa's callback)
 * becomes a rejection of verifyAccessToken, never an uncaught exception.
 */
function keyResolver(jwks: Jwks) {
  return (kid: string, cb: (err: Error | null, key?: KeyObject) => void) => {
    const key = jwks.key(kid);
    if (key) cb(null, key);
    else cb(new Error("no matching key"));
  };
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
  if (!authorization) throw new Unauthorized("missing", "no-authorization-header");
  const clientId = header(event, "X-Client-Id");
  if (!clientId) throw new Unauthorized("missing", "no-client-id-header");
  if (Buffer.byteLength(authorization) > MAX_TOKEN_BYTES + 7)
    throw new Unauthorized("malformed", "token-too-large");
  const m = /^Bearer ([^\s]+)$/.exec(authorization);
  if (!m) throw new Unauthorized("malformed", "not-bearer");
  try {
    tokenShape(m[1]);
  } catch (error) {
    if (error instanceof MalformedToken) throw new Unauthorized("malformed", error.fault);
    throw error;
  }
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
        ...(settings.allowInsecureIssuer ? { testing: { disableHttpsCheck: true } } : {}),
      }),
    };
    // The library's own (jwks-rsa) resolver answers in an asynchronous callback.
    (verifier.instance as unknown as NjwtHolder).verifier.withKeyResolver(keyResolver(jwks));
  }
  return verifier;
}

/** Failures a rotated issuer, audience, client list or key could explain. */
const ROTATABLE = new Set([
  "issuer",
  "audience",
  "unknown-kid",
  "no-matching-key",
  "cid-not-allowed",
]);

/** The library's refusal as a fixed code (its messages quote claims from the token). */
function refusalReason(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  for (const [pattern, reason] of [
    [/expired/i, "expired"],
    [/not active|before/i, "not-yet-valid"],
    [/audience/i, "audience"],
    [/issuer/i, "issuer"],
    [/no matching key/i, "no-matching-key"],
    [/signature/i, "signature"],
    [/algorithm/i, "alg"],
  ] as const) {
    if (pattern.test(message)) return reason;
  }
  return "invalid";
}

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
      ROTATABLE.has(error.reason) &&
      now - lastRefresh > REFRESH_INTERVAL_MS
    ) {
      lastRefresh = now;
      const fresh = await currentVerifier(true);
      if (fresh.key !== v.key) return verifyWith(fresh, token, hash);
    }
    throw error;
  }
}

/** The library object @okta/jwt-verifier 4.x verifies with (njwt's Verifier). */
interface NjwtHolder {
  verifier: { withKeyResolver(resolver: ReturnType<typeof keyResolver>): unknown };
}

/** Bounds the library's work: a verification that does not settle is a failure, not a hang. */
async function withinDeadline<T>(work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(Object.assign(new Error("verification timed out"), { name: "VerifyTimeout" })),
      VERIFY_TIMEOUT_MS,
    );
  });
  try {
    return await Promise.race([work, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

async function verifyWith(v: NonNullable<typeof verifier>, token: string, hash: string) {
  const { kid } = tokenShape(token); // checked in requestShape: cannot throw here
  if (!(await v.jwks.has(kid))) throw new Unauthorized("refused", "unknown-kid");
  let claims: Record<string, unknown>;
  try {
    claims = (await withinDeadline(v.instance.verifyAccessToken(token, v.settings.audience)))
      .claims as Record<string, unknown>;
  } catch (error) {
    if (error instanceof Error && error.name === "VerifyTimeout") throw error;
    // Keys are resolved from memory, so whatever the library throws is about the token.
    throw new Unauthorized("refused", refusalReason(error));
  }
  // The library accepts a token without exp; an access token must expire.
  if (typeof claims.exp !== "number") throw new Unauthorized("refused", "no-exp");
  if (typeof claims.cid !== "string" || !v.settings.allowedClientIds.includes(claims.cid)) {
    throw new Unauthorized("refused", "cid-not-allowed");
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
    if (claims.cid !== clientId) throw new Unauthorized("refused", "cid-differs-from-header");
    const granted = tokenScopes(claims);
    const routes = allowedRoutes(parseScopes(granted), ROUTES);
    const org = claims[settings.orgClaim];
    const context: Record<string, string> = {
      clientId,
      scopes: granted.join(" "),
      ...(typeof org === "string" ? { org } : {}),
    };
    const sub = typeof claims.sub === "string" ? claims.sub : clientId;
    // Decisions are cached per route (IDENTITY_CONTEXT): a route the scopes
    // do not grant gets an explicit Deny whose context names the scope it
    // needs, for the ACCESS_DENIED gateway response.
    const called = ROUTES.find((r) => r.method === event.httpMethod && r.path === event.resource);
    if (called && called.anyOf.length > 0 && !routes.includes(called)) {
      logger.info("decision", { effect: "Deny", routes: routes.length });
      return policyFor(sub, event.methodArn, [], {
        ...context,
        requiredScope: scopeName(called.anyOf[0]),
      });
    }
    logger.info("decision", { effect: routes.length ? "Allow" : "Deny", routes: routes.length });
    return policyFor(sub, event.methodArn, routes, context);
  } catch (error) {
    if (error instanceof Unauthorized) {
      logger.info("unauthorized", { kind: error.kind, reason: error.reason });
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
