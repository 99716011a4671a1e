import { ROUTES, type Route, type ScopeRequirement } from "./routes";

/**
 * The OpenAPI 3.1 description of the API, generated from the route table so
 * the two cannot drift: every route must have an operation here and every
 * operation a route (otherwise this throws). `npm run openapi` writes
 * docs/openapi.json; a test fails when the committed file is stale.
 */

type Schema = Record<string, unknown>;

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const outcome = (description: string) => ({
  description,
  content: { "application/fhir+json": { schema: ref("OperationOutcome") } },
});
const json = (
  description: string,
  schema: Schema,
  example?: unknown,
  type = "application/json",
) => ({
  description,
  content: { [type]: { schema, ...(example === undefined ? {} : { example }) } },
});

export const EXAMPLES = {
  patient: {
    resourceType: "Patient",
    identifier: [{ system: "https://example-health.org/member-id", value: "MBR-000123" }],
    name: [{ family: "Doe", given: ["Jane"] }],
    gender: "female",
    birthDate: "1974-12-25",
  },
  transaction: {
    resourceType: "Bundle",
    type: "transaction",
    entry: [
      {
        fullUrl: "urn:uuid:11111111-1111-4111-8111-111111111111",
        resource: {
          resourceType: "Patient",
          identifier: [{ system: "https://example-health.org/member-id", value: "MBR-000124" }],
          name: [{ family: "Roe", given: ["Rick"] }],
          gender: "male",
          birthDate: "1980-02-29",
        },
        request: { method: "POST", url: "Patient" },
      },
      {
        resource: {
          resourceType: "Coverage",
          status: "active",
          beneficiary: { reference: "urn:uuid:11111111-1111-4111-8111-111111111111" },
          payor: [{ display: "Example Health Plan" }],
        },
        request: { method: "POST", url: "Coverage" },
      },
    ],
  },
  migration: { source: "registry" },
  upload: { fileName: "members.csv", contentType: "text/csv", size: 1048576 },
};

const pathParam = (name: string) => ({
  name,
  in: "path",
  required: true,
  schema: {
    type: "string",
    pattern:
      name === "id" ? "^[A-Za-z0-9\\-.]{1,64}$" : name === "vid" ? "^[1-9][0-9]{0,9}$" : undefined,
  },
});
const idempotencyKey = (required: boolean) => ({
  name: "Idempotency-Key",
  in: "header",
  required,
  description: "Retries with the same key and body get the first answer and change nothing.",
  schema: { type: "string", minLength: 1, maxLength: 255 },
});

