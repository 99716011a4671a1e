import * as fs from "node:fs";
import * as path from "node:path";
import { EXAMPLES, openApi } from "../contracts/openapi";
import { ROUTES, type Route } from "../contracts/routes";

/**
 * `npm run api-docs`: writes, from the route table, docs/openapi.json and the
 * Postman collection and environments under postman/. Tests fail when the
 * committed files differ from what this generates.
 */

const ROOT = path.join(__dirname, "..");

type Item = Record<string, unknown>;

const script = (lines: string[]) => [
  { listen: "test", script: { type: "text/javascript", exec: lines } },
];
const status = (code: number) => [
  `pm.test("status is ${code}", () => pm.response.to.have.status(${code}));`,
];

interface RequestSpec {
  body?: unknown;
  /** Extra headers. */
  headers?: Record<string, string>;
  /** Query parameters. */
  query?: Record<string, string>;
  /** Lines of a pre-request script. */
  prerequest?: string[];
  /** @default application/fhir+json */
  contentType?: string;
  /** Send a fresh Idempotency-Key. @default false */
  idempotent?: boolean;
}

/** One request per route (or several), with example bodies and tests asserting the status. */
function requestsFor(route: Route): Item[] {
  const item = (name: string, urlPath: string, tests: string[], spec: RequestSpec = {}): Item => ({
    name,
    request: {
      method: route.method,
      url: {
        raw: `{{baseUrl}}${urlPath}${
          spec.query
            ? `?${Object.entries(spec.query)
                .map(([k, v]) => `${k}=${v}`)
                .join("&")}`
            : ""
        }`,
        host: ["{{baseUrl}}"],
        path: urlPath.split("/").filter(Boolean),
        ...(spec.query
          ? { query: Object.entries(spec.query).map(([key, value]) => ({ key, value })) }
          : {}),
      },
      header: [
        ...Object.entries(spec.headers ?? {}).map(([key, value]) => ({ key, value })),
        ...(spec.body === undefined
          ? []
          : [{ key: "Content-Type", value: spec.contentType ?? "application/fhir+json" }]),
        ...(spec.idempotent ? [{ key: "Idempotency-Key", value: "{{$guid}}" }] : []),
      ],
      ...(spec.body === undefined
        ? {}
        : {
            body: {
              mode: "raw",
              raw: JSON.stringify(spec.body, null, 2),
              options: { raw: { language: "json" } },
            },
          }),
    },
    event: [
      ...(spec.prerequest
        ? [{ listen: "prerequest", script: { type: "text/javascript", exec: spec.prerequest } }]
        : []),
      ...script(tests),
    ],
  });
  // Members get identifiers no earlier run used: the registry holds each one once.
  const system = EXAMPLES.patient.identifier[0].system;
  const withIdentifier = (p: Record<string, unknown>, value: string) => ({
    ...p,
    identifier: [{ system, value }],
  });
  const transaction = {
    ...EXAMPLES.transaction,
    entry: EXAMPLES.transaction.entry.map((e, i) =>
      i === 0 ? { ...e, resource: withIdentifier(e.resource, "MBR-{{$guid}}") } : e,
    ),
  };
  const isOutcome =
    'pm.test("is an OperationOutcome", () => pm.expect(pm.response.json().resourceType).to.eql("OperationOutcome"));';
  switch (`${route.method} ${route.path}`) {
    case "POST /health":
      return [
        item("Health", "/health", [
          ...status(200),
          'pm.test("reports ok", () => pm.expect(pm.response.json().status).to.eql("ok"));',
        ]),
      ];
    case "POST /members":
      return [
        item(
          "Register a Patient",
          "/members",
          [
            ...status(201),
            'pm.collectionVariables.set("memberId", pm.response.json().id);',
            'pm.collectionVariables.set("memberVersion", pm.response.json().meta.versionId);',
          ],
          {
            body: withIdentifier(EXAMPLES.patient, "{{memberIdentifier}}"),
            idempotent: true,
            prerequest: [
              'pm.collectionVariables.set("memberIdentifier", "MBR-" + pm.variables.replaceIn("{{$guid}}"));',
            ],
          },
        ),
        item(
          "Register the same member conditionally (If-None-Exist)",
          "/members",
          [
            ...status(200),
            'pm.test("answers the registered member", () => pm.expect(pm.response.json().id).to.eql(pm.collectionVariables.get("memberId")));',
          ],
          {
            body: withIdentifier(EXAMPLES.patient, "{{memberIdentifier}}"),
            headers: { "If-None-Exist": `identifier=${system}|{{memberIdentifier}}` },
          },
        ),
        item(
          "Refuse a second member with the same identifier",
          "/members",
          [...status(409), isOutcome],
          { body: withIdentifier(EXAMPLES.patient, "{{memberIdentifier}}") },
        ),
        item(
          "Register a Patient and Coverage (transaction)",
          "/members",
          [
            ...status(200),
            'pm.test("is a transaction-response", () => pm.expect(pm.response.json().type).to.eql("transaction-response"));',
          ],
          { body: transaction, idempotent: true },
        ),
        item("Refuse an incomplete Patient", "/members", [...status(422), isOutcome], {
          body: { resourceType: "Patient", gender: "female" },
        }),
      ];
    case "GET /members":
      return [
        item(
          "Search members by identifier",
          "/members",
          [
            ...status(200),
            'pm.test("finds the one member", () => pm.expect(pm.response.json().total).to.eql(1));',
          ],
          { query: { identifier: `${system}|{{memberIdentifier}}` } },
        ),
      ];
    case "GET /members/{id}":
      return [item("Get a member", "/members/{{memberId}}", status(200))];
    case "GET /members/{id}/_history":
      return [
        item("Member history", "/members/{{memberId}}/_history", [
          ...status(200),
          'pm.test("is a history Bundle", () => pm.expect(pm.response.json().type).to.eql("history"));',
        ]),
      ];
    case "GET /members/{id}/_history/{vid}":
      return [
        item(
          "Read a member's first version",
          "/members/{{memberId}}/_history/{{memberVersion}}",
          status(200),
        ),
      ];
    case "GET /.well-known/jwks.json":
      return [
        {
          ...item("HOTH's public JWKS (no token)", "/.well-known/jwks.json", [
            ...status(200),
            'pm.test("is a key set", () => pm.expect(pm.response.json().keys.length).to.be.above(0));',
          ]),
          auth: { type: "noauth" },
        },
      ];
    case "POST /uploads":
      return [
        item(
          "Get an upload form for an extract",
          "/uploads",
          [
            ...status(201),
            'pm.test("pins the key under uploads/", () => pm.expect(pm.response.json().fields.key).to.match(/^landing\\/[^/]+\\/uploads\\/u-[0-9a-f]{32}\\/members\\.csv$/));',
            'pm.collectionVariables.set("uploadPrefix", pm.response.json().inputPrefix);',
          ],
          { body: EXAMPLES.upload, contentType: "application/json" },
        ),
      ];
    case "POST /migrations":
      return [
        item(
          "Start a migration",
          "/migrations",
          [...status(202), 'pm.collectionVariables.set("migrationId", pm.response.json().id);'],
          {
            body: EXAMPLES.migration,
            contentType: "application/json",
            idempotent: true,
          },
        ),
      ];
    case "GET /migrations/{id}":
      return [
        item("Follow a migration", "/migrations/{{migrationId}}", [
          ...status(200),
          // Poll until the run ends (newman and the Postman runner follow setNextRequest),
          // then assert it SUCCEEDED and migrated what this collection registered.
          "const run = pm.response.json();",
          'const polls = Number(pm.collectionVariables.get("migrationPolls") || 0);',
          'if (run.status === "RUNNING" && polls < 180) {',
          '  pm.collectionVariables.set("migrationPolls", String(polls + 1));',
          '  postman.setNextRequest("Follow a migration");',
          "  setTimeout(() => {}, 1000);",
          "} else {",
          '  pm.collectionVariables.set("migrationPolls", "0");',
          '  pm.test("the migration SUCCEEDED", () => pm.expect(run.status, JSON.stringify(run.error)).to.eql("SUCCEEDED"));',
          '  pm.test("it migrated the members this collection registered", () => {',
          "    pm.expect(run.report.written.Patient).to.be.at.least(2);",
          "    pm.expect(run.report.written.Coverage).to.be.at.least(1);",
          "  });",
          "}",
        ]),
      ];
    default:
      throw new Error(
        `Route ${route.method} ${route.path} has no Postman request in scripts/api-docs.ts`,
      );
  }
}

