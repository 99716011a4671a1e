import * as assert from "node:assert/strict";
import type {
  APIGatewayAuthorizerResult,
  APIGatewayProxyEvent,
  APIGatewayProxyResult,
  APIGatewayRequestAuthorizerEvent,
  Context,
} from "aws-lambda";
import { GATEWAY_RESPONSES } from "../contracts/gatewayResponses";
import { IDENTITY_SOURCES, ROUTES } from "../contracts/routes";
import { type EmulatorOptions, evaluate, startApiGateway } from "../local/apiGateway";

type Policy = APIGatewayAuthorizerResult["policyDocument"];
type Statement = { Effect: "Allow" | "Deny"; Action?: string; Resource?: string | string[] };

const STAGE = "test";
/** The execute-api ARN prefix the emulator builds for STAGE. */
const API_ARN = `arn:aws:execute-api:us-east-1:000000000000:local/${STAGE}`;
const MAX_PAYLOAD = 10 * 1024 * 1024;
const CREDENTIALS = { Authorization: "Bearer token-a", "X-Client-Id": "client-a" };
const CONTEXT = { org: "acme", clientId: "client-a", scopes: "system/Patient.cruds" };
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const policy = (...statements: Statement[]): Policy => ({
  Version: "2012-10-17",
  Statement: statements.map((s) => ({ Action: "execute-api:Invoke", ...s })) as never,
});

const decision = (...statements: Statement[]): APIGatewayAuthorizerResult => ({
  principalId: "client-a",
  policyDocument: policy(...statements),
  context: CONTEXT,
});

const allowAll = () => decision({ Effect: "Allow", Resource: [`${API_ARN}/*`] });

/** A REQUEST authorizer that records every event it is given. */
function fakeAuthorizer(
  decide: (
    e: APIGatewayRequestAuthorizerEvent,
  ) => APIGatewayAuthorizerResult | Promise<APIGatewayAuthorizerResult> = allowAll,
) {
  const events: APIGatewayRequestAuthorizerEvent[] = [];
  const authorizer = async (e: APIGatewayRequestAuthorizerEvent) => {
    events.push(e);
    return decide(e);
  };
  return Object.assign(authorizer, { events });
}

const OK: APIGatewayProxyResult = {
  statusCode: 200,
  headers: { "Content-Type": "application/json" },
  body: '{"status":"pass"}',
};

/** A Lambda proxy integration that records every event and context it is given. */
function fakeApp(
  respond: (e: APIGatewayProxyEvent, c: Context) => Promise<APIGatewayProxyResult> = async () => OK,
) {
  const calls: { event: APIGatewayProxyEvent; context: Context }[] = [];
  const app = async (event: APIGatewayProxyEvent, context: Context) => {
    calls.push({ event, context });
    return respond(event, context);
  };
  return Object.assign(app, { calls });
}

/** Restores what a test replaced; run after every test. */
const restores: (() => void | Promise<void>)[] = [];

async function startGateway(
  o: Pick<EmulatorOptions, "authorizer" | "app"> & Partial<EmulatorOptions>,
) {
  const api = await startApiGateway({
    routes: ROUTES,
    stage: STAGE,
    cacheTtlSeconds: 300,
    timeoutMs: 2_000,
    port: 0,
    ...o,
  });
  restores.push(api.stop);
  const call = (
    method: string,
    path: string,
    init: { headers?: Record<string, string>; body?: string | Buffer } = {},
  ) =>
    fetch(`${api.url}${path}`, { method, headers: init.headers ?? CREDENTIALS, body: init.body });
  return { url: api.url, call };
}

/** Date.now() offset by a controllable amount (the emulator's cache clock). */
function fakeClock() {
  const realNow = Date.now;
  let offset = 0;
  Date.now = () => realNow() + offset;
  restores.push(() => {
    Date.now = realNow;
  });
  return {
    advance: (ms: number) => {
      offset += ms;
    },
  };
}

function spec(type: string) {
  const found = GATEWAY_RESPONSES.find((r) => r.type === type);
  assert.ok(found, `no gateway response ${type}`);
  return found;
}

