import { createHmac, createPublicKey, type JsonWebKey } from "node:crypto";
import * as http from "node:http";
import type { AddressInfo } from "node:net";

/**
 * A real local OIDC issuer for the authorizer tests: oauth2-mock-server signs
 * RS256 tokens with a real key; a small JWKS server publishes that key over
 * HTTP and counts the requests it gets (and can be stopped to play "Okta down").
 */

type Payload = Record<string, unknown>;
type Header = Record<string, unknown>;

export interface LocalIssuer {
  issuer: string;
  jwksUri: string;
  jwksRequests: () => number;
  token(payload?: Payload, header?: Header): Promise<string>;
  /** A token signed some other way: alg none, or HS256 keyed with the public key. */
  forged(kind: "none" | "hs256-public-key", payload?: Payload): Promise<string>;
  stopJwks(): Promise<void>;
  stop(): Promise<void>;
}

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");

export async function startIssuer(defaults: Payload): Promise<LocalIssuer> {
  const { OAuth2Server } = await import("oauth2-mock-server");
  const server = new OAuth2Server();
  const key = await server.issuer.keys.generate("RS256");
  await server.start(0, "127.0.0.1");
  const issuer = server.issuer.url as string;
  let requests = 0;
  const jwks = http.createServer((_req, res) => {
    requests++;
    res.writeHead(200, { "Content-Type": "application/json" });
    res.end(JSON.stringify({ keys: server.issuer.keys.toJSON() }));
  });
  await new Promise<void>((r) => jwks.listen(0, "127.0.0.1", r));
  const jwksUri = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/v1/keys`;
  const now = () => Math.floor(Date.now() / 1000);
  const claims = (payload: Payload) => ({
    iss: issuer,
    iat: now(),
    exp: now() + 300,
    ...defaults,
    ...payload,
  });

  return {
    issuer,
    jwksUri,
    jwksRequests: () => requests,
    token: (payload = {}, header = {}) =>
      server.issuer.buildToken({
        scopesOrTransform: (h: Header, p: Payload) => {
          Object.assign(h, header);
          for (const k of Object.keys(p)) delete p[k];
          for (const [k, v] of Object.entries(claims(payload))) if (v !== undefined) p[k] = v;
        },
      }),
    async forged(kind, payload = {}) {
      const body = b64(claims(payload));
      if (kind === "none") return `${b64({ alg: "none", typ: "JWT", kid: key.kid })}.${body}.`;
      const pem = createPublicKey({ key: key as unknown as JsonWebKey, format: "jwk" })
        .export({ type: "spki", format: "pem" })
        .toString();
      const head = b64({ alg: "HS256", typ: "JWT", kid: key.kid });
      return `${head}.${body}.${createHmac("sha256", pem).update(`${head}.${body}`).digest("base64url")}`;
    },
    stopJwks: () => new Promise<void>((r) => jwks.close(() => r())),
    async stop() {
      await server.stop();
      if (jwks.listening) await new Promise<void>((r) => jwks.close(() => r()));
    },
  };
}

/** An HTTP proxy to `target` that counts requests by X-Amz-Target, and can be closed. */
export async function countingProxy(target: string) {
  const counts: Record<string, number> = {};
  const server = http.createServer((req, res) => {
    const op = String(req.headers["x-amz-target"] ?? req.url);
    counts[op] = (counts[op] ?? 0) + 1;
    const upstream = http.request(
      `${target}${req.url}`,
      { method: req.method, headers: req.headers },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    req.pipe(upstream);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    count: (op: string) => counts[op] ?? 0,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