export function collection() {
  return {
    info: {
      name: "HOTH member-migration API",
      description:
        "Every route of the HOTH API. Pick an environment (local, dev, test, prod); the collection gets an Okta token with the client-credentials grant (client secret from your Postman vault or local environment value, never committed) and sends X-Client-Id.",
      schema: "https://schema.getpostman.com/json/collection/v2.1.0/collection.json",
    },
    // A bearer token the collection fetches itself (client credentials) and
    // reuses until a minute before it expires: works the same in the Postman
    // app and in newman, which cannot run Postman's interactive OAuth 2.0 flow.
    auth: {
      type: "bearer",
      bearer: [{ key: "token", value: "{{accessToken}}", type: "string" }],
    },
    event: [
      {
        listen: "prerequest",
        script: {
          type: "text/javascript",
          exec: [
            'pm.request.headers.upsert({ key: "X-Client-Id", value: pm.variables.get("clientId") });',
            'const scopes = pm.variables.get("scopes");',
            'const fresh = pm.collectionVariables.get("accessTokenScopes") === scopes && Number(pm.collectionVariables.get("accessTokenExpiry") || 0) > Date.now() + 60000;',
            "if (!fresh) {",
            "  pm.sendRequest({",
            '    url: pm.variables.get("tokenUrl"),',
            '    method: "POST",',
            "    header: {",
            '      "Content-Type": "application/x-www-form-urlencoded",',
            '      Authorization: "Basic " + btoa(pm.variables.get("clientId") + ":" + pm.variables.get("clientSecret")),',
            "    },",
            '    body: { mode: "urlencoded", urlencoded: [{ key: "grant_type", value: "client_credentials" }, { key: "scope", value: scopes }] },',
            "  }, (error, response) => {",
            "    const ok = !error && response.code === 200;",
            '    pm.collectionVariables.set("accessTokenError", ok ? "" : "no token from " + pm.variables.get("tokenUrl") + ": " + (error || response.code));',
            '    pm.collectionVariables.set("accessToken", ok ? response.json().access_token : "");',
            '    pm.collectionVariables.set("accessTokenScopes", ok ? scopes : "");',
            '    pm.collectionVariables.set("accessTokenExpiry", ok ? String(Date.now() + response.json().expires_in * 1000) : "0");',
            "  });",
            "}",
          ],
        },
      },
      {
        listen: "test",
        script: {
          type: "text/javascript",
          exec: [
            'pm.test("has an access token", () => pm.expect(pm.collectionVariables.get("accessTokenError"), pm.collectionVariables.get("accessTokenError")).to.eql(""));',
          ],
        },
      },
    ],
    variable: [
      // Defaults keep every path well-formed before a registration has set them.
      { key: "memberId", value: "unknown" },
      { key: "memberIdentifier", value: "" },
      { key: "memberVersion", value: "1" },
      { key: "migrationId", value: "" },
      { key: "migrationPolls", value: "0" },
      { key: "uploadPrefix", value: "" },
      { key: "accessToken", value: "" },
      { key: "accessTokenScopes", value: "" },
      { key: "accessTokenExpiry", value: "0" },
      { key: "accessTokenError", value: "" },
    ],
    item: ROUTES.flatMap(requestsFor),
  };
}

