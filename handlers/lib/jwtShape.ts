/**
 * The structure an Okta access token must have before any library sees it
 * (RFC 7515 compact serialisation, RFC 7519 claims, RFC 9068 access tokens).
 * Anything else is refused here, as malformed, so that the verifier only ever
 * parses three canonical base64url segments holding a JSON header with
 * `alg: RS256` and a string `kid`, a JSON object payload with numeric times,
 * and a signature of an RSA key's size. @okta/jwt-verifier (njwt) throws
 * asynchronously on some inputs this refuses, e.g. an empty signature.
 */

/** RSA keys of 2048 to 8192 bits: the signature is as long as the modulus. */
const MIN_SIGNATURE_BYTES = 256;
const MAX_SIGNATURE_BYTES = 1024;
const MAX_KID_LENGTH = 256;
/** NumericDate bounds: non-negative and before year 10000 (RFC 7519 section 2). */
const MAX_NUMERIC_DATE = 253_402_300_799;
const SEGMENT = /^[A-Za-z0-9_-]+$/;

export interface TokenShape {
  kid: string;
  claims: Record<string, unknown>;
}

/** Why a token is malformed: a reason code for logs, never part of the token. */
export type ShapeFault =
  | "segments"
  | "encoding"
  | "header"
  | "alg"
  | "kid"
  | "payload"
  | "claim-type"
  | "signature-size";

export class MalformedToken extends Error {
  constructor(readonly fault: ShapeFault) {
    super("Malformed token");
    this.name = "MalformedToken";
  }
}

/** Decodes a base64url segment, refusing padding, stray characters and non-canonical final bits. */
function decode(segment: string): Buffer {
  if (!SEGMENT.test(segment)) throw new MalformedToken("encoding");
  const bytes = Buffer.from(segment, "base64url");
  if (bytes.toString("base64url") !== segment) throw new MalformedToken("encoding");
  return bytes;
}

function jsonObject(segment: string, fault: ShapeFault): Record<string, unknown> {
  const text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });
  let value: unknown;
  try {
    value = JSON.parse(text.decode(decode(segment)));
  } catch (error) {
    if (error instanceof MalformedToken) throw error;
    throw new MalformedToken(fault);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value))
    throw new MalformedToken(fault);
  return value as Record<string, unknown>;
}

const isNumericDate = (v: unknown) =>
  typeof v === "number" && Number.isFinite(v) && v >= 0 && v <= MAX_NUMERIC_DATE;
const isStringList = (v: unknown) => Array.isArray(v) && v.every((s) => typeof s === "string");

/** Throws MalformedToken unless `token` has the structure of an RS256 access token. */
export function tokenShape(token: string): TokenShape {
  const segments = token.split(".");
  if (segments.length !== 3 || segments.some((s) => s === "")) {
    throw new MalformedToken("segments");
  }
  const [head, body, signature] = segments;
  const header = jsonObject(head, "header");
  if (header.alg !== "RS256") throw new MalformedToken("alg");
  // A critical extension this verifier does not implement must be refused (RFC 7515 4.1.11).
  if ("crit" in header) throw new MalformedToken("header");
  const kid = header.kid;
  if (typeof kid !== "string" || kid === "" || kid.length > MAX_KID_LENGTH) {
    throw new MalformedToken("kid");
  }
  const claims = jsonObject(body, "payload");
  // exp is required for an access token; nbf and iat are optional but numeric.
  if (!isNumericDate(claims.exp)) throw new MalformedToken("claim-type");
  for (const name of ["nbf", "iat"]) {
    if (name in claims && !isNumericDate(claims[name])) throw new MalformedToken("claim-type");
  }
  for (const name of ["iss", "sub", "cid", "scope", "jti"]) {
    if (name in claims && typeof claims[name] !== "string") throw new MalformedToken("claim-type");
  }
  if ("aud" in claims && typeof claims.aud !== "string" && !isStringList(claims.aud)) {
    throw new MalformedToken("claim-type");
  }
  if ("scp" in claims && !isStringList(claims.scp)) throw new MalformedToken("claim-type");
  const size = decode(signature).length;
  if (size < MIN_SIGNATURE_BYTES || size > MAX_SIGNATURE_BYTES) {
    throw new MalformedToken("signature-size");
  }
  return { kid, claims };
}
