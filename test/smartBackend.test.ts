import * as assert from "node:assert/strict";
import { createPublicKey, generateKeyPairSync, sign, verify } from "node:crypto";
import { JwtVerifier } from "aws-jwt-verify";
import * as fc from "fast-check";
import {
  clientAssertion,
  createKmsSigner,
  derToJose,
  JWT_BEARER,
  type JwsSigner,
  jwks,
  type KmsApi,
  kmsSigner,
  publicJwk,
  SigningKeyError,
  SmartTokenClient,
  TokenRequestError,
  TokenResponseError,
} from "../handlers/lib/smartBackend";
import { type FetchLike, TransientSourceError } from "../handlers/lib/sourceHttp";
import { LocalKms } from "../local/kms";

const TOKEN_URL = "https://ehr.example.org/oauth2/token";
const CLIENT_ID = "hoth-dev";

/** The claims and header of a compact JWS, decoded without verification. */
function decode(jwt: string) {
  const [h, p] = jwt.split(".");
  return {
    header: JSON.parse(Buffer.from(h, "base64url").toString()),
    payload: JSON.parse(Buffer.from(p, "base64url").toString()),
  };
}

async function signerAndJwks(spec: "RSA_2048" | "ECC_NIST_P384") {
  const kms = new LocalKms(spec);
  const signer = await createKmsSigner(kms, kms.keyId);
  const key = await kms.getPublicKey({ KeyId: kms.keyId });
  return { kms, signer, set: jwks([publicJwk(key.PublicKey, signer.alg)]) };
}

describe("SMART Backend Services client assertion", () => {
  for (const [spec, alg] of [
    ["RSA_2048", "RS384"],
    ["ECC_NIST_P384", "ES384"],
  ] as const) {
    it(`signs a ${alg} assertion through kms:Sign that aws-jwt-verify accepts against the published JWKS`, async () => {
      const { kms, signer, set } = await signerAndJwks(spec);
      const verifier = JwtVerifier.create({
        issuer: CLIENT_ID,
        audience: TOKEN_URL,
        jwksUri: "https://hoth.example.org/.well-known/jwks.json",
      });
      verifier.cacheJwks(set);

      const jwt = await clientAssertion({ clientId: CLIENT_ID, tokenUrl: TOKEN_URL, signer });

      const payload = verifier.verifySync(jwt);
      const { header } = decode(jwt);
      assert.deepEqual(header, { alg, kid: set.keys[0].kid, typ: "JWT" });
      assert.equal(payload.iss, CLIENT_ID);
      assert.equal(payload.sub, CLIENT_ID);
      assert.equal(payload.aud, TOKEN_URL);
      assert.equal((payload.exp as number) - (payload.iat as number), 300);
      assert.deepEqual(kms.calls, [
        {
          KeyId: kms.keyId,
          SigningAlgorithm: alg === "RS384" ? "RSASSA_PKCS1_V1_5_SHA_384" : "ECDSA_SHA_384",
        },
      ]);
    });
  }

  it("signs with kms:Sign alone when given the public key read at deploy time", async () => {
    const kms = new LocalKms("ECC_NIST_P384");
    const key = await kms.getPublicKey({ KeyId: kms.keyId });
    const calls: string[] = [];
    const signOnly = {
      sign: (input: Parameters<KmsApi["sign"]>[0]) => {
        calls.push("Sign");
        return kms.sign(input);
      },
    };
    const signer = kmsSigner(signOnly, kms.keyId, {
      PublicKey: Buffer.from(Buffer.from(key.PublicKey).toString("base64"), "base64"),
      KeySpec: "ECC_NIST_P384",
    });
    const verifier = JwtVerifier.create({
      issuer: CLIENT_ID,
      audience: TOKEN_URL,
      jwksUri: "https://x/jwks",
    });
    verifier.cacheJwks(jwks([publicJwk(key.PublicKey, "ES384")]));

    verifier.verifySync(
      await clientAssertion({ clientId: CLIENT_ID, tokenUrl: TOKEN_URL, signer }),
    );

    assert.deepEqual(calls, ["Sign"]);
  });

  it("gives every assertion its own jti", async () => {
    const { signer } = await signerAndJwks("ECC_NIST_P384");
    const jtis = new Set<string>();
    for (let i = 0; i < 50; i++) {
      jtis.add(
        decode(await clientAssertion({ clientId: CLIENT_ID, tokenUrl: TOKEN_URL, signer })).payload
          .jti,
      );
    }
    assert.equal(jtis.size, 50);
  });

  it("refuses a lifetime beyond the spec's five minutes", async () => {
    const { signer } = await signerAndJwks("ECC_NIST_P384");
    await assert.rejects(
      clientAssertion({ clientId: CLIENT_ID, tokenUrl: TOKEN_URL, signer, lifetimeSeconds: 301 }),
      RangeError,
    );
  });

  it("refuses KMS keys that cannot sign RS384 or ES384", async () => {
    const kms: KmsApi = {
      getPublicKey: async () => ({ KeySpec: "ECC_NIST_P256", KeyUsage: "SIGN_VERIFY" }),
      sign: async () => ({}),
    };
    await assert.rejects(createKmsSigner(kms, "k"), /ECC_NIST_P256 cannot sign RS384 or ES384/);
    const encrypting: KmsApi = {
      getPublicKey: async () => ({ KeySpec: "RSA_2048", KeyUsage: "ENCRYPT_DECRYPT" }),
      sign: async () => ({}),
    };
    await assert.rejects(createKmsSigner(encrypting, "k"), SigningKeyError);
  });
});

