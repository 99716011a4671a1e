import type { IncomingMessage } from "node:http";

/**
 * A local stand-in for Okta: an OIDC issuer on loopback (oauth2-mock-server,
 * real RS256 keys, JWKS over HTTP) with a client-credentials token endpoint
 * that issues access tokens carrying `cid`, `scp` and the organisation claim
 * of the local client that asked. Local clients and their secrets exist only
 * on this machine.
 */

export interface LocalClient {
  clientId: string;
  secret: string;
  org: string;
}

export const LOCAL_CLIENTS: LocalClient[] = [
  { clientId: "0oa-hoth-local-postman", secret: "local-only-postman-secret", org: "acme" },
  { clientId: "0oa-hoth-local-globex", secret: "local-only-globex-secret", org: "globex" },
];

export interface LocalOkta {
  issuer: string;
  tokenUrl: string;
  jwksUri: string;
  stop(): Promise<void>;
}

type TokenRequest = IncomingMessage & { body?: Record<string, string> };

function credentials(req: TokenRequest): { id?: string; secret?: string } {
  const basic = /^Basic (.+)$/.exec(req.headers.authorization ?? "");
  if (basic) {
    const [id, secret] = Buffer.from(basic[1], "base64").toString("utf8").split(":");
    return { id: decodeURIComponent(id ?? ""), secret: decodeURIComponent(secret ?? "") };
  }
  return { id: req.body?.client_id, secret: req.body?.client_secret };
}

export async function startOkta(opts: {
  port: number;
  audience: string;
  orgClaim: string;
}): Promise<LocalOkta> {
  const { OAuth2Server, Events } = await import("oauth2-mock-server");
  const server = new OAuth2Server();
  await server.issuer.keys.generate("RS256");
  server.service.on(
    Events.BeforeTokenSigning,
    (token: { payload: Record<string, unknown> }, req: TokenRequest) => {
      const { id } = credentials(req);
      const client = LOCAL_CLIENTS.find((c) => c.clientId === id);
      const now = Math.floor(Date.now() / 1000);
      Object.assign(token.payload, {
        aud: opts.audience,
        cid: id,
        sub: id,
        scp: String(req.body?.scope ?? "")
          .split(" ")
          .filter(Boolean),
        [opts.orgClaim]: client?.org,
        exp: now + 3600,
      });
    },
  );
  server.service.on(
    Events.BeforeResponse,
    (response: { body: unknown; statusCode: number }, req: TokenRequest) => {
      const { id, secret } = credentials(req);
      const client = LOCAL_CLIENTS.find((c) => c.clientId === id);
      if (!client || client.secret !== secret) {
        response.statusCode = 401;
        response.body = { error: "invalid_client" };
      }
    },
  );
  await server.start(opts.port, "127.0.0.1");
  const issuer = server.issuer.url as string;
  return {
    issuer,
    tokenUrl: `${issuer}/token`,
    jwksUri: `${issuer}/jwks`,
    stop: () => server.stop(),
  };
}

/** A client-credentials token from the local issuer. */
export async function fetchToken(
  tokenUrl: string,
  client: LocalClient,
  scopes: string,
): Promise<string> {
  const res = await fetch(tokenUrl, {
    method: "POST",
    headers: {
      "Content-Type": "application/x-www-form-urlencoded",
      Authorization: `Basic ${Buffer.from(`${client.clientId}:${client.secret}`).toString("base64")}`,
    },
    body: new URLSearchParams({ grant_type: "client_credentials", scope: scopes }).toString(),
  });
  if (!res.ok) throw new Error(`token endpoint answered ${res.status}`);
  return ((await res.json()) as { access_token: string }).access_token;
}
