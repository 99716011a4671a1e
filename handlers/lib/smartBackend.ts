import { createHash, createPublicKey, randomUUID } from "node:crypto";
import * as z from "zod/mini";
import { type HttpDeps, realSleep, send } from "./sourceHttp";

/**
 * SMART Backend Services client
 * (https://hl7.org/fhir/smart-app-launch/backend-services.html): a client
 * assertion JWT signed by a key that never leaves KMS, exchanged for an
 * access token with the client-credentials grant, cached until it expires.
 */

export type JwsAlgorithm = "RS384" | "ES384";

/** Signs a JWS signing input; the signature comes back in JOSE form (RFC 7518 section 3). */
export interface JwsSigner {
  readonly alg: JwsAlgorithm;
  readonly kid: string;
  sign(signingInput: Uint8Array): Promise<Uint8Array>;
}

/**
 * The two KMS calls the signer makes, shaped like `@aws-sdk/client-kms`'s
 * aggregated `KMS` client (`new KMS({})` satisfies it as is).
 */
export interface KmsApi {
  sign(input: {
    KeyId: string;
    Message: Uint8Array;
    MessageType: "RAW";
    SigningAlgorithm: "RSASSA_PKCS1_V1_5_SHA_384" | "ECDSA_SHA_384";
  }): Promise<{ Signature?: Uint8Array }>;
  getPublicKey(input: {
    KeyId: string;
  }): Promise<{ PublicKey?: Uint8Array; KeySpec?: string; KeyUsage?: string }>;
}

/** A signing key that cannot be used for client assertions, and why. */
export class SigningKeyError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "SigningKeyError";
  }
}

/** The token endpoint refused the client (an OAuth error code, never the assertion). */
export class TokenRequestError extends Error {
  constructor(
    readonly status: number,
    readonly oauthError: string,
  ) {
    super(`Token request refused with ${status} ${oauthError}`);
    this.name = "TokenRequestError";
  }
}

/** The token endpoint answered 200 with something that is not a usable token response. */
export class TokenResponseError extends Error {
  constructor(field: string) {
    super(`Token response is invalid: ${field}`);
    this.name = "TokenResponseError";
  }
}

export const b64url = (b: Uint8Array | string) => Buffer.from(b).toString("base64url");

/** KMS key specs that give an RS384 or ES384 signer (RSA under 2048 bits does not exist in KMS). */
const KEY_SPECS: Record<string, JwsAlgorithm> = {
  RSA_2048: "RS384",
  RSA_3072: "RS384",
  RSA_4096: "RS384",
  ECC_NIST_P384: "ES384",
};

const KMS_ALGORITHM = {
  RS384: "RSASSA_PKCS1_V1_5_SHA_384",
  ES384: "ECDSA_SHA_384",
} as const;

/** A public JWK as published in HOTH's JWKS (a type, so it is also a JSON object). */
export type PublicJwk = {
  kty: "RSA" | "EC";
  kid: string;
  alg: JwsAlgorithm;
  use: "sig";
  key_ops: ["verify"];
  n?: string;
  e?: string;
  crv?: string;
  x?: string;
  y?: string;
};

/**
 * The JWK of a DER SubjectPublicKeyInfo (what KMS GetPublicKey returns), its
 * `kid` the RFC 7638 thumbprint, so the same key always gets the same kid.
 */
export function publicJwk(spkiDer: Uint8Array, alg: JwsAlgorithm): PublicJwk {
  const jwk = createPublicKey({ key: Buffer.from(spkiDer), format: "der", type: "spki" }).export({
    format: "jwk",
  });
  if (alg === "RS384" && jwk.kty === "RSA" && jwk.n && jwk.e) {
    const kid = thumbprint({ e: jwk.e, kty: "RSA", n: jwk.n });
    return { kty: "RSA", kid, alg, use: "sig", key_ops: ["verify"], n: jwk.n, e: jwk.e };
  }
  if (alg === "ES384" && jwk.kty === "EC" && jwk.crv === "P-384" && jwk.x && jwk.y) {
    const kid = thumbprint({ crv: jwk.crv, kty: "EC", x: jwk.x, y: jwk.y });
    return {
      kty: "EC",
      kid,
      alg,
      use: "sig",
      key_ops: ["verify"],
      crv: jwk.crv,
      x: jwk.x,
      y: jwk.y,
    };
  }
  throw new SigningKeyError(`The public key is not a ${alg} key (kty ${jwk.kty})`);
}

/** RFC 7638: SHA-256 over the required members, in lexicographic order, without whitespace. */
function thumbprint(members: Record<string, string>): string {
  return b64url(createHash("sha256").update(JSON.stringify(members)).digest());
}