describe("JWKS from a KMS public key", () => {
  it("derives the kid as the RFC 7638 thumbprint (the RFC's own example key)", () => {
    // RFC 7638 section 3.1: this RSA key's thumbprint is NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs.
    const n =
      "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
    const der = createPublicKey({ key: { kty: "RSA", n, e: "AQAB" }, format: "jwk" }).export({
      format: "der",
      type: "spki",
    });

    const jwk = publicJwk(der, "RS384");

    assert.deepEqual(jwk, {
      kty: "RSA",
      kid: "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs",
      alg: "RS384",
      use: "sig",
      key_ops: ["verify"],
      n,
      e: "AQAB",
    });
  });

  it("publishes EC P-384 keys with crv, x and y and no private member", async () => {
    const { set } = await signerAndJwks("ECC_NIST_P384");
    assert.deepEqual(Object.keys(set.keys[0]).sort(), [
      "alg",
      "crv",
      "key_ops",
      "kid",
      "kty",
      "use",
      "x",
      "y",
    ]);
    assert.equal(set.keys[0].crv, "P-384");
  });

  it("refuses a key whose type does not match the algorithm", () => {
    const der = generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey.export({
      format: "der",
      type: "spki",
    });
    assert.throws(() => publicJwk(der, "ES384"), SigningKeyError);
  });
});

describe("derToJose", () => {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-384" });

  it("turns any DER ECDSA P-384 signature into the r||s form JWS verifiers accept", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 256 }), (message) => {
        const der = sign("sha384", message, { key: privateKey, dsaEncoding: "der" });
        const jose = derToJose(der, 48);
        assert.equal(jose.length, 96);
        assert.ok(verify("sha384", message, { key: publicKey, dsaEncoding: "ieee-p1363" }, jose));
      }),
      { numRuns: 200 },
    );
  });

  it("refuses anything that is not a well-formed DER signature, and never returns a wrong size", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 120 }), (bytes) => {
        try {
          assert.equal(derToJose(bytes, 48).length, 96);
        } catch (e) {
          assert.ok(e instanceof SigningKeyError, String(e));
        }
      }),
      { numRuns: 2000 },
    );
  });
});

/** A token endpoint stub: answers in order, recording each form it received. */
function tokenEndpoint(answers: (() => Response)[]) {
  const forms: URLSearchParams[] = [];
  const fetch: FetchLike = async (url, init) => {
    assert.equal(url, TOKEN_URL);
    assert.equal(init.method, "POST");
    forms.push(new URLSearchParams(String(init.body)));
    const next = answers.shift();
    if (!next) throw new Error("no more answers");
    return next();
  };
  return { fetch, forms };
}