/** The response is API Gateway's own, rendered as a FHIR OperationOutcome. */
async function assertOutcome(
  res: Response,
  expected: {
    status: number;
    code: string;
    diagnostics: string;
    headers?: Record<string, string | null>;
  },
) {
  assert.equal(res.status, expected.status);
  assert.equal(res.headers.get("content-type"), "application/fhir+json");
  for (const [name, value] of Object.entries(expected.headers ?? {}))
    assert.equal(res.headers.get(name), value, name);
  assert.deepEqual(await res.json(), {
    resourceType: "OperationOutcome",
    issue: [{ severity: "error", code: expected.code, diagnostics: expected.diagnostics }],
  });
}

const UNAUTHORIZED = {
  status: 401,
  code: "login",
  diagnostics: "Unauthorized",
  headers: { "www-authenticate": "Bearer" },
};
/** The 403 names the scope the authorizer's context says the route needs (empty when it names none). */
const accessDenied = (requiredScope = "") => ({
  status: 403,
  code: "forbidden",
  diagnostics: `The access token's scopes do not grant this route; it needs ${requiredScope}`,
  headers: { "www-authenticate": 'Bearer error="insufficient_scope"' },
});
const ACCESS_DENIED = accessDenied();
const MISSING_AUTHENTICATION_TOKEN = {
  status: 404,
  code: "not-found",
  diagnostics: "Missing Authentication Token",
};
const INTERNAL = { code: "exception", diagnostics: "Internal server error" };

