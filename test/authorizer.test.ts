import * as assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
  CreateSecretCommand,
  PutSecretValueCommand,
  SecretsManagerClient,
} from "@aws-sdk/client-secrets-manager";
import type { APIGatewayAuthorizerResult, APIGatewayRequestAuthorizerEvent } from "aws-lambda";
import * as fc from "fast-check";
import { bundleHandler } from "../contracts/bundle";
import type { Route } from "../contracts/routes";
import { allowedRoutes, policyFor } from "../handlers/lib/authz";
import { grants, parseScope, parseScopes, tokenScopes } from "../handlers/lib/scopes";
import { captureOutput, loadHandler } from "./support/handlers";
import { startMoto } from "./support/moto";
import { countingProxy, type LocalIssuer, startIssuer } from "./support/oidc";
import { tokenMutation, watchProcessFaults } from "./support/tokens";

type Handler = (event: APIGatewayRequestAuthorizerEvent) => Promise<APIGatewayAuthorizerResult>;

const CLIENT = "0oa-hoth-test";
const OTHER_CLIENT = "0oa-hoth-test-2";
const AUDIENCE = "api://hoth-test";
const API = "arn:aws:execute-api:us-east-1:123456789012:abc123/test";
const GET_SECRET = "secretsmanager.GetSecretValue";

function event(
  token: string | undefined,
  opts: { clientId?: string | null; scheme?: string; route?: [string, string] } = {},
) {
  const headers: Record<string, string> = {};
  if (token !== undefined) headers.Authorization = `${opts.scheme ?? "Bearer"} ${token}`;
  if (opts.clientId !== null) headers["X-Client-Id"] = opts.clientId ?? CLIENT;
  const [method, resource] = opts.route ?? ["POST", "/health"];
  return {
    type: "REQUEST",
    methodArn: `${API}/${method}${resource.replace(/\{[^}]+\}/g, "x")}`,
    resource,
    path: resource,
    httpMethod: method,
    headers,
    multiValueHeaders: {},
    pathParameters: null,
    queryStringParameters: null,
    multiValueQueryStringParameters: null,
    stageVariables: null,
    requestContext: { requestId: "authz-req-1" },
  } as unknown as APIGatewayRequestAuthorizerEvent;
}

const resources = (r: APIGatewayAuthorizerResult) =>
  r.policyDocument.Statement[0] as { Effect: string; Resource: string[] };

describe("SMART scopes", () => {
  it("parses v1 and v2 grammar into access letters, and ignores what it cannot honour", () => {
    const access = (s: string) => {
      const p = parseScope(s);
      return p ? `${p.context}/${p.resource}.${[...p.access].join("")}` : undefined;
    };
    assert.deepEqual(
      [
        "system/Patient.write",
        "system/Patient.read",
        "patient/*.read",
        "system/*.*",
        "system/Patient.cruds",
        "user/*.rs",
        "system/Task.c",
        "system/Patient.rs?identifier=x",
        "system/Patient.sc",
        "system/Patient.",
        "system/patient.r",
        "openid",
        "Patient.read",
      ].map(access),
      [
        "system/Patient.cud",
        "system/Patient.rs",
        "patient/*.rs",
        "system/*.cruds",
        "system/Patient.cruds",
        "user/*.rs",
        "system/Task.c",
        undefined,
        undefined,
        undefined,
        undefined,
        undefined,
        undefined,
      ],
    );
  });

  it("reads scp (array) or scope (string)", () => {
    assert.deepEqual(tokenScopes({ scp: ["a", "b"] }), ["a", "b"]);
    assert.deepEqual(tokenScopes({ scope: "a  b" }), ["a", "b"]);
    assert.deepEqual(tokenScopes({ scope: 5 }), []);
  });

  it("lets only system scopes grant routes", () => {
    const req = { resource: "Patient", access: "c" } as const;
    assert.equal(grants(parseScopes(["system/Patient.c"])[0], req), true);
    assert.equal(grants(parseScopes(["system/*.write"])[0], req), true);
    assert.equal(grants(parseScopes(["system/Patient.r"])[0], req), false);
    assert.equal(grants(parseScopes(["user/Patient.c"])[0], req), false);
    assert.equal(grants(parseScopes(["patient/*.*"])[0], req), false);
  });

  it("allows exactly the routes the scopes grant, and denies explicitly when none", () => {
    const table: Route[] = [
      {
        method: "POST",
        path: "/members",
        handler: "app",
        anyOf: [{ resource: "Patient", access: "c" }],
        summary: "",
      },
      {
        method: "GET",
        path: "/members/{id}",
        handler: "app",
        anyOf: [{ resource: "Patient", access: "r" }],
        summary: "",
      },
      {
        method: "POST",
        path: "/migrations",
        handler: "app",
        anyOf: [{ resource: "Task", access: "c" }],
        summary: "",
      },
    ];
    const allow = policyFor(
      "s",
      `${API}/GET/members/x`,
      allowedRoutes(parseScopes(["system/Patient.rs"]), table),
      {},
    );
    assert.deepEqual(allow.policyDocument.Statement, [
      { Action: "execute-api:Invoke", Effect: "Allow", Resource: [`${API}/GET/members/*`] },
    ]);
    const deny = policyFor(
      "s",
      `${API}/POST/members`,
      allowedRoutes(parseScopes(["system/Observation.r"]), table),
      {},
    );
    assert.deepEqual(deny.policyDocument.Statement, [
      { Action: "execute-api:Invoke", Effect: "Deny", Resource: [`${API}/*/*`] },
    ]);
  });
});