const tokenJson =
  (token: string, expiresIn = 300) =>
  () =>
    Response.json({ access_token: token, token_type: "bearer", expires_in: expiresIn, scope: "x" });

describe("SmartTokenClient", () => {
  let signer: JwsSigner;
  before(async () => {
    signer = (await signerAndJwks("ECC_NIST_P384")).signer;
  });

  const client = (fetch: FetchLike, now: () => number = Date.now) =>
    new SmartTokenClient(
      {
        tokenUrl: TOKEN_URL,
        clientId: CLIENT_ID,
        scopes: ["system/Patient.rs", "system/Observation.rs"],
        signer,
      },
      { fetch, now, sleep: async () => undefined, random: () => 0 },
    );

  it("posts a client-credentials request with a jwt-bearer assertion and the scopes", async () => {
    const stub = tokenEndpoint([tokenJson("t1")]);

    const token = await client(stub.fetch).token();

    assert.equal(token, "t1");
    const form = Object.fromEntries(stub.forms[0]);
    assert.deepEqual(Object.keys(form).sort(), [
      "client_assertion",
      "client_assertion_type",
      "grant_type",
      "scope",
    ]);
    assert.equal(form.grant_type, "client_credentials");
    assert.equal(form.client_assertion_type, JWT_BEARER);
    assert.equal(form.scope, "system/Patient.rs system/Observation.rs");
    assert.equal(decode(form.client_assertion).payload.aud, TOKEN_URL);
  });

  it("caches the token until shortly before it expires, and shares one request between concurrent callers", async () => {
    let now = 1_000_000;
    const stub = tokenEndpoint([tokenJson("t1", 300), tokenJson("t2", 300)]);
    const c = client(stub.fetch, () => now);

    const first = await Promise.all([c.token(), c.token(), c.token()]);
    now += 239_000;
    const cached = await c.token();
    now += 1_000;
    const renewed = await c.token();

    assert.deepEqual(first, ["t1", "t1", "t1"]);
    assert.equal(cached, "t1");
    assert.equal(renewed, "t2");
    assert.equal(stub.forms.length, 2);
  });

  it("drops an invalidated token and asks for a new one", async () => {
    const stub = tokenEndpoint([tokenJson("t1"), tokenJson("t2")]);
    const c = client(stub.fetch);
    const t1 = await c.token();

    c.invalidate(t1);

    assert.equal(await c.token(), "t2");
  });

  it("retries 429 and 503 with a new assertion each time (a fresh jti)", async () => {
    const stub = tokenEndpoint([
      () => new Response("", { status: 429, headers: { "Retry-After": "0" } }),
      () => new Response("", { status: 503 }),
      tokenJson("t1"),
    ]);

    assert.equal(await client(stub.fetch).token(), "t1");

    const jtis = stub.forms.map((f) => decode(f.get("client_assertion") ?? "").payload.jti);
    assert.equal(new Set(jtis).size, 3);
  });

  it("gives up on a token endpoint that keeps answering 503", async () => {
    const stub = tokenEndpoint(
      Array.from({ length: 4 }, () => () => new Response("", { status: 503 })),
    );
    await assert.rejects(client(stub.fetch).token(), TransientSourceError);
    assert.equal(stub.forms.length, 4);
  });

  it("names the OAuth error of a refusal without echoing the assertion", async () => {
    const stub = tokenEndpoint([
      () => Response.json({ error: "invalid_client", error_description: "bad" }, { status: 400 }),
    ]);

    const err = await client(stub.fetch)
      .token()
      .catch((e: Error) => e);

    assert.ok(err instanceof TokenRequestError);
    assert.equal(err.message, "Token request refused with 400 invalid_client");
    assert.equal(stub.forms.length, 1);
  });

  it("refuses a 200 that is not a bearer token with an expiry", async () => {
    const stub = tokenEndpoint([() => Response.json({ access_token: "t", token_type: "mac" })]);
    await assert.rejects(client(stub.fetch).token(), (e: Error) => {
      assert.ok(e instanceof TokenResponseError);
      assert.equal(e.message, "Token response is invalid: token_type, expires_in");
      return true;
    });
  });
});
