import * as assert from "node:assert/strict";
import type {
  APIGatewayAuthorizerResult,
  APIGatewayProxyEvent,
  APIGatewayProxyResult,
  APIGatewayRequestAuthorizerEvent,
  Context,
} from "aws-lambda";
import { ROUTES } from "../contracts/routes";
import { startApiGateway } from "../local/apiGateway";
import { createRegistryTable } from "../local/registryTable";
import { type Answer, assertNoEcho, EchoLedger, stringsIn } from "./support/echoes";
import { captureOutput, lambdaContext, loadHandler, proxyEvent } from "./support/handlers";
import { startMoto } from "./support/moto";

/**
 * No diagnostic, header or log line repeats a value that came from the
 * request (issue 14): hostile values (a patient identifier, NUL, CR/LF, a
 * header injection) are sent through every error path of the app, the API
 * Gateway emulator and the authorizer; each answer, and the log lines
 * written for it, are checked against what that request sent, and a last
 * test checks every error answer against every string the suite sent.
 *
 * To add a route's cases (e.g. the member registry), add entries to
 * APP_CASES: `sent` is built from the path, method, headers and body the
 * case sets, minus the API's own vocabulary.
 *
 * Not counted as an echo: X-Correlation-Id, which the API echoes by design
 * (and only when it matches [A-Za-z0-9._:-]{1,128}); no case sends one.
 */

const PHI = "PHI-MARK-123-45-6789";
const HOSTILE = `${PHI}\u0000\r\nSet-Cookie: hoth=${PHI}-cookie`;

/** The API's own words: a request may use them and an answer may too. */
const VOCABULARY = new Set([
  "legacy",
  "fhir",
  "source",
  "inputPrefix",
  "application/json",
  "application/fhir+json",
  "Bearer",
  // FHIR's own names (elements and types an OperationOutcome may name)
  "resourceType",
  "Patient",
  "identifier",
  "system",
  "value",
  "name",
  "family",
  "gender",
  "female",
  "birthDate",
  ...ROUTES.flatMap((r) => [r.path, r.method, ...r.path.split("/")]),
]);

type Handler = (event: APIGatewayProxyEvent, context: Context) => Promise<APIGatewayProxyResult>;
type Authorizer = (e: APIGatewayRequestAuthorizerEvent) => Promise<APIGatewayAuthorizerResult>;

interface AppCase {
  name: string;
  method: string;
  /** The path as API Gateway hands it to the function (decoded). */
  path: string;
  resource?: string;
  pathParameters?: Record<string, string>;
  queryStringParameters?: Record<string, string>;
  headers?: Record<string, string | null>;
  /** A JSON body, or a raw string. */
  body?: unknown;
  /** The authorizer context's scopes. @default "system/Task.cruds system/Patient.cruds system/Coverage.cruds" */
  scopes?: string;
  status: number;
}

