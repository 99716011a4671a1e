import * as assert from "node:assert/strict";
import { fetchToken, LOCAL_CLIENTS } from "../local/okta";
import { startStack } from "../local/stack";

type Body = { id: string; status: string; stack: string; issue: { code: string }[] };
const body = async (r: Response): Promise<Body> => (await r.json()) as Body;

/** The local stack end to end: local Okta -> API Gateway emulator -> real bundles -> moto. */
describe("local stack (npm start) end to end", () => {
  let stack: Awaited<ReturnType<typeof startStack>>;
  const [acme, globex] = LOCAL_CLIENTS;
  const call = (
    method: string,
    path: string,
    opts: { token?: string; clientId?: string; body?: unknown; key?: string } = {},
  ) =>
    fetch(`${stack.apiUrl}${path}`, {
      method,
      headers: {
        ...(opts.token ? { Authorization: `Bearer ${opts.token}` } : {}),
        ...(opts.clientId ? { "X-Client-Id": opts.clientId } : {}),
        ...(opts.body ? { "Content-Type": "application/fhir+json" } : {}),
        ...(opts.key ? { "Idempotency-Key": opts.key } : {}),
      },
      body: opts.body ? JSON.stringify(opts.body) : undefined,
    });
  const patient = {
    resourceType: "Patient",
    identifier: [{ system: "https://example.org/mrn", value: "LOCAL-1" }],
    name: [{ family: "Local", given: ["Lee"] }],
    gender: "other",
    birthDate: "1990-01-01",
  };

  before(async function () {
    this.timeout(60_000);
    stack = await startStack({ stack: "dev" });
  });

  after(async () => {
    await stack?.stop();
  });

  it("serves health, registration and migrations to a token from the local Okta", async () => {
    const token = await fetchToken(stack.tokenUrl, acme, "system/Patient.cruds system/Task.cruds");
    const health = await call("POST", "/health", { token, clientId: acme.clientId });
    assert.equal(health.status, 200);
    assert.equal((await body(health)).stack, "local-dev");

    const created = await call("POST", "/members", {
      token,
      clientId: acme.clientId,
      body: patient,
    });
    assert.equal(created.status, 201);
    const member = await body(created);
    const got = await call("GET", `/members/${member.id}`, { token, clientId: acme.clientId });
    assert.equal(got.status, 200);
    assert.equal((await body(got)).id, member.id);

    const started = await call("POST", "/migrations", {
      token,
      clientId: acme.clientId,
      body: { source: "fhir", inputPrefix: "members/" },
      key: "local-e2e-1",
    });
    assert.equal(started.status, 202);
    const followed = await call("GET", started.headers.get("location") as string, {
      token,
      clientId: acme.clientId,
    });
    assert.equal(followed.status, 200);
    assert.equal((await body(followed)).status, "RUNNING");
  });

  it("keeps organisations apart", async () => {
    const acmeToken = await fetchToken(stack.tokenUrl, acme, "system/Patient.cruds");
    const globexToken = await fetchToken(stack.tokenUrl, globex, "system/Patient.cruds");
    const member = await body(
      await call("POST", "/members", { token: acmeToken, clientId: acme.clientId, body: patient }),
    );
    const other = await call("GET", `/members/${member.id}`, {
      token: globexToken,
      clientId: globex.clientId,
    });
    assert.equal(other.status, 404);
  });

  it("answers 401 without a token and 403 when the scopes do not grant the route, as OperationOutcome", async () => {
    const noToken = await call("POST", "/members", { clientId: acme.clientId, body: patient });
    assert.equal(noToken.status, 401);
    assert.equal((await body(noToken)).issue[0].code, "login");
    const readOnly = await fetchToken(stack.tokenUrl, acme, "system/Patient.rs");
    const refused = await call("POST", "/members", {
      token: readOnly,
      clientId: acme.clientId,
      body: patient,
    });
    assert.equal(refused.status, 403);
    assert.equal((await body(refused)).issue[0].code, "forbidden");
    const forged = await call("POST", "/health", { token: "a.b.c", clientId: acme.clientId });
    assert.equal(forged.status, 401);
    const unknown = await call("GET", "/nowhere", { token: readOnly, clientId: acme.clientId });
    assert.equal(unknown.status, 404);
  });

  it("refuses a client with a wrong secret at the token endpoint", async () => {
    await assert.rejects(
      fetchToken(stack.tokenUrl, { ...acme, secret: "wrong" }, "system/Patient.r"),
      {
        message: "token endpoint answered 401",
      },
    );
  });
});