/** Operation details by "METHOD path". */
const OPERATIONS: Record<string, (r: Route) => Schema> = {
  "POST /health": () => ({
    operationId: "health",
    responses: {
      200: json("Healthy: the function runs and can read its secret", ref("Health")),
      503: outcome("The secret store is unavailable"),
    },
  }),
  "POST /members": () => ({
    operationId: "registerMembers",
    parameters: [
      idempotencyKey(false),
      {
        name: "If-None-Exist",
        in: "header",
        required: false,
        description:
          "Conditional create of a Patient: identifier=system|value. An existing member with that identifier is answered (200) instead of a new one.",
        schema: { type: "string", maxLength: 1024 },
      },
    ],
    requestBody: {
      required: true,
      content: Object.fromEntries(
        ["application/fhir+json", "application/json"].map((t) => [
          t,
          {
            schema: { oneOf: [ref("Patient"), ref("Bundle")] },
            examples: {
              patient: { value: EXAMPLES.patient },
              transaction: { value: EXAMPLES.transaction },
            },
          },
        ]),
      ),
    },
    responses: {
      201: {
        ...json("The Patient, as registered", ref("Patient"), undefined, "application/fhir+json"),
        headers: { Location: { schema: { type: "string" } }, ETag: { schema: { type: "string" } } },
      },
      200: json(
        "A batch-response or transaction-response Bundle",
        ref("Bundle"),
        undefined,
        "application/fhir+json",
      ),
      400: outcome("The body is not JSON"),
      404: outcome("A transaction updates a resource that is not registered"),
      409: outcome(
        "A member identifier is already registered, or the Idempotency-Key was used for another request",
      ),
      412: outcome(
        "If-Match names an older version, or the If-None-Exist criteria are not supported",
      ),
      413: outcome("The body is larger than 1 MB"),
      415: outcome("The content type is not FHIR JSON"),
      422: outcome("The resource does not validate; issues carry FHIRPath expressions"),
      503: outcome("The registry is unavailable; nothing was written"),
    },
  }),
  "GET /members": () => ({
    operationId: "searchMembers",
    parameters: [
      {
        name: "identifier",
        in: "query",
        required: true,
        description: "A member identifier, system|value",
        schema: { type: "string", pattern: "^[^|]*\\|.+$", maxLength: 1024 },
      },
    ],
    responses: {
      200: json(
        "A searchset Bundle (0 or 1 match)",
        ref("Bundle"),
        undefined,
        "application/fhir+json",
      ),
      400: outcome("Unsupported search parameters"),
    },
  }),
  "GET /members/{id}/_history": () => ({
    operationId: "memberHistory",
    parameters: [pathParam("id")],
    responses: {
      200: json(
        "A history Bundle, newest version first (at most 100)",
        ref("Bundle"),
        undefined,
        "application/fhir+json",
      ),
      404: outcome("No such member in the caller's organisation"),
    },
  }),
  "GET /members/{id}/_history/{vid}": () => ({
    operationId: "readMemberVersion",
    parameters: [pathParam("id"), pathParam("vid")],
    responses: {
      200: json("That version", ref("Patient"), undefined, "application/fhir+json"),
      404: outcome("No such member or version in the caller's organisation"),
    },
  }),
  "GET /members/{id}": () => ({
    operationId: "getMember",
    parameters: [pathParam("id")],
    responses: {
      200: json(
        "The latest registered version",
        ref("Patient"),
        undefined,
        "application/fhir+json",
      ),
      404: outcome("No such member in the caller's organisation"),
    },
  }),
  "GET /.well-known/jwks.json": () => ({
    operationId: "jwks",
    responses: {
      200: json("A JWK set of public keys (ES384 or RS384)", ref("Jwks")),
      404: outcome("The stack publishes no signing key"),
    },
  }),
  "POST /uploads": () => ({
    operationId: "createUpload",
    requestBody: {
      required: true,
      ...json("The file to upload", ref("UploadRequest"), EXAMPLES.upload),
    },
    responses: {
      201: json(
        "A pre-signed S3 POST: send the fields, then the file last, as multipart/form-data to url before expiresAt",
        ref("UploadForm"),
      ),
      400: outcome("Invalid body: a size above the stack's maximum, an unusable file name"),
      415: outcome("The content type is not application/json"),
      503: outcome("Uploads are unavailable"),
    },
  }),
  "POST /migrations": () => ({
    operationId: "startMigration",
    parameters: [idempotencyKey(true)],
    requestBody: {
      required: true,
      ...json("What to migrate", ref("MigrationRequest"), EXAMPLES.migration),
    },
    responses: {
      202: {
        ...json(
          "Started; or, for a replay of the same key and body, the run's current state",
          ref("MigrationAccepted"),
        ),
        headers: { Location: { schema: { type: "string" } } },
      },
      400: outcome("Invalid body or missing Idempotency-Key"),
      409: outcome("The Idempotency-Key was used for another request"),
      415: outcome("The content type is not application/json"),
      422: outcome(
        "inputPrefix names an upload (uploads/<id>/) with no file in the caller's landing area",
      ),
      503: outcome("Step Functions is unavailable"),
    },
  }),
  "GET /migrations/{id}": () => ({
    operationId: "getMigration",
    parameters: [pathParam("id")],
    responses: {
      200: json("The migration's status, with its report when done", ref("MigrationStatus")),
      404: outcome("No such migration in the caller's organisation"),
    },
  }),
};

/** `system/Patient.c` style names for a route's requirements (SMART v2, with the v1 equivalent). */
export function scopeNames(req: ScopeRequirement): string[] {
  const v1 = req.access === "r" || req.access === "s" ? "read" : "write";
  return [`system/${req.resource}.${req.access}`, `system/${req.resource}.${v1}`];
}