const APP_CASES: AppCase[] = [
  {
    name: "a member id that cannot be one",
    method: "GET",
    path: `/members/${HOSTILE}`,
    resource: "/members/{id}",
    pathParameters: { id: HOSTILE },
    status: 404,
  },
  {
    name: "a member id that is not registered",
    method: "GET",
    path: `/members/${PHI}`,
    resource: "/members/{id}",
    pathParameters: { id: PHI },
    status: 404,
  },
  {
    name: "a version of a member that is not registered",
    method: "GET",
    path: `/members/${PHI}/_history/${PHI}`,
    resource: "/members/{id}/_history/{vid}",
    pathParameters: { id: PHI, vid: PHI },
    status: 404,
  },
  {
    name: "a member search by an unsupported parameter",
    method: "GET",
    path: "/members",
    queryStringParameters: { [PHI]: HOSTILE },
    status: 400,
  },
  {
    name: "a member search by an identifier without a system",
    method: "GET",
    path: "/members",
    queryStringParameters: { identifier: HOSTILE },
    status: 400,
  },
  {
    name: "a conditional create with unsupported criteria",
    method: "POST",
    path: "/members",
    headers: { "Content-Type": "application/fhir+json", "If-None-Exist": `name=${HOSTILE}` },
    body: {
      resourceType: "Patient",
      identifier: [{ system: "https://example.org/id", value: PHI }],
      name: [{ family: PHI }],
      gender: "female",
      birthDate: "1970-01-01",
    },
    status: 412,
  },
  { name: "an unknown path", method: "GET", path: `/${HOSTILE}`, status: 404 },
  { name: "an unknown method", method: `X-${PHI}`, path: "/migrations", status: 405 },
  {
    name: "unknown keys in a migration request",
    method: "POST",
    path: "/migrations",
    headers: { "Idempotency-Key": `k-${PHI}` },
    body: { source: "fhir", inputPrefix: "a/", [HOSTILE]: `${PHI}-value`, [PHI]: 1 },
    status: 400,
  },
  {
    name: "a migration source that is not one of the two",
    method: "POST",
    path: "/migrations",
    headers: { "Idempotency-Key": `k-${PHI}` },
    body: { source: HOSTILE, inputPrefix: "a/" },
    status: 400,
  },
  {
    name: "a migration inputPrefix with forbidden characters",
    method: "POST",
    path: "/migrations",
    headers: { "Idempotency-Key": `k-${PHI}` },
    body: { source: "fhir", inputPrefix: `../${HOSTILE}` },
    status: 400,
  },
  {
    name: "a migration inputPrefix of the wrong type",
    method: "POST",
    path: "/migrations",
    headers: { "Idempotency-Key": `k-${PHI}` },
    body: { source: "fhir", inputPrefix: { [PHI]: [PHI] } },
    status: 400,
  },
  {
    name: "a migration body that is not an object",
    method: "POST",
    path: "/migrations",
    headers: { "Idempotency-Key": `k-${PHI}` },
    body: [HOSTILE],
    status: 400,
  },
  {
    name: "a migration body that is not JSON",
    method: "POST",
    path: "/migrations",
    headers: { "Idempotency-Key": `k-${PHI}` },
    body: `{"${HOSTILE}`,
    status: 400,
  },
  {
    name: "an Idempotency-Key with control characters",
    method: "POST",
    path: "/migrations",
    headers: { "Idempotency-Key": HOSTILE },
    body: { source: "fhir", inputPrefix: "a/" },
    status: 400,
  },
  {
    name: "a migration request in another media type",
    method: "POST",
    path: "/migrations",
    headers: { "Content-Type": `text/${PHI}`, "Idempotency-Key": `k-${PHI}` },
    body: { source: "fhir", inputPrefix: "a/" },
    status: 415,
  },
  {
    name: "a migration request without a Task scope",
    method: "POST",
    path: "/migrations",
    headers: { "Idempotency-Key": `k-${PHI}` },
    body: { source: "fhir", inputPrefix: `${PHI}/` },
    scopes: "system/Patient.cruds",
    status: 403,
  },
  {
    name: "a malformed migration id",
    method: "GET",
    path: `/migrations/${HOSTILE}`,
    resource: "/migrations/{id}",
    pathParameters: { id: HOSTILE },
    status: 404,
  },
  {
    name: "an unknown migration id",
    method: "GET",
    path: `/migrations/m-${"a1".repeat(20)}`,
    resource: "/migrations/{id}",
    pathParameters: { id: `m-${"a1".repeat(20)}` },
    status: 404,
  },
];

/** The strings a case sent, minus the API's vocabulary. */
function sentBy(c: AppCase): string[] {
  return [
    c.method,
    ...c.path.split("/"),
    ...Object.values(c.pathParameters ?? {}),
    ...Object.entries(c.queryStringParameters ?? {}).flat(),
    ...Object.values(c.headers ?? {}).filter((v): v is string => typeof v === "string"),
    ...(typeof c.body === "string" ? [c.body] : stringsIn(c.body)),
    ...(c.body !== undefined && typeof c.body !== "string" ? [JSON.stringify(c.body)] : []),
  ].filter((s) => !VOCABULARY.has(s));
}