/** A JWKS document of the given keys. */
export const jwks = (keys: PublicJwk[]) => ({ keys });

/**
 * An ECDSA signature from DER (`SEQUENCE { INTEGER r, INTEGER s }`, what KMS
 * returns) to the fixed-width `r || s` JWS needs (RFC 7518 section 3.4).
 */
export function derToJose(der: Uint8Array, size: number): Uint8Array {
  const b = Buffer.from(der);
  let i = 0;
  const fail = () => new SigningKeyError("KMS returned a malformed ECDSA signature");
  const length = () => {
    let len = b[i++];
    if (len & 0x80) {
      const n = len & 0x7f;
      if (n < 1 || n > 2) throw fail();
      len = 0;
      for (let k = 0; k < n; k++) len = (len << 8) | b[i++];
    }
    return len;
  };
  if (b[i++] !== 0x30) throw fail();
  if (length() !== b.length - i) throw fail();
  const out = Buffer.alloc(size * 2);
  for (const half of [0, 1]) {
    if (b[i++] !== 0x02) throw fail();
    const len = length();
    let int = b.subarray(i, i + len);
    i += len;
    if (int.length !== len) throw fail();
    while (int.length > size && int[0] === 0) int = int.subarray(1);
    if (int.length > size) throw fail();
    int.copy(out, half * size + (size - int.length));
  }
  if (i !== b.length) throw fail();
  return out;
}

/** The public half of a KMS signing key, as GetPublicKey (or Pulumi's kms.getPublicKey) gives it. */
export interface KmsPublicKey {
  /** DER SubjectPublicKeyInfo. */
  PublicKey?: Uint8Array;
  KeySpec?: string;
  KeyUsage?: string;
}

/**
 * A signer backed by an asymmetric KMS key: the private key never leaves
 * KMS. RSA keys sign RS384, P-384 keys ES384. KMS is given the raw signing
 * input (at most 4096 bytes, ample for an assertion) and hashes it itself.
 * The public key is passed in (read at deploy time), so the signing
 * functions need `kms:Sign` and nothing else.
 */
export function kmsSigner(kms: Pick<KmsApi, "sign">, keyId: string, key: KmsPublicKey): JwsSigner {
  if (key.KeyUsage !== undefined && key.KeyUsage !== "SIGN_VERIFY") {
    throw new SigningKeyError(`KMS key usage is ${key.KeyUsage}; create it with SIGN_VERIFY`);
  }
  const alg = KEY_SPECS[key.KeySpec ?? ""];
  if (!alg) {
    throw new SigningKeyError(
      `KMS key spec ${key.KeySpec ?? "(none)"} cannot sign RS384 or ES384; use one of ${Object.keys(KEY_SPECS).join(", ")}`,
    );
  }
  if (!key.PublicKey) throw new SigningKeyError("KMS returned no public key");
  const jwk = publicJwk(key.PublicKey, alg);
  return {
    alg,
    kid: jwk.kid,
    async sign(signingInput) {
      if (signingInput.length > 4096) {
        throw new SigningKeyError("The signing input exceeds KMS's 4096-byte RAW message limit");
      }
      const out = await kms.sign({
        KeyId: keyId,
        Message: signingInput,
        MessageType: "RAW",
        SigningAlgorithm: KMS_ALGORITHM[alg],
      });
      if (!out.Signature) throw new SigningKeyError("KMS returned no signature");
      return alg === "ES384" ? derToJose(out.Signature, 48) : out.Signature;
    },
  };
}

/** kmsSigner with the public key read from KMS (needs `kms:GetPublicKey` too: tools, not Lambdas). */
export async function createKmsSigner(kms: KmsApi, keyId: string): Promise<JwsSigner> {
  return kmsSigner(kms, keyId, await kms.getPublicKey({ KeyId: keyId }));
}

/** What a client assertion says (SMART Backend Services, "Authenticating to the token endpoint"). */
export interface AssertionClaims {
  iss: string;
  sub: string;
  aud: string;
  exp: number;
  iat: number;
  jti: string;
}

/** The spec's ceiling on how far in the future an assertion may expire. */
export const MAX_ASSERTION_LIFETIME_SECONDS = 300;

/**
 * A signed client assertion: `iss` = `sub` = the client id, `aud` = the
 * token URL, `exp` at most five minutes ahead, a fresh `jti` every time.
 */
