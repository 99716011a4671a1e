import { NotFoundError } from "../lib/errors";
import type { RouteImpl } from "../lib/http";

/** Members of a JWK that only a private key has (RFC 7518 section 6). */
const PRIVATE_MEMBERS = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/**
 * Checks, at start-up, that the JWKS the stack publishes is a key set of
 * public keys only: a private member would be a key leak served to anyone.
 */
export function publicKeySet(json: string | undefined): string | undefined {
  if (!json) return undefined;
  const set = JSON.parse(json) as { keys?: Record<string, unknown>[] };
  if (!Array.isArray(set.keys) || set.keys.length === 0) {
    throw new Error("BULK_JWKS must be a JWK set with at least one key");
  }
  for (const key of set.keys) {
    if (PRIVATE_MEMBERS.some((m) => m in key)) {
      throw new Error("BULK_JWKS must hold public keys only");
    }
  }
  return JSON.stringify(set);
}

/**
 * GET /.well-known/jwks.json: the public half of the stack's SMART Backend
 * Services signing key, for source EHRs to verify HOTH's client assertions
 * (https://hl7.org/fhir/smart-app-launch/backend-services.html#registering-a-client-communicating-public-keys).
 * Public: no token, no organisation, nothing but the key set.
 */
export const publicJwks =
  (jwks: string | undefined): RouteImpl =>
  async () => {
    if (!jwks) throw new NotFoundError("This stack publishes no signing keys");
    return {
      statusCode: 200,
      headers: { "Content-Type": "application/json", "Cache-Control": "public, max-age=300" },
      body: jwks,
    };
  };