describe("API Gateway emulator (local/apiGateway.ts)", () => {
  afterEach(async () => {
    for (const restore of restores.splice(0).reverse()) await restore();
  });

  it("serves a public route (authorization NONE) without credentials or the authorizer, with no authorizer context", async () => {
    // Prepare
    const authorizer = fakeAuthorizer(() => {
      throw new Error("Unauthorized");
    });
    const app = fakeApp();
    const { call } = await startGateway({ authorizer, app });
    // Act
    const res = await call("GET", "/.well-known/jwks.json", { headers: {} });
    const denied = await call("POST", "/health", { headers: {} });
    // Assess
    assert.equal(res.status, 200);
    assert.equal(authorizer.events.length, 0);
    assert.equal(app.calls.length, 1);
    assert.equal(app.calls[0].event.resource, "/.well-known/jwks.json");
    assert.equal(app.calls[0].event.requestContext.authorizer, null);
    await assertOutcome(denied, UNAUTHORIZED);
  });

  it("uses the statuses and codes contracts/gatewayResponses.ts configures", () => {
    assert.deepEqual(
      ["UNAUTHORIZED", "ACCESS_DENIED", "MISSING_AUTHENTICATION_TOKEN", "REQUEST_TOO_LARGE"].map(
        (t) => [spec(t).statusCode, spec(t).code],
      ),
      [
        [401, "login"],
        [403, "forbidden"],
        [404, "not-found"],
        [413, "too-long"],
      ],
    );
    assert.deepEqual(
      ["AUTHORIZER_FAILURE", "INTEGRATION_TIMEOUT", "DEFAULT_5XX"].map((t) => [
        spec(t).statusCode,
        spec(t).code,
      ]),
      [
        [500, "exception"],
        [504, "timeout"],
        [undefined, "exception"],
      ],
    );
  });

  describe("identity sources", () => {
    for (const source of IDENTITY_SOURCES) {
      it(`answers 401 without invoking the authorizer when ${source} is absent`, async () => {
        const authorizer = fakeAuthorizer();
        const app = fakeApp();
        const { call } = await startGateway({ authorizer, app });
        const headers = Object.fromEntries(
          Object.entries(CREDENTIALS).filter(([name]) => name !== source),
        );

        const res = await call("POST", "/health", { headers });

        await assertOutcome(res, UNAUTHORIZED);
        assert.equal(authorizer.events.length, 0);
        assert.equal(app.calls.length, 0);
      });

      it(`answers 401 without invoking the authorizer when ${source} is empty`, async () => {
        const authorizer = fakeAuthorizer();
        const app = fakeApp();
        const { call } = await startGateway({ authorizer, app });

        const res = await call("POST", "/health", { headers: { ...CREDENTIALS, [source]: "" } });

        await assertOutcome(res, UNAUTHORIZED);
        assert.equal(authorizer.events.length, 0);
        assert.equal(app.calls.length, 0);
      });
    }
  });

  describe("REQUEST authorizer", () => {
    it("invokes the authorizer with API Gateway's REQUEST event for the method ARN", async () => {
      const authorizer = fakeAuthorizer();
      const app = fakeApp();
      const { call } = await startGateway({ authorizer, app });

      const res = await call("GET", "/members/m-1?_format=json&_pretty=true", {
        headers: { ...CREDENTIALS, "X-Correlation-Id": "corr-1" },
      });

      assert.equal(res.status, 200);
      assert.equal(authorizer.events.length, 1);
      const [e] = authorizer.events;
      assert.equal(e.type, "REQUEST");
      assert.equal(e.methodArn, `${API_ARN}/GET/members/m-1`);
      assert.equal(e.resource, "/members/{id}");
      assert.equal(e.path, "/members/m-1");
      assert.equal(e.httpMethod, "GET");
      assert.equal(e.headers?.authorization, "Bearer token-a");
      assert.equal(e.headers?.["x-client-id"], "client-a");
      assert.equal(e.headers?.["x-correlation-id"], "corr-1");
      assert.deepEqual(e.pathParameters, { id: "m-1" });
      assert.deepEqual(e.queryStringParameters, { _format: "json", _pretty: "true" });
      assert.equal(e.stageVariables, null);
      assert.match(e.requestContext.requestId, UUID);
      assert.deepEqual(
        {
          stage: e.requestContext.stage,
          apiId: e.requestContext.apiId,
          accountId: e.requestContext.accountId,
        },
        { stage: STAGE, apiId: "local", accountId: "000000000000" },
      );
    });

    it("builds the method ARN from the method and the concrete path of each route", async () => {
      const authorizer = fakeAuthorizer();
      const app = fakeApp();
      const { call } = await startGateway({ authorizer, app, cacheTtlSeconds: 0 });

      for (const [method, path] of [
        ["POST", "/health"],
        ["POST", "/members"],
        ["GET", "/members/m-2"],
        ["POST", "/migrations"],
        ["GET", "/migrations/mig-1"],
      ])
        assert.equal(
          (await call(method, path, { body: method === "POST" ? "{}" : undefined })).status,
          200,
        );

      assert.deepEqual(
        authorizer.events.map((e) => [e.methodArn, e.resource]),
        [
          [`${API_ARN}/POST/health`, "/health"],
          [`${API_ARN}/POST/members`, "/members"],
          [`${API_ARN}/GET/members/m-2`, "/members/{id}"],
          [`${API_ARN}/POST/migrations`, "/migrations"],
          [`${API_ARN}/GET/migrations/mig-1`, "/migrations/{id}"],
        ],
      );
    });

    it("answers 401 when the authorizer throws Unauthorized", async () => {
      const authorizer = fakeAuthorizer(() => {
        throw new Error("Unauthorized");
      });
      const app = fakeApp();
      const { call } = await startGateway({ authorizer, app });

      const res = await call("POST", "/health");

      await assertOutcome(res, UNAUTHORIZED);
      assert.equal(authorizer.events.length, 1);
      assert.equal(app.calls.length, 0);
    });

    it("answers 500 AUTHORIZER_FAILURE when the authorizer throws any other error", async () => {
      const authorizer = fakeAuthorizer(() => {
        throw new Error("secret store unreachable");
      });
      const app = fakeApp();
      const { call } = await startGateway({ authorizer, app });

      const res = await call("POST", "/health");

      await assertOutcome(res, { status: 500, ...INTERNAL });
      assert.equal(authorizer.events.length, 1);
      assert.equal(app.calls.length, 0);
    });

    it("answers 500 AUTHORIZER_CONFIGURATION_ERROR when the authorizer returns no policy", async () => {
      const authorizer = fakeAuthorizer(
        () => ({ principalId: "client-a" }) as unknown as APIGatewayAuthorizerResult,
      );
      const app = fakeApp();
      const { call } = await startGateway({ authorizer, app });

      const first = await call("POST", "/health");
      const second = await call("POST", "/health");

      await assertOutcome(first, { status: 500, ...INTERNAL });
      await assertOutcome(second, { status: 500, ...INTERNAL });
      assert.equal(authorizer.events.length, 2, "an invalid result is not cached");
      assert.equal(app.calls.length, 0);
    });

    it("answers 500 AUTHORIZER_CONFIGURATION_ERROR when the context holds a non-primitive value", async () => {
      const authorizer = fakeAuthorizer(() => ({
        ...allowAll(),
        context: { org: "acme", scopes: ["system/Patient.r"] } as never,
      }));
      const app = fakeApp();
      const { call } = await startGateway({ authorizer, app });

      const res = await call("POST", "/health");

      await assertOutcome(res, { status: 500, ...INTERNAL });
      assert.equal(app.calls.length, 0);
    });
  });

  describe("authorizer result cache", () => {
    it("reuses the decision for the same identity sources within the TTL", async () => {
      const authorizer = fakeAuthorizer();
      const app = fakeApp();
      const { call } = await startGateway({ authorizer, app, cacheTtlSeconds: 300 });

      const first = await call("POST", "/health");
      const second = await call("POST", "/health");

      assert.deepEqual([first.status, second.status], [200, 200]);
      assert.equal(authorizer.events.length, 1);
      assert.equal(app.calls.length, 2);
      assert.deepEqual(app.calls[1].event.requestContext.authorizer, {
        ...CONTEXT,
        principalId: "client-a",
      });
    });

    it("caches a decision per route (context.httpMethod, context.resourcePath), not across routes", async () => {
      const authorizer = fakeAuthorizer(() =>
        decision({ Effect: "Allow", Resource: [`${API_ARN}/POST/health`] }),
      );
      const app = fakeApp();
      const { call } = await startGateway({ authorizer, app, cacheTtlSeconds: 300 });

      const health = await call("POST", "/health");
      const member = await call("GET", "/members/m-1");
      const again = await call("GET", "/members/m-2");

      assert.equal(health.status, 200);
      await assertOutcome(member, ACCESS_DENIED);
      await assertOutcome(again, ACCESS_DENIED);
      assert.deepEqual(
        authorizer.events.map((e) => `${e.httpMethod} ${e.resource}`),
        ["POST /health", "GET /members/{id}"],
      );
      assert.equal(app.calls.length, 1);
    });

    it("names in the 403 the scope the authorizer's Deny says the route needs", async () => {
      const authorizer = fakeAuthorizer(() => ({
        ...decision({ Effect: "Deny", Resource: [`${API_ARN}/*/*`] }),
        context: { ...CONTEXT, requiredScope: "system/Task.c" },
      }));
      const { call } = await startGateway({ authorizer, app: fakeApp() });

      const res = await call("POST", "/migrations", { body: "{}" });

      await assertOutcome(res, accessDenied("system/Task.c"));
    });

    it("invokes the authorizer again when any identity source differs", async () => {
      const authorizer = fakeAuthorizer();
      const app = fakeApp();
      const { call } = await startGateway({ authorizer, app, cacheTtlSeconds: 300 });

      await call("POST", "/health");
      await call("POST", "/health", { headers: { ...CREDENTIALS, Authorization: "Bearer b" } });
      await call("POST", "/health", { headers: { ...CREDENTIALS, "X-Client-Id": "client-b" } });
      await call("POST", "/health", { headers: { ...CREDENTIALS, "X-Other": "not a source" } });

      assert.deepEqual(
        authorizer.events.map((e) => [e.headers?.authorization, e.headers?.["x-client-id"]]),
        [
          ["Bearer token-a", "client-a"],
          ["Bearer b", "client-a"],
          ["Bearer token-a", "client-b"],
        ],
      );
      assert.equal(app.calls.length, 4);
    });

    it("invokes the authorizer on every request when the TTL is 0", async () => {
      const authorizer = fakeAuthorizer();
      const app = fakeApp();
      const { call } = await startGateway({ authorizer, app, cacheTtlSeconds: 0 });

      for (let i = 0; i < 3; i++) assert.equal((await call("POST", "/health")).status, 200);

      assert.equal(authorizer.events.length, 3);
      assert.equal(app.calls.length, 3);
    });

    it("invokes the authorizer again once the TTL has passed", async () => {
      const clock = fakeClock();
      const authorizer = fakeAuthorizer();
      const app = fakeApp();
      const { call } = await startGateway({ authorizer, app, cacheTtlSeconds: 1 });

      await call("POST", "/health");
      clock.advance(500);
      await call("POST", "/health");
      const cachedCalls = authorizer.events.length;
      clock.advance(600);
      await call("POST", "/health");
      await call("POST", "/health");

      assert.equal(cachedCalls, 1);
      assert.equal(authorizer.events.length, 2);
      assert.equal(app.calls.length, 4);
    });

    it("does not cache an authorizer failure", async () => {
      let fail = true;
      const authorizer = fakeAuthorizer(() => {
        if (fail) throw new Error("Unauthorized");
        return allowAll();
      });
      const app = fakeApp();
      const { call } = await startGateway({ authorizer, app, cacheTtlSeconds: 300 });

      const refused = await call("POST", "/health");
      fail = false;
      const allowed = await call("POST", "/health");

      assert.deepEqual([refused.status, allowed.status], [401, 200]);
      assert.equal(authorizer.events.length, 2);
    });
  });

  describe("policy evaluation against the method ARN", () => {
    it("runs the integration on an Allow and passes its result through unchanged", async () => {
      const authorizer = fakeAuthorizer(() =>
        decision({ Effect: "Allow", Resource: [`${API_ARN}/POST/members`] }),
      );
      const app = fakeApp(async () => ({
        statusCode: 201,
        headers: { "Content-Type": "application/fhir+json", Location: "/members/m-9" },
        body: '{"resourceType":"Patient","id":"m-9"}',
      }));
      const { call } = await startGateway({ authorizer, app });

      const res = await call("POST", "/members", { body: '{"resourceType":"Patient"}' });

      assert.equal(res.status, 201);
      assert.equal(res.headers.get("content-type"), "application/fhir+json");
      assert.equal(res.headers.get("location"), "/members/m-9");
      assert.equal(await res.text(), '{"resourceType":"Patient","id":"m-9"}');
      assert.equal(app.calls.length, 1);
    });

    it("answers 403 ACCESS_DENIED when an explicit Deny overrides an Allow", async () => {
      const authorizer = fakeAuthorizer(() =>
        decision(
          { Effect: "Allow", Resource: [`${API_ARN}/*`] },
          { Effect: "Deny", Resource: [`${API_ARN}/GET/members/*`] },
        ),
      );
      const app = fakeApp();
      const { call } = await startGateway({ authorizer, app });

      const denied = await call("GET", "/members/m-1");
      const allowed = await call("POST", "/health");

      await assertOutcome(denied, ACCESS_DENIED);
      assert.equal(allowed.status, 200);
      assert.equal(app.calls.length, 1);
      assert.equal(app.calls[0].event.resource, "/health");
    });

    it("answers 403 ACCESS_DENIED when no statement matches (implicit deny)", async () => {
      const authorizer = fakeAuthorizer(() =>
        decision({ Effect: "Allow", Resource: [`${API_ARN}/GET/members/*`] }),
      );
      const app = fakeApp();
      const { call } = await startGateway({ authorizer, app });

      const res = await call("POST", "/migrations", { body: "{}" });

      await assertOutcome(res, ACCESS_DENIED);
      assert.equal(authorizer.events.length, 1);
      assert.equal(app.calls.length, 0);
    });

    it("allows through a wildcard resource that matches the method ARN", async () => {
      const authorizer = fakeAuthorizer(() =>
        decision({
          Effect: "Allow",
          Resource: [`${API_ARN}/GET/members/*`, `arn:aws:execute-api:*:*:local/*/POST/health`],
        }),
      );
      const app = fakeApp();
      const { call } = await startGateway({ authorizer, app, cacheTtlSeconds: 0 });

      const member = await call("GET", "/members/m-1");
      const health = await call("POST", "/health");

      assert.deepEqual([member.status, health.status], [200, 200]);
      assert.equal(app.calls.length, 2);
    });

    it("answers 403 when a wildcard resource does not match the method ARN", async () => {
      const authorizer = fakeAuthorizer(() =>
        decision({
          Effect: "Allow",
          Resource: [`${API_ARN}/GET/members/*`, `${API_ARN.replace("/test", "/prod")}/*`],
        }),
      );
      const app = fakeApp();
      const { call } = await startGateway({ authorizer, app, cacheTtlSeconds: 0 });

      const collection = await call("POST", "/members", { body: "{}" });
      const otherRoute = await call("GET", "/migrations/mig-1");

      await assertOutcome(collection, ACCESS_DENIED);
      await assertOutcome(otherRoute, ACCESS_DENIED);
      assert.equal(authorizer.events.length, 2);
      assert.equal(app.calls.length, 0);
    });
  });

  describe("evaluate()", () => {
    const ARN = `${API_ARN}/GET/members/m-1`;

    it("allows when an Allow statement's resource matches the ARN exactly", () => {
      assert.equal(evaluate(policy({ Effect: "Allow", Resource: ARN }), ARN), "allow");
      assert.equal(evaluate(policy({ Effect: "Allow", Resource: [ARN] }), ARN), "allow");
    });

    it("denies when an explicit Deny matches, whatever the order of the statements", () => {
      const allow: Statement = { Effect: "Allow", Resource: [`${API_ARN}/*`] };
      const deny: Statement = { Effect: "Deny", Resource: [`${API_ARN}/GET/*`] };

      assert.equal(evaluate(policy(allow, deny), ARN), "deny");
      assert.equal(evaluate(policy(deny, allow), ARN), "deny");
    });

    it("denies implicitly when no statement matches, or there is none", () => {
      assert.equal(evaluate(policy(), ARN), "deny");
      assert.equal(
        evaluate(policy({ Effect: "Allow", Resource: [`${API_ARN}/POST/members`] }), ARN),
        "deny",
      );
      assert.equal(evaluate(policy({ Effect: "Allow" }), ARN), "deny");
    });

    it("ignores a Deny that does not match the ARN", () => {
      assert.equal(
        evaluate(
          policy(
            { Effect: "Allow", Resource: [ARN] },
            { Effect: "Deny", Resource: [`${API_ARN}/POST/*`] },
          ),
          ARN,
        ),
        "allow",
      );
    });

    it("lets * span any characters, slashes included, and anchors the whole ARN", () => {
      const allows = (resource: string, arn = ARN) =>
        evaluate(policy({ Effect: "Allow", Resource: [resource] }), arn);

      assert.equal(allows("*"), "allow");
      assert.equal(allows(`${API_ARN}/*`), "allow");
      assert.equal(allows(`${API_ARN}/*/members/*`), "allow");
      assert.equal(allows("arn:aws:execute-api:us-east-1:*:local/*/GET/*"), "allow");
      assert.equal(allows(`${API_ARN}/GET/members/m-*`), "allow");
      assert.equal(allows(`${API_ARN}/GET/members`), "deny");
      assert.equal(allows(`${API_ARN}/GET/members/*`, `${API_ARN}/GET/members`), "deny");
      assert.equal(allows(`${API_ARN}/POST/*`), "deny");
      assert.equal(allows(`${API_ARN}/GET/members/m-1/*`), "deny");
      assert.equal(allows(`arn:aws:execute-api:us-east-1:000000000000:other/${STAGE}/*`), "deny");
    });

    it("treats regular-expression characters in a resource literally", () => {
      const allows = (resource: string, arn: string) =>
        evaluate(policy({ Effect: "Allow", Resource: [resource] }), arn);

      assert.equal(allows(`${API_ARN}/GET/members/a.b`, `${API_ARN}/GET/members/a.b`), "allow");
      assert.equal(allows(`${API_ARN}/GET/members/a.b`, `${API_ARN}/GET/members/axb`), "deny");
      assert.equal(allows(`${API_ARN}/GET/members/a+`, `${API_ARN}/GET/members/aa`), "deny");
      assert.equal(allows(`${API_ARN}/GET/members/(a|b)`, `${API_ARN}/GET/members/a`), "deny");
      assert.equal(allows(`${API_ARN}/GET/members/a?`, `${API_ARN}/GET/members/a`), "deny");
      assert.equal(allows(`${API_ARN}/GET/members/[a]`, `${API_ARN}/GET/members/[a]`), "allow");
    });

    it("compiles each resource pattern once, not on every evaluation", () => {
      const resource = `${API_ARN}/GET/members/compiled-once-*`;
      const document = policy({ Effect: "Allow", Resource: [resource] });
      const RealRegExp = RegExp;
      let compiled = 0;
      globalThis.RegExp = new Proxy(RealRegExp, {
        construct(target, args, newTarget) {
          compiled++;
          return Reflect.construct(target, args, newTarget);
        },
      });
      const answers: string[] = [];
      try {
        for (let i = 0; i < 100; i++)
          answers.push(evaluate(document, `${API_ARN}/GET/members/compiled-once-${i}`));
      } finally {
        globalThis.RegExp = RealRegExp;
      }

      assert.equal(compiled, 1);
      assert.deepEqual(new Set(answers), new Set(["allow"]));
    });
  });

  describe("Lambda proxy event", () => {
    it("gives the app the authorizer context with principalId, path parameters and the route template", async () => {
      const authorizer = fakeAuthorizer();
      const app = fakeApp();
      const { call } = await startGateway({ authorizer, app, timeoutMs: 2_000 });

      const res = await call("GET", "/members/m%201?_elements=id", {
        headers: { ...CREDENTIALS, Accept: "application/fhir+json" },
      });

      assert.equal(res.status, 200);
      assert.equal(app.calls.length, 1);
      const { event, context } = app.calls[0];
      assert.equal(event.resource, "/members/{id}");
      assert.equal(event.path, "/members/m%201");
      assert.equal(event.httpMethod, "GET");
      assert.deepEqual(event.pathParameters, { id: "m 1" });
      assert.deepEqual(event.queryStringParameters, { _elements: "id" });
      assert.equal(event.body, null);
      assert.equal(event.isBase64Encoded, false);
      assert.equal(event.stageVariables, null);
      assert.equal(event.headers.authorization, "Bearer token-a");
      assert.equal(event.headers.accept, "application/fhir+json");
      assert.deepEqual(event.requestContext.authorizer, { ...CONTEXT, principalId: "client-a" });
      assert.equal(event.requestContext.stage, STAGE);
      assert.equal(event.requestContext.apiId, "local");
      assert.equal(event.requestContext.accountId, "000000000000");
      assert.equal(event.requestContext.httpMethod, "GET");
      assert.equal(event.requestContext.resourcePath, "/members/{id}");
      assert.equal(event.requestContext.path, "/test/members/m%201");
      assert.equal(event.requestContext.identity.sourceIp, "127.0.0.1");
      assert.equal(event.requestContext.requestId, authorizer.events[0].requestContext.requestId);
      assert.equal(context.awsRequestId, event.requestContext.requestId);
      const remaining = context.getRemainingTimeInMillis();
      assert.ok(remaining > 0 && remaining <= 2_000, `remaining ${remaining} ms`);
    });

    it("sets pathParameters and queryStringParameters to null when absent and passes the body as a string", async () => {
      const authorizer = fakeAuthorizer();
      const app = fakeApp();
      const { call } = await startGateway({ authorizer, app });
      const body = JSON.stringify({ resourceType: "Patient", name: [{ family: "Zoë" }] });

      const res = await call("POST", "/members", {
        headers: { ...CREDENTIALS, "Content-Type": "application/fhir+json" },
        body,
      });

      assert.equal(res.status, 200);
      const { event } = app.calls[0];
      assert.equal(event.resource, "/members");
      assert.equal(event.pathParameters, null);
      assert.equal(event.queryStringParameters, null);
      assert.equal(typeof event.body, "string");
      assert.equal(event.body, body);
      assert.equal(event.headers["content-type"], "application/fhir+json");
    });

    it("gives each request its own requestId", async () => {
      const authorizer = fakeAuthorizer();
      const app = fakeApp();
      const { call } = await startGateway({ authorizer, app });

      await call("POST", "/health");
      await call("POST", "/health");

      const ids = app.calls.map((c) => c.event.requestContext.requestId);
      assert.equal(new Set(ids).size, 2);
      for (const id of ids) assert.match(id, UUID);
    });
  });

  describe("unknown resources", () => {
    for (const [label, method, path] of [
      ["an unknown path", "GET", "/nowhere"],
      ["a method the resource does not define", "DELETE", "/members/m-1"],
      ["GET on a POST-only resource", "GET", "/health"],
      ["DELETE on a POST-only resource", "DELETE", "/health"],
      ["an empty path parameter", "GET", "/members/"],
    ]) {
      it(`answers 404 MISSING_AUTHENTICATION_TOKEN without invoking the authorizer for ${label}`, async () => {
        const authorizer = fakeAuthorizer();
        const app = fakeApp();
        const { call } = await startGateway({ authorizer, app });

        const res = await call(method, path);

        await assertOutcome(res, MISSING_AUTHENTICATION_TOKEN);
        assert.equal(authorizer.events.length, 0);
        assert.equal(app.calls.length, 0);
      });
    }

    it("answers 404 MISSING_AUTHENTICATION_TOKEN for a path outside the stage", async () => {
      const authorizer = fakeAuthorizer();
      const app = fakeApp();
      const { url } = await startGateway({ authorizer, app });
      const origin = new URL(url).origin;

      const responses = await Promise.all(
        ["/prod/health", "/health", "/test", "/testing/health"].map((p) =>
          fetch(`${origin}${p}`, { method: "POST", headers: CREDENTIALS }),
        ),
      );

      for (const res of responses) await assertOutcome(res, MISSING_AUTHENTICATION_TOKEN);
      assert.equal(authorizer.events.length, 0);
      assert.equal(app.calls.length, 0);
    });

    it("answers 400 for a path that is not valid percent-encoding and keeps serving", async () => {
      const authorizer = fakeAuthorizer();
      const app = fakeApp();
      const { call } = await startGateway({ authorizer, app });

      const bad = await call("GET", "/members/%E0%A4%A");
      const good = await call("POST", "/health");

      await assertOutcome(bad, { status: 400, code: "invalid", diagnostics: "Bad Request" });
      assert.equal(good.status, 200);
      assert.equal(authorizer.events.length, 1);
    });
  });

  describe("payload limit", () => {
    for (const [label, size] of [
      ["one byte over 10 MB", MAX_PAYLOAD + 1],
      ["well over 10 MB", MAX_PAYLOAD + 100_000],
    ] as const) {
      it(`answers 413 REQUEST_TOO_LARGE without invoking the authorizer or the app for a body ${label}`, async () => {
        const authorizer = fakeAuthorizer();
        const app = fakeApp();
        const { call } = await startGateway({ authorizer, app });

        const res = await call("POST", "/members", { body: Buffer.alloc(size, 0x61) });

        await assertOutcome(res, {
          status: 413,
          code: "too-long",
          diagnostics: "Request Too Long",
        });
        assert.equal(authorizer.events.length, 0);
        assert.equal(app.calls.length, 0);
      });
    }

    it("passes a body of exactly 10 MB to the app whole", async () => {
      const authorizer = fakeAuthorizer();
      const app = fakeApp();
      const { call } = await startGateway({ authorizer, app });

      const res = await call("POST", "/members", { body: Buffer.alloc(MAX_PAYLOAD, 0x61) });

      assert.equal(res.status, 200);
      assert.equal(app.calls[0].event.body?.length, MAX_PAYLOAD);
    });
  });

  describe("integration", () => {
    it("answers 504 INTEGRATION_TIMEOUT when the app outlives timeoutMs", async () => {
      let release = () => {};
      const authorizer = fakeAuthorizer();
      const app = fakeApp(
        () =>
          new Promise<APIGatewayProxyResult>((resolve) => {
            release = () => resolve(OK);
          }),
      );
      restores.push(() => release());
      const { call } = await startGateway({ authorizer, app, timeoutMs: 50 });

      const started = performance.now();
      const res = await call("POST", "/health");
      const waited = performance.now() - started;

      await assertOutcome(res, {
        status: 504,
        code: "timeout",
        diagnostics: "Endpoint request timed out",
      });
      assert.equal(app.calls.length, 1);
      assert.ok(waited >= 45 && waited < 1_000, `answered after ${waited} ms`);
    });

    it("answers 502 when the app throws, as API Gateway does for a Lambda function error", async () => {
      const authorizer = fakeAuthorizer();
      const app = fakeApp(async () => {
        throw new TypeError("Cannot read properties of undefined");
      });
      const { call } = await startGateway({ authorizer, app });

      const res = await call("POST", "/health");

      await assertOutcome(res, { status: 502, ...INTERNAL });
      assert.equal(app.calls.length, 1);
    });

    for (const [label, result] of [
      ["no statusCode", { body: "{}" }],
      ["a body that is not a string", { statusCode: 200, body: { ok: true } }],
      ["nothing", undefined],
    ] as const) {
      it(`answers 502 when the app returns a malformed proxy result (${label})`, async () => {
        const authorizer = fakeAuthorizer();
        const app = fakeApp(async () => result as unknown as APIGatewayProxyResult);
        const { call } = await startGateway({ authorizer, app });

        const res = await call("POST", "/health");

        await assertOutcome(res, { status: 502, ...INTERNAL });
      });
    }
  });
});