export async function clientAssertion(opts: {
  clientId: string;
  tokenUrl: string;
  signer: JwsSigner;
  now?: () => number;
  lifetimeSeconds?: number;
  jti?: () => string;
}): Promise<string> {
  const lifetime = opts.lifetimeSeconds ?? MAX_ASSERTION_LIFETIME_SECONDS;
  if (!(lifetime > 0 && lifetime <= MAX_ASSERTION_LIFETIME_SECONDS)) {
    throw new RangeError(`lifetimeSeconds must be in (0, ${MAX_ASSERTION_LIFETIME_SECONDS}]`);
  }
  const iat = Math.floor((opts.now ?? Date.now)() / 1000);
  const header = { alg: opts.signer.alg, kid: opts.signer.kid, typ: "JWT" };
  const claims: AssertionClaims = {
    iss: opts.clientId,
    sub: opts.clientId,
    aud: opts.tokenUrl,
    exp: iat + lifetime,
    iat,
    jti: (opts.jti ?? randomUUID)(),
  };
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
  const signature = await opts.signer.sign(Buffer.from(input, "ascii"));
  return `${input}.${b64url(signature)}`;
}

export const JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

const tokenResponse = z.object({
  access_token: z.string().check(z.minLength(1)),
  token_type: z.string().check(z.regex(/^bearer$/i)),
  expires_in: z.int().check(z.positive()),
  scope: z.optional(z.string()),
});

/** Hands out a current access token; `invalidate` drops one the source refused. */
export interface TokenSource {
  token(): Promise<string>;
  invalidate(token: string): void;
}

export interface SmartClientConfig {
  tokenUrl: string;
  clientId: string;
  /** SMART scopes, e.g. `system/Patient.rs`. */
  scopes: string[];
  signer: JwsSigner;
  /** @default 300 */
  assertionLifetimeSeconds?: number;
  /** A token is renewed this long before it expires. @default 60 */
  renewBeforeSeconds?: number;
}

/**
 * Client-credentials tokens for one source, cached until shortly before
 * they expire; concurrent callers share one token request. Each attempt,
 * retries included, signs a new assertion (a source that recorded the jti
 * of a failed attempt would refuse it as a replay).
 */
export class SmartTokenClient implements TokenSource {
  private cached?: { token: string; renewAt: number };
  private inFlight?: Promise<string>;
  private readonly now: () => number;

  constructor(
    private readonly config: SmartClientConfig,
    private readonly deps: HttpDeps = {},
  ) {
    this.now = deps.now ?? Date.now;
  }

  token(): Promise<string> {
    if (this.cached && this.now() < this.cached.renewAt) return Promise.resolve(this.cached.token);
    this.inFlight ??= this.request().finally(() => {
      this.inFlight = undefined;
    });
    return this.inFlight;
  }

  invalidate(token: string): void {
    if (this.cached?.token === token) this.cached = undefined;
  }

  private async request(): Promise<string> {
    const { tokenUrl, clientId, scopes, signer } = this.config;
    const { response } = await send(
      {
        operation: "Token request",
        url: tokenUrl,
        ok: (s) => s === 200,
        init: async () => ({
          method: "POST",
          headers: {
            "Content-Type": "application/x-www-form-urlencoded",
            Accept: "application/json",
          },
          body: new URLSearchParams({
            grant_type: "client_credentials",
            scope: scopes.join(" "),
            client_assertion_type: JWT_BEARER,
            client_assertion: await clientAssertion({
              clientId,
              tokenUrl,
              signer,
              now: this.now,
              lifetimeSeconds: this.config.assertionLifetimeSeconds,
            }),
          }).toString(),
        }),
        refusal: (status, body) => new TokenRequestError(status, oauthError(body)),
      },
      { sleep: realSleep, ...this.deps },
    );
    let json: unknown;
    try {
      json = await response.json();
    } catch {
      throw new TokenResponseError("the body is not JSON");
    }
    const parsed = tokenResponse.safeParse(json);
    if (!parsed.success) {
      throw new TokenResponseError(parsed.error.issues.map((i) => i.path.join(".")).join(", "));
    }
    const { access_token, expires_in } = parsed.data;
    const renewBefore = Math.min(this.config.renewBeforeSeconds ?? 60, expires_in / 2);
    this.cached = { token: access_token, renewAt: this.now() + (expires_in - renewBefore) * 1000 };
    return access_token;
  }
}

/** The OAuth `error` code of a refusal (RFC 6749 section 5.2), if it is one. */
function oauthError(body: string): string {
  try {
    const e = (JSON.parse(body) as { error?: unknown }).error;
    return typeof e === "string" && /^[a-z_]{1,64}$/.test(e) ? e : "(no OAuth error code)";
  } catch {
    return "(no OAuth error code)";
  }
}