const SCHEMAS: Record<string, Schema> = {
  OperationOutcome: {
    type: "object",
    required: ["resourceType", "issue"],
    properties: {
      resourceType: { const: "OperationOutcome" },
      issue: {
        type: "array",
        items: {
          type: "object",
          required: ["severity", "code"],
          properties: {
            severity: { enum: ["fatal", "error", "warning", "information"] },
            code: { type: "string" },
            diagnostics: { type: "string" },
            expression: { type: "array", items: { type: "string" } },
          },
        },
      },
    },
  },
  Health: {
    type: "object",
    required: ["status", "stack", "version", "requestId", "secret"],
    properties: {
      status: { const: "ok" },
      stack: { type: "string" },
      version: { type: "string" },
      requestId: { type: "string" },
      secret: {
        type: "object",
        properties: {
          name: { type: "string" },
          versionId: { type: "string" },
          lastChanged: { type: ["string", "null"] },
        },
      },
    },
  },
  Patient: {
    type: "object",
    description:
      "FHIR R4 Patient (https://hl7.org/fhir/R4/patient.html) with identifier, name, gender and birthDate",
    required: ["resourceType"],
    properties: { resourceType: { const: "Patient" }, id: { type: "string" } },
  },
  Bundle: {
    type: "object",
    description:
      "FHIR R4 Bundle (https://hl7.org/fhir/R4/bundle.html): batch or transaction requests; their responses, searchset and history answers",
    required: ["resourceType", "type"],
    properties: {
      resourceType: { const: "Bundle" },
      type: {
        enum: [
          "batch",
          "transaction",
          "batch-response",
          "transaction-response",
          "searchset",
          "history",
        ],
      },
      total: { type: "integer", minimum: 0 },
      entry: { type: "array", items: { type: "object" } },
    },
  },
  Jwks: {
    type: "object",
    required: ["keys"],
    properties: {
      keys: {
        type: "array",
        items: {
          type: "object",
          required: ["kty", "kid", "alg"],
          properties: {
            kty: { enum: ["EC", "RSA"] },
            kid: { type: "string" },
            alg: { enum: ["ES384", "RS384"] },
            use: { const: "sig" },
            key_ops: { type: "array", items: { const: "verify" } },
          },
        },
      },
    },
  },
  UploadRequest: {
    type: "object",
    additionalProperties: false,
    required: ["fileName", "contentType", "size"],
    properties: {
      fileName: {
        type: "string",
        minLength: 1,
        maxLength: 255,
        description:
          "The object's name: its last path segment, characters outside A-Za-z0-9._- replaced by _",
      },
      contentType: { type: "string", pattern: "^[a-z]+/[a-z0-9][a-z0-9.+-]{0,126}$" },
      size: {
        type: "integer",
        minimum: 1,
        description: "Exact size in bytes; S3 refuses a file of any other size",
      },
    },
  },
  UploadForm: {
    type: "object",
    required: ["id", "url", "fields", "key", "size", "inputPrefix", "expiresAt"],
    properties: {
      id: { type: "string", pattern: "^u-[0-9a-f]{32}$" },
      url: { type: "string" },
      fields: { type: "object", additionalProperties: { type: "string" } },
      key: { type: "string", description: "landing/<org>/uploads/<id>/<name>" },
      size: { type: "integer" },
      inputPrefix: {
        type: "string",
        description: "Start a migration from the upload with this inputPrefix",
      },
      expiresAt: { type: "string", format: "date-time" },
    },
  },
  MigrationRequest: {
    oneOf: [
      {
        type: "object",
        additionalProperties: false,
        required: ["source", "inputPrefix"],
        properties: {
          source: { enum: ["legacy", "fhir"] },
          inputPrefix: {
            type: "string",
            minLength: 1,
            maxLength: 512,
            description: "Key prefix under landing/<org>/; uploads/<id>/ for a POST /uploads file",
          },
        },
      },
      {
        type: "object",
        additionalProperties: false,
        required: ["source"],
        properties: {
          source: {
            const: "registry",
            description: "The caller's committed registry members, as one consistent snapshot",
          },
        },
      },
      {
        type: "object",
        additionalProperties: false,
        required: ["source", "server"],
        properties: {
          source: {
            const: "bulk",
            description: "A FHIR Bulk Data $export from one of the stack's configured sources",
          },
          server: {
            type: "string",
            pattern: "^[a-z][a-z0-9-]{1,30}$",
            description: "The name of a source in hoth:bulk.sources",
          },
          since: {
            type: "string",
            description: "_since: a FHIR instant, e.g. 2026-01-01T00:00:00Z",
          },
        },
      },
    ],
  },
  MigrationAccepted: {
    type: "object",
    required: ["id", "status"],
    properties: {
      id: { type: "string" },
      // RUNNING when started; a replay answers the run's current status.
      status: {
        enum: ["RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED", "PENDING_REDRIVE"],
      },
      startDate: { type: ["string", "null"] },
      stopDate: { type: "string" },
    },
  },
  MigrationStatus: {
    type: "object",
    required: ["id", "status"],
    properties: {
      id: { type: "string" },
      status: {
        enum: ["RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED", "PENDING_REDRIVE"],
      },
      source: { type: "string" },
      inputPrefix: { type: "string" },
      startDate: { type: ["string", "null"] },
      stopDate: { type: ["string", "null"] },
      reportUri: { type: ["string", "null"] },
      report: { type: ["object", "null"] },
      error: {
        type: "object",
        description: "A failed run's cause, as plain fields",
        required: ["code", "message", "state"],
        properties: {
          code: { type: "string", description: "e.g. InputNotFound, or the function's error type" },
          message: { type: ["string", "null"] },
          state: {
            type: ["string", "null"],
            description: "The Step Functions error, e.g. States.TaskFailed",
          },
          job: {
            type: "object",
            properties: {
              name: { type: "string" },
              runId: { type: ["string", "null"] },
              state: { type: ["string", "null"] },
            },
          },
        },
      },
    },
  },
};