export const ENVIRONMENTS: Record<string, { baseUrl: string; tokenUrl: string; clientId: string }> =
  {
    local: {
      baseUrl: "http://127.0.0.1:4566/local",
      tokenUrl: "http://127.0.0.1:4567/token",
      clientId: "0oa-hoth-local-postman",
    },
    dev: {
      baseUrl: "https://<rest-api-id>.execute-api.us-east-1.amazonaws.com/dev",
      tokenUrl: "https://hoth-dev.okta.com/oauth2/default/v1/token",
      clientId: "0oa-hoth-dev-migrator",
    },
    test: {
      baseUrl: "https://<rest-api-id>.execute-api.us-east-1.amazonaws.com/test",
      tokenUrl: "https://hoth-test.okta.com/oauth2/default/v1/token",
      clientId: "0oa-hoth-test-postman",
    },
    prod: {
      baseUrl: "https://<rest-api-id>.execute-api.us-east-1.amazonaws.com/prod",
      tokenUrl: "https://hoth.okta.com/oauth2/default/v1/token",
      clientId: "0oa-hoth-prod-migrator",
    },
  };

export function environment(name: string) {
  const e = ENVIRONMENTS[name];
  return {
    name: `hoth-${name}`,
    values: [
      { key: "baseUrl", value: e.baseUrl, type: "default", enabled: true },
      { key: "tokenUrl", value: e.tokenUrl, type: "default", enabled: true },
      { key: "clientId", value: e.clientId, type: "default", enabled: true },
      { key: "clientSecret", value: "", type: "secret", enabled: true },
      {
        key: "scopes",
        value: "system/Patient.cruds system/Coverage.cruds system/Task.cruds system/Binary.c",
        type: "default",
        enabled: true,
      },
    ],
    _postman_variable_scope: "environment",
  };
}

/** Every file this script writes, by path relative to the repository. */
export function files(): Record<string, string> {
  const out: Record<string, string> = {
    "docs/openapi.json": `${JSON.stringify(openApi(), null, 2)}\n`,
    "postman/hoth.postman_collection.json": `${JSON.stringify(collection(), null, 2)}\n`,
  };
  for (const name of Object.keys(ENVIRONMENTS)) {
    out[`postman/environments/${name}.postman_environment.json`] =
      `${JSON.stringify(environment(name), null, 2)}\n`;
  }
  return out;
}

if (require.main === module) {
  for (const [file, text] of Object.entries(files())) {
    fs.mkdirSync(path.dirname(path.join(ROOT, file)), { recursive: true });
    fs.writeFileSync(path.join(ROOT, file), text);
    console.log(`wrote ${file}`);
  }
}
