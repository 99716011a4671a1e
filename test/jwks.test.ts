import * as assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import type { APIGatewayProxyEvent } from "aws-lambda";
import { createLogger } from "../handlers/lib/logger";
import { jwks, publicJwk } from "../handlers/lib/smartBackend";
import { publicJwks, publicKeySet } from "../handlers/routes/jwks";
import { proxyEvent } from "./support/handlers";

const pair = generateKeyPairSync("ec", { namedCurve: "P-384" });
const der = new Uint8Array(pair.publicKey.export({ format: "der", type: "spki" }));
const keySet = JSON.stringify(jwks([publicJwk(der, "ES384")]));

const request = (): APIGatewayProxyEvent => {
  const base = proxyEvent("health");
  return {
    ...base,
    httpMethod: "GET",
    path: "/.well-known/jwks.json",
    resource: "/.well-known/jwks.json",
    headers: {},
    requestContext: { ...base.requestContext, authorizer: null },
  };
};
const call = (impl: ReturnType<typeof publicJwks>) =>
  impl({ event: request(), params: {}, correlationId: "c", logger: createLogger("t") });

describe("GET /.well-known/jwks.json", () => {
  it("serves the stack's public key set to anyone, cacheable for five minutes", async () => {
    const res = await call(publicJwks(publicKeySet(keySet)));
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers?.["Cache-Control"], "public, max-age=300");
    const body = JSON.parse(res.body);
    assert.deepEqual(
      body.keys.map((k: Record<string, unknown>) => [k.kty, k.crv, k.alg, k.use]),
      [["EC", "P-384", "ES384", "sig"]],
    );
  });

  it("answers 404 on a stack that publishes no key", async () => {
    await assert.rejects(call(publicJwks(publicKeySet(""))), {
      name: "NotFoundError",
      message: "This stack publishes no signing keys",
    });
  });

  it("refuses at start-up a key set holding a private key member, or no key", () => {
    const leaked = pair.privateKey.export({ format: "jwk" });
    assert.throws(() => publicKeySet(JSON.stringify({ keys: [leaked] })), {
      message: "BULK_JWKS must hold public keys only",
    });
    assert.throws(() => publicKeySet(JSON.stringify({ keys: [] })), {
      message: "BULK_JWKS must be a JWK set with at least one key",
    });
  });
});