function appEvent(c: AppCase): APIGatewayProxyEvent {
  const base = proxyEvent("health");
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...base.headers, ...c.headers })) {
    if (typeof v === "string") headers[k] = v;
  }
  return {
    ...base,
    httpMethod: c.method,
    path: c.path,
    resource: c.resource ?? c.path,
    pathParameters: c.pathParameters ?? null,
    queryStringParameters: c.queryStringParameters ?? null,
    multiValueQueryStringParameters: c.queryStringParameters
      ? Object.fromEntries(Object.entries(c.queryStringParameters).map(([k, v]) => [k, [v]]))
      : null,
    headers,
    body:
      c.body === undefined ? null : typeof c.body === "string" ? c.body : JSON.stringify(c.body),
    requestContext: {
      ...base.requestContext,
      authorizer: {
        ...base.requestContext.authorizer,
        scopes: c.scopes ?? "system/Task.cruds system/Patient.cruds system/Coverage.cruds",
      },
    },
  };
}

const answerOf = (r: APIGatewayProxyResult, logs: string): Answer => ({
  status: r.statusCode,
  headers: { ...r.headers },
  body: r.body,
  logs,
});

describe("no echoes: no answer, header or log line repeats a value from the request", () => {
  const ledger = new EchoLedger();
  let app: Handler;

  before(async function () {
    this.timeout(60_000);
    await startMoto();
    ({ handler: app } = loadHandler<{ handler: Handler }>("handlers/app.ts", {
      APP_SECRET_ID: "hoth-test/no-echoes",
      STATE_MACHINE_ARN: "arn:aws:states:us-east-1:123456789012:stateMachine:hoth-test-no-echoes",
      LAKE_BUCKET: "hoth-test-no-echoes",
      REGISTRY_TABLE: await createRegistryTable("hoth-test", "hoth-test-no-echoes-registry"),
      UPLOAD_KEY_ARN: "arn:aws:kms:us-east-1:123456789012:key/unused",
      UPLOAD_MAX_BYTES: "1048576",
    }));
  });

  describe("the app", () => {
    for (const c of APP_CASES) {
      it(`answers ${c.name} with ${c.status}, repeating nothing it was sent`, async () => {
        const { result, output } = await captureOutput(() => app(appEvent(c), lambdaContext()));
        assert.equal(result.statusCode, c.status, result.body);
        const answer = ledger.record(`app: ${c.name}`, sentBy(c), answerOf(result, output));
        assertNoEcho(c.name, sentBy(c), answer, VOCABULARY);
      });
    }
  });

  describe("the API Gateway emulator", () => {
    let gateway: Awaited<ReturnType<typeof startApiGateway>>;
    const authorizer: Authorizer = async (e) => {
      const auth = e.headers?.authorization ?? "";
      if (auth.includes("unauthorized")) throw new Error("Unauthorized");
      if (auth.includes("failure")) throw new Error(`failed on ${auth}`);
      const deny = auth.includes("deny");
      return {
        principalId: "p",
        policyDocument: {
          Version: "2012-10-17",
          Statement: [
            {
              Action: "execute-api:Invoke",
              Effect: deny ? "Deny" : "Allow",
              Resource: ["arn:aws:execute-api:us-east-1:000000000000:local/test/*/*"],
            },
          ],
        },
        context: deny ? { requiredScope: "system/Task.r" } : {},
      };
    };

    before(async () => {
      gateway = await startApiGateway({
        routes: ROUTES,
        stage: "test",
        cacheTtlSeconds: 0,
        port: 0,
        authorizer,
        // A function error whose message repeats the request: API Gateway must not pass it on.
        app: async (e) => {
          throw new Error(`crashed on ${e.path} ${e.body}`);
        },
      });
    });
    after(() => gateway.stop());

    const cases: [string, string, string, Record<string, string>, string | undefined, number][] = [
      ["an unknown path", "GET", `/${encodeURIComponent(HOSTILE)}`, {}, undefined, 404],
      [
        "a path parameter that is not percent-encoding",
        "GET",
        `/members/%E0%A4%A${PHI}`,
        {},
        undefined,
        400,
      ],
      [
        "a refused token",
        "GET",
        `/members/${PHI}`,
        { Authorization: `Bearer unauthorized-${PHI}` },
        undefined,
        401,
      ],
      [
        "a Deny",
        "GET",
        `/migrations/${PHI}`,
        { Authorization: `Bearer deny-${PHI}` },
        undefined,
        403,
      ],
      [
        "an authorizer failure",
        "GET",
        `/members/${PHI}`,
        { Authorization: `Bearer failure-${PHI}` },
        undefined,
        500,
      ],
      [
        "a function error",
        "POST",
        "/health",
        { Authorization: `Bearer ok-${PHI}` },
        `{"x":"${PHI}"}`,
        502,
      ],
    ];
    for (const [name, method, path, headers, body, status] of cases) {
      it(`answers ${name} with ${status}, repeating nothing it was sent`, async () => {
        const sent = [
          ...path.split("/").flatMap((p) => [p, safeDecode(p)]),
          ...Object.values(headers),
          ...(body ? [body, PHI] : []),
        ].filter((s) => !VOCABULARY.has(s));
        const res = await fetch(`${gateway.url}${path}`, {
          method,
          headers: { "X-Client-Id": `client-${PHI}`, Authorization: "Bearer x", ...headers },
          body,
        });
        assert.equal(res.status, status);
        const answer = ledger.record(`gateway: ${name}`, [...sent, `client-${PHI}`], {
          status: res.status,
          headers: Object.fromEntries(res.headers),
          body: await res.text(),
        });
        assertNoEcho(name, [...sent, `client-${PHI}`], answer, VOCABULARY);
      });
    }
  });

  describe("the authorizer", () => {
    let handler: Authorizer;
    before(() => {
      // Malformed tokens are refused before the settings secret is read.
      ({ handler } = loadHandler<{ handler: Authorizer }>("handlers/authorizer.ts", {
        OKTA_SECRET_ID: "hoth-test/no-echoes-okta",
      }));
    });

    const b64u = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");
    const tokens: [string, string][] = [
      ["not a JWT", `${PHI}.${PHI}`],
      ["a header that is not JSON", `${Buffer.from(HOSTILE).toString("base64url")}.e30.AAAA`],
      ["a kid of the wrong type", `${b64u({ alg: "RS256", kid: [PHI] })}.${b64u({ exp: 1 })}.AAAA`],
      ["a string exp", `${b64u({ alg: "RS256", kid: PHI })}.${b64u({ exp: PHI })}.AAAA`],
      [
        "an empty signature",
        `${b64u({ alg: "RS256", kid: PHI })}.${b64u({ exp: 4e9, sub: PHI })}.`,
      ],
    ];
    for (const [name, token] of tokens) {
      it(`refuses ${name} with 401, logging nothing it was sent`, async () => {
        const event = {
          type: "REQUEST",
          methodArn: "arn:aws:execute-api:us-east-1:123456789012:abc123/test/GET/members/x",
          resource: "/members/{id}",
          path: `/members/${PHI}`,
          httpMethod: "GET",
          headers: { Authorization: `Bearer ${token}`, "X-Client-Id": `client-${PHI}` },
          requestContext: { requestId: "no-echoes-1" },
        } as unknown as APIGatewayRequestAuthorizerEvent;
        const { result, output } = await captureOutput(() =>
          handler(event).then(
            () => "allowed",
            (e: Error) => e.message,
          ),
        );
        assert.equal(result, "Unauthorized");
        const sent = [token, ...token.split("."), PHI, `client-${PHI}`];
        const answer = ledger.record(`authorizer: ${name}`, sent, {
          status: 401,
          headers: {},
          body: result,
          logs: output,
        });
        assertNoEcho(name, sent, answer, VOCABULARY);
      });
    }
  });

  // Last (mocha runs a suite's own tests before its nested suites, nested ones in order).
  describe("the whole suite", () => {
    it("leaves every error answer free of every string any case sent", () => {
      const checked = ledger.assertNoneEchoes(VOCABULARY);
      assert.equal(checked, APP_CASES.length + 6 + 5);
    });
  });
});

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
