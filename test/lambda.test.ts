import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { APIGatewayAuthorizerResult, APIGatewayProxyResult } from "aws-lambda";
import { ROUTES } from "../contracts/routes";
import { startApiGateway } from "../local/apiGateway";
import { FunctionError, type LocalLambda, startLambda } from "../local/lambda";

/**
 * The local Lambda emulation when a function misbehaves: a crash of the
 * runtime (uncaught exception or unhandled rejection in an async callback),
 * a handler error, a timeout. Lambda fails the invocation and gives the next
 * one a fresh execution environment (init runs again); API Gateway answers
 * 502 for a failed integration and 500 for a failed authorizer.
 */

// A function whose module scope counts its inits and whose handler does what the event says.
const BUNDLE = `
const started = Date.now();
let invocations = 0;
exports.handler = async (event) => {
  invocations++;
  switch (event.do) {
    case "crash":
      setImmediate(() => { throw new TypeError("Cannot read properties of undefined"); });
      return new Promise(() => {});
    case "reject":
      Promise.reject(new Error("nobody awaits this"));
      return new Promise(() => {});
    case "throw":
      throw new RangeError("handled by the runtime");
    case "hang":
      return new Promise(() => {});
    default:
      return { statusCode: 200, body: JSON.stringify({ started, invocations }) };
  }
};
`;

const AUTHORIZER = `
exports.handler = async (event) => {
  if (event.headers["x-client-id"] === "crash") {
    setImmediate(() => { throw new TypeError("boom"); });
    return new Promise(() => {});
  }
  return {
    principalId: "p",
    policyDocument: { Version: "2012-10-17", Statement: [{ Action: "execute-api:Invoke", Effect: "Allow", Resource: [event.methodArn] }] },
    context: {},
  };
};
`;

type Body = { started: number; invocations: number };

describe("local Lambda emulation", () => {
  let dir: string;
  let fn: LocalLambda;
  const start = (code: string, timeoutSeconds = 5) => {
    const file = path.join(dir, `${Math.random().toString(36).slice(2)}.js`);
    fs.writeFileSync(file, code);
    return startLambda({
      functionName: "hoth-test-fn",
      file,
      environment: {},
      timeoutSeconds,
      memoryMb: 128,
    });
  };
  const state = async (f = fn) =>
    JSON.parse((await f.invoke<object, APIGatewayProxyResult>({})).body) as Body;

  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "hoth-lambda-"));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  beforeEach(async () => {
    fn = await start(BUNDLE);
  });
  afterEach(() => fn.stop());

  for (const [what, event] of [
    ["an uncaught exception in an async callback", { do: "crash" }],
    ["an unhandled rejection", { do: "reject" }],
  ] as const) {
    it(`fails the invocation with Runtime.ExitError on ${what}, and cold-starts the next one`, async () => {
      const before = await state();
      await assert.rejects(fn.invoke(event), (e: Error) => {
        assert.ok(e instanceof FunctionError);
        assert.equal(e.name, "Runtime.ExitError");
        return true;
      });
      const after = await state();
      assert.equal(after.invocations, 1, "a fresh environment: module state starts over");
      assert.notEqual(after.started, before.started);
    });
  }

  it("keeps the environment when the handler throws (a function error, not a crash)", async () => {
    await state();
    await assert.rejects(fn.invoke({ do: "throw" }), {
      name: "RangeError",
      message: "handled by the runtime",
    });
    assert.equal((await state()).invocations, 3);
  });

  it("fails an invocation past the function timeout with Sandbox.Timedout and discards the environment", async () => {
    const short = await start(BUNDLE, 1);
    try {
      const first = await state(short);
      await assert.rejects(short.invoke({ do: "hang" }), { name: "Sandbox.Timedout" });
      const next = await state(short);
      assert.equal(next.invocations, 1);
      assert.notEqual(next.started, first.started);
    } finally {
      await short.stop();
    }
  });

  it("answers a crashing integration with API Gateway's 502 and a crashing authorizer with 500, then serves the next request", async () => {
    const authorizer = await start(AUTHORIZER);
    const gateway = await startApiGateway({
      routes: ROUTES,
      stage: "test",
      cacheTtlSeconds: 0,
      port: 0,
      authorizer: (e) => authorizer.invoke<typeof e, APIGatewayAuthorizerResult>(e),
      app: (e, c) => fn.invoke(JSON.parse(e.body ?? "{}"), c.awsRequestId),
    });
    const call = async (clientId: string, body: object) => {
      const res = await fetch(`${gateway.url}/health`, {
        method: "POST",
        headers: { Authorization: "Bearer t", "X-Client-Id": clientId },
        body: JSON.stringify(body),
      });
      return { status: res.status, body: (await res.json()) as { issue?: { code: string }[] } };
    };
    try {
      const crashed = await call("c", { do: "crash" });
      assert.equal(crashed.status, 502);
      assert.equal(crashed.body.issue?.[0].code, "exception");
      assert.equal((await call("c", {})).status, 200);

      const authorizerCrashed = await call("crash", {});
      assert.equal(authorizerCrashed.status, 500);
      assert.equal((await call("c", {})).status, 200);
    } finally {
      await gateway.stop();
      await authorizer.stop();
    }
  });
});
