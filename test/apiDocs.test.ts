import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { Collection, type Item } from "postman-collection";
import { openApi } from "../contracts/openapi";
import { ROUTES } from "../contracts/routes";
import { collection, ENVIRONMENTS, environment, files } from "../scripts/api-docs";

const ROOT = path.join(__dirname, "..");

describe("OpenAPI description", () => {
  it("is valid OpenAPI 3.1", async () => {
    const { Validator } = await import("@seriousme/openapi-schema-validator");
    const result = await new Validator().validate(openApi() as never);
    assert.deepEqual(result.errors ?? [], []);
    assert.equal(result.valid, true);
  });

  it("describes exactly the routes of the route table, each with the scopes that grant it", () => {
    const doc = openApi();
    const operations = Object.entries(doc.paths).flatMap(([p, ops]) =>
      Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`),
    );
    assert.deepEqual(operations.sort(), ROUTES.map((r) => `${r.method} ${r.path}`).sort());
    assert.deepEqual(doc.paths["/members"].post.security, [
      { okta: ["system/Patient.c"], clientId: [] },
      { okta: ["system/Patient.write"], clientId: [] },
    ]);
    assert.deepEqual(doc.paths["/health"].post.security, [{ okta: [], clientId: [] }]);
  });

  it("cannot drift from the route table", () => {
    assert.throws(() => openApi([...ROUTES, { ...ROUTES[0], path: "/extra" }]), {
      message: "Route 'POST /extra' has no OpenAPI operation in contracts/openapi.ts",
    });
    assert.throws(() => openApi(ROUTES.slice(1)), {
      message: "OpenAPI operation 'POST /health' has no route in contracts/routes.ts",
    });
  });
});

describe("Postman collection and environments", () => {
  it("are what npm run api-docs generates (committed files are current)", () => {
    for (const [file, text] of Object.entries(files())) {
      const committed = fs.readFileSync(path.join(ROOT, file), "utf8");
      assert.ok(committed === text, `${file} is stale: run npm run api-docs`);
    }
  });

  it("calls every route and asserts the status of every request", () => {
    const parsed = new Collection(collection() as never);
    const items = parsed.items.all() as Item[];
    const called = new Set(
      items.map((i) => {
        const p = `/${i.request.url.path?.join("/")}`.replace(/\{\{\w+\}\}/g, (v) =>
          v.includes("Version") ? "{vid}" : v.includes("Id") ? "{id}" : v,
        );
        return `${i.request.method} ${p}`;
      }),
    );
    assert.deepEqual([...called].sort(), ROUTES.map((r) => `${r.method} ${r.path}`).sort());
    for (const item of items) {
      const tests = item.events
        .all()
        .filter((e) => e.listen === "test")
        .flatMap((e) => e.script.exec ?? []);
      assert.ok(
        tests.some((t) => /pm\.response\.to\.have\.status\(\d{3}\)/.test(t)),
        `${item.name} has no status assertion`,
      );
    }
    assert.deepEqual(collection().auth, {
      type: "bearer",
      bearer: [{ key: "token", value: "{{accessToken}}", type: "string" }],
    });
  });

  it("commits no secret: every environment leaves clientSecret empty and typed secret", () => {
    for (const name of Object.keys(ENVIRONMENTS)) {
      const env = environment(name);
      const secret = env.values.find((v) => v.key === "clientSecret");
      assert.deepEqual([secret?.value, secret?.type], ["", "secret"]);
      assert.deepEqual(
        env.values.map((v) => v.key),
        ["baseUrl", "tokenUrl", "clientId", "clientSecret", "scopes"],
      );
    }
  });
});