describe("authorizer against a local OIDC issuer and Secrets Manager (moto)", () => {
  let issuer: LocalIssuer;
  let proxy: Awaited<ReturnType<typeof countingProxy>>;
  let secretId: string;
  let motoUrl: string;
  const load = (env: Record<string, string> = {}) =>
    loadHandler<{ handler: Handler }>("handlers/authorizer.ts", {
      OKTA_SECRET_ID: secretId,
      OKTA_ALLOW_INSECURE_ISSUER: "true",
      AWS_ENDPOINT_URL: proxy.url,
      ...env,
    }).handler;
  const settings = (o: Record<string, unknown> = {}) =>
    JSON.stringify({
      issuer: issuer.issuer,
      audience: AUDIENCE,
      allowedClientIds: [CLIENT, OTHER_CLIENT],
      jwksUri: issuer.jwksUri,
      ...o,
    });

  before(async function () {
    this.timeout(60_000);
    motoUrl = await startMoto();
    proxy = await countingProxy(motoUrl);
    issuer = await startIssuer({
      aud: AUDIENCE,
      cid: CLIENT,
      sub: CLIENT,
      scp: ["system/Patient.cruds"],
      org: "acme",
    });
    secretId = `hoth-test/okta-${Date.now()}`;
    await new SecretsManagerClient({}).send(
      new CreateSecretCommand({ Name: secretId, SecretString: settings() }),
    );
  });

  after(async () => {
    process.env.AWS_ENDPOINT_URL = motoUrl;
    await proxy.close();
    await issuer.stop();
  });

  it("allows a valid token exactly the routes its scopes grant, with sub as principal and the context keys", async () => {
    const handler = load();
    const { result, output } = await captureOutput(async () =>
      handler(event(await issuer.token())),
    );
    assert.equal(result.principalId, CLIENT);
    assert.deepEqual(resources(result), {
      Action: "execute-api:Invoke",
      Effect: "Allow",
      Resource: [
        `${API}/POST/health`,
        `${API}/POST/members`,
        `${API}/GET/members`,
        `${API}/GET/members/*`,
        `${API}/GET/members/*/_history`,
        `${API}/GET/members/*/_history/*`,
      ],
    });
    assert.deepEqual(result.context, {
      clientId: CLIENT,
      scopes: "system/Patient.cruds",
      org: "acme",
    });
    const token = await issuer.token();
    assert.ok(!output.includes(token.split(".")[2]), "no token in the logs");
  });

  it("grants the migration routes to Task scopes (v1 and v2 alike)", async () => {
    const handler = load();
    const v1 = await handler(
      event(await issuer.token({ scp: ["system/Task.write", "system/Task.read"] })),
    );
    const v2 = await handler(
      event(await issuer.token({ scp: undefined, scope: "system/Task.cr" })),
    );
    for (const r of [v1, v2]) {
      assert.deepEqual(resources(r).Resource, [
        `${API}/POST/health`,
        `${API}/POST/migrations`,
        `${API}/GET/migrations/*`,
      ]);
    }
  });

  it("denies a route the scopes do not grant explicitly, naming the scope it needs in the context", async () => {
    const handler = load();
    const token = await issuer.token({ scp: ["system/Patient.cruds"] });
    for (const [route, scope] of [
      [["POST", "/migrations"], "system/Task.c"],
      [["GET", "/migrations/{id}"], "system/Task.r"],
    ] as const) {
      const r = await handler(event(token, { route: [...route] }));
      assert.deepEqual(r.policyDocument.Statement, [
        { Action: "execute-api:Invoke", Effect: "Deny", Resource: [`${API}/*/*`] },
      ]);
      assert.deepEqual(r.context, {
        clientId: CLIENT,
        scopes: "system/Patient.cruds",
        org: "acme",
        requiredScope: scope,
      });
    }
    // A granted route keeps the Allow of every granted route, without requiredScope.
    const allowed = await handler(event(token, { route: ["GET", "/members/{id}"] }));
    assert.equal(resources(allowed).Effect, "Allow");
    assert.equal(allowed.context?.requiredScope, undefined);
  });

  it("allows only health to a token whose scopes grant no route, and drops a non-string org", async () => {
    const handler = load();
    const r = await handler(
      event(await issuer.token({ scp: ["system/Observation.r", "patient/*.read"], org: 42 })),
    );
    assert.deepEqual(resources(r), {
      Action: "execute-api:Invoke",
      Effect: "Allow",
      Resource: [`${API}/POST/health`],
    });
    assert.deepEqual(r.context, {
      clientId: CLIENT,
      scopes: "system/Observation.r patient/*.read",
    });
  });

  const refusals: [string, () => Promise<APIGatewayRequestAuthorizerEvent>][] = [
    ["no Authorization header", async () => event(undefined)],
    ["a Basic scheme", async () => event(await issuer.token(), { scheme: "Basic" })],
    ["garbage", async () => event("not-a-jwt")],
    ["a token over 8 KB", async () => event(`${"a".repeat(5000)}.${"b".repeat(4000)}.c`)],
    ["alg none", async () => event(await issuer.forged("none"))],
    [
      "HS256 signed with the public key",
      async () => event(await issuer.forged("hs256-public-key")),
    ],
    [
      "an expired token",
      async () => event(await issuer.token({ exp: Math.floor(Date.now() / 1000) - 60 })),
    ],
    [
      "nbf in the future",
      async () => event(await issuer.token({ nbf: Math.floor(Date.now() / 1000) + 600 })),
    ],
    ["no exp", async () => event(await issuer.token({ exp: undefined }))],
    ["another issuer", async () => event(await issuer.token({ iss: "http://127.0.0.1:1/evil" }))],
    ["another audience", async () => event(await issuer.token({ aud: "api://someone-else" }))],
    [
      "a client that is not allowed",
      async () => event(await issuer.token({ cid: "0oa-stranger" }), { clientId: "0oa-stranger" }),
    ],
    [
      "a cid that differs from X-Client-Id",
      async () => event(await issuer.token(), { clientId: OTHER_CLIENT }),
    ],
    ["no X-Client-Id", async () => event(await issuer.token(), { clientId: null })],
    ["an unknown key id", async () => event(await issuer.token({}, { kid: "not-a-known-kid" }))],
  ];
  for (const [what, make] of refusals) {
    it(`answers ${what} with Unauthorized (401)`, async () => {
      const handler = load();
      const e = await make();
      const { output } = await captureOutput(() =>
        assert.rejects(handler(e), (err: Error) => err.message === "Unauthorized"),
      );
      const token = /Bearer (.+)/.exec(e.headers?.Authorization ?? "")?.[1];
      if (token) assert.ok(!output.includes(token), "the token is never logged");
      assert.match(output, /"message":"unauthorized"/);
    });
  }

  it("answers a token with a known kid, a future exp and an empty signature with 401, and keeps serving", async () => {
    // The attack of issue 14: njwt threw a TypeError from jwks-rsa's callback.
    const handler = load();
    const valid = await issuer.token();
    const kid = JSON.parse(Buffer.from(valid.split(".")[0], "base64url").toString()).kid;
    const b64u = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");
    const forged = `${b64u({ alg: "RS256", kid })}.${b64u({ exp: Math.floor(Date.now() / 1000) + 600 })}.`;
    const crashes = watchProcessFaults();
    try {
      const { output } = await captureOutput(() =>
        assert.rejects(handler(event(forged)), { message: "Unauthorized" }),
      );
      assert.match(output, /"kind":"malformed","reason":"segments"/);
      // Past the shape check too: the library itself must refuse it without throwing.
      const signatureless = `${forged}${"A".repeat(342)}`;
      await captureOutput(() =>
        assert.rejects(handler(event(signatureless)), { message: "Unauthorized" }),
      );
      assert.equal(resources(await handler(event(valid))).Effect, "Allow");
      await new Promise((r) => setImmediate(r));
    } finally {
      crashes.stop();
    }
    assert.deepEqual(crashes.faults, []);
  });

  it("answers 10,000 mutations of a valid token with 401, never throws or rejects unhandled, and still allows the valid token", async function () {
    this.timeout(300_000);
    const handler = load();
    const valid = await issuer.token({ jti: "fuzz-original" });
    const crashes = watchProcessFaults();
    let refused = 0;
    try {
      await fc.assert(
        fc.asyncProperty(tokenMutation(valid), async (mutated) => {
          fc.pre(mutated !== valid);
          const { result, output } = await captureOutput(() =>
            handler(event(mutated)).then(
              (r) => ({ allowed: r, error: undefined }),
              (e: Error) => ({ allowed: undefined, error: e.message }),
            ),
          );
          // A Deny would be acceptable; an Allow for a modified token never is.
          if (result.allowed) {
            assert.notEqual(resources(result.allowed).Effect, "Allow", "an Allow for a mutation");
          } else {
            assert.equal(result.error, "Unauthorized");
            refused++;
          }
          for (const segment of mutated.split(".").filter((s) => s.length >= 8)) {
            assert.ok(!output.includes(segment), "a token segment in a log line");
          }
        }),
        { seed: 1414, numRuns: 10_000, endOnFailure: true },
      );
      assert.equal(resources(await handler(event(valid))).Effect, "Allow");
      await new Promise((r) => setImmediate(r));
    } finally {
      crashes.stop();
    }
    assert.deepEqual(crashes.faults, []);
    assert.ok(refused >= 9_000, `${refused} refusals`);
  });

  it("refuses before any call to Okta or Secrets Manager when the request is malformed", async () => {
    const handler = load();
    const [jwks, reads] = [issuer.jwksRequests(), proxy.count(GET_SECRET)];
    await assert.rejects(handler(event("garbage")), { message: "Unauthorized" });
    await assert.rejects(handler(event(await issuer.token(), { clientId: null })), {
      message: "Unauthorized",
    });
    assert.deepEqual([issuer.jwksRequests(), proxy.count(GET_SECRET)], [jwks, reads]);
  });

  it("reads the settings and the keys once for 100 concurrent decisions, repeated or fresh tokens alike", async () => {
    const handler = load();
    const [jwks, reads] = [issuer.jwksRequests(), proxy.count(GET_SECRET)];
    const same = await issuer.token();
    const fresh = await Promise.all(
      Array.from({ length: 50 }, (_, i) => issuer.token({ jti: `t${i}` })),
    );
    const results = await Promise.all([
      ...Array.from({ length: 50 }, () => handler(event(same))),
      ...fresh.map((t) => handler(event(t))),
    ]);
    assert.ok(results.every((r) => resources(r).Effect === "Allow"));
    assert.equal(proxy.count(GET_SECRET) - reads, 1);
    assert.equal(issuer.jwksRequests() - jwks, 1);
  });

  it("bounds JWKS requests when a flood of unknown key ids arrives", async () => {
    const handler = load();
    const jwks = issuer.jwksRequests();
    const flood = await Promise.all(
      Array.from({ length: 50 }, (_, i) => issuer.token({}, { kid: `unknown-${i}` })),
    );
    await captureOutput(() =>
      Promise.all(flood.map((t) => assert.rejects(handler(event(t)), { message: "Unauthorized" }))),
    );
    // One refetch per 10 s for unknown kids, however many arrive.
    assert.ok(issuer.jwksRequests() - jwks <= 1, `${issuer.jwksRequests() - jwks} JWKS requests`);
  });

  it("picks up rotated settings after a failure they explain, at the cost of one extra read", async () => {
    const handler = load();
    assert.equal(resources(await handler(event(await issuer.token()))).Effect, "Allow");
    const reads = proxy.count(GET_SECRET);
    await new SecretsManagerClient({ endpoint: motoUrl }).send(
      new PutSecretValueCommand({
        SecretId: secretId,
        SecretString: settings({ audience: "api://hoth-rotated" }),
      }),
    );
    try {
      const r = await handler(event(await issuer.token({ aud: "api://hoth-rotated" })));
      assert.equal(resources(r).Effect, "Allow");
      assert.equal(proxy.count(GET_SECRET) - reads, 1);
    } finally {
      await new SecretsManagerClient({ endpoint: motoUrl }).send(
        new PutSecretValueCommand({ SecretId: secretId, SecretString: settings() }),
      );
    }
  });

  it("never allows when Secrets Manager cannot be read", async () => {
    const handler = load({ OKTA_SECRET_ID: `hoth-test/missing-${Date.now()}` });
    const token = await issuer.token();
    const { output } = await captureOutput(() =>
      assert.rejects(handler(event(token)), {
        message: "AuthorizerFailure",
      }),
    );
    assert.match(output, /"errorClass":"SecretUnavailableError"/);
  });

  it("never allows when the JWKS endpoint is down", async () => {
    const handler = load();
    const token = await issuer.token();
    await issuer.stopJwks();
    await captureOutput(() =>
      assert.rejects(handler(event(token)), { message: "AuthorizerFailure" }),
    );
  });

  it("decides from the esbuild bundle in a fresh Node process", async function () {
    this.timeout(60_000);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "hoth-authz-"));
    fs.writeFileSync(path.join(dir, "index.js"), bundleHandler("authorizer").code);
    const fresh = await startIssuer({
      aud: AUDIENCE,
      cid: CLIENT,
      sub: CLIENT,
      scp: ["system/Patient.r"],
    });
    const id = `hoth-test/okta-bundle-${Date.now()}`;
    await new SecretsManagerClient({ endpoint: motoUrl }).send(
      new CreateSecretCommand({
        Name: id,
        SecretString: JSON.stringify({
          issuer: fresh.issuer,
          audience: AUDIENCE,
          allowedClientIds: [CLIENT],
          jwksUri: fresh.jwksUri,
        }),
      }),
    );
    const script = `require(${JSON.stringify(path.join(dir, "index.js"))}).handler(${JSON.stringify(event(await fresh.token()))})
      .then((r) => process.stdout.write("RESULT " + JSON.stringify(r) + "\\n"), (e) => process.stdout.write("ERROR " + e.message + "\\n"));`;
    // Asynchronously: the issuer and its JWKS live in this process.
    const child = spawn(process.execPath, ["-e", script], {
      env: {
        ...process.env,
        OKTA_SECRET_ID: id,
        OKTA_ALLOW_INSECURE_ISSUER: "true",
        AWS_ENDPOINT_URL: motoUrl,
      },
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => {
      stdout += d;
    });
    child.stderr.on("data", (d) => {
      stderr += d;
    });
    await new Promise((r) => child.on("close", r));
    const run = { stdout, stderr };
    await fresh.stop();
    fs.rmSync(dir, { recursive: true, force: true });
    const line = run.stdout.split("\n").find((l) => l.startsWith("RESULT "));
    assert.ok(line, `no decision: ${run.stdout} ${run.stderr}`);
    assert.deepEqual(resources(JSON.parse(line.slice(7))).Resource, [
      `${API}/POST/health`,
      `${API}/GET/members/*`,
      `${API}/GET/members/*/_history`,
      `${API}/GET/members/*/_history/*`,
    ]);
  });
});