export function openApi(
  routes: readonly Route[] = ROUTES,
  tokenUrl = "https://example.okta.com/oauth2/default/v1/token",
) {
  const keys = new Set(routes.map((r) => `${r.method} ${r.path}`));
  for (const k of Object.keys(OPERATIONS)) {
    if (!keys.has(k))
      throw new Error(`OpenAPI operation '${k}' has no route in contracts/routes.ts`);
  }
  const paths: Record<string, Record<string, Schema>> = {};
  const scopes: Record<string, string> = {};
  for (const route of routes) {
    const key = `${route.method} ${route.path}`;
    const operation = OPERATIONS[key];
    if (!operation)
      throw new Error(`Route '${key}' has no OpenAPI operation in contracts/openapi.ts`);
    const names = route.anyOf.flatMap(scopeNames);
    for (const n of names) scopes[n] = `Grants ${key}`;
    const op = operation(route);
    paths[route.path] ??= {};
    if (route.public) {
      paths[route.path][route.method.toLowerCase()] = {
        summary: route.summary,
        ...op,
        security: [],
        responses: { ...(op.responses as Schema), 429: outcome("Throttled") },
      };
      continue;
    }
    paths[route.path][route.method.toLowerCase()] = {
      summary: route.summary,
      ...op,
      // Any one of the scopes suffices; /health needs only a valid token.
      security: (names.length ? names : [null]).map((n) => ({ okta: n ? [n] : [], clientId: [] })),
      responses: {
        ...(op.responses as Schema),
        401: outcome("Missing, malformed, expired or otherwise invalid token"),
        403: outcome(
          "The token's scopes do not grant this route, or the resources in the request; the diagnostics name the scope needed",
        ),
        429: outcome("Throttled"),
      },
    };
  }
  return {
    openapi: "3.1.0",
    info: {
      title: "HOTH member-migration API",
      version: "1.0.0",
      description:
        "FHIR R4 member registration and migrations. Every call needs an Okta access token (client credentials) and the X-Client-Id header naming the token's client.",
    },
    servers: [
      { url: "{baseUrl}", variables: { baseUrl: { default: "http://127.0.0.1:4566/local" } } },
    ],
    paths,
    components: {
      schemas: SCHEMAS,
      securitySchemes: {
        okta: { type: "oauth2", flows: { clientCredentials: { tokenUrl, scopes } } },
        clientId: { type: "apiKey", in: "header", name: "X-Client-Id" },
      },
    },
  };
}
