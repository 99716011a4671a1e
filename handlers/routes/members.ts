import { createHash, randomUUID } from "node:crypto";
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from "aws-lambda";
import {
  BadRequestError,
  ConflictError,
  HttpError,
  NotFoundError,
  UnprocessableError,
} from "../lib/errors";
import { type Json, validateBundleShape, validateMember } from "../lib/fhir";
import type { RouteImpl } from "../lib/http";
import type { MemberStore } from "../lib/memberStore";
import { FHIR_JSON, type Issue, operationOutcome } from "../lib/outcome";
import { header, tenant } from "../lib/request";

/** Largest accepted body (the API allows 10 MB; registration wants far less). */
export const MAX_BODY_BYTES = 1024 * 1024;
const ACCEPTED_TYPES = ["application/fhir+json", "application/json"];
const ID = /^[A-Za-z0-9\-.]{1,64}$/;

export interface MemberDeps {
  store: MemberStore;
  now?: () => Date;
  newId?: () => string;
}

const fhirResponse = (
  statusCode: number,
  body: unknown,
  headers: Record<string, string> = {},
): APIGatewayProxyResult => ({
  statusCode,
  headers: { "Content-Type": FHIR_JSON, ...headers },
  body: JSON.stringify(body),
});

/** The body as JSON, after the content-type and size checks (415, 413, 400). */
function readBody(event: APIGatewayProxyEvent): { json: Json; raw: Buffer } {
  const type = header(event, "Content-Type")?.split(";")[0].trim().toLowerCase();
  if (!type || !ACCEPTED_TYPES.includes(type)) {
    throw new HttpError(
      415,
      "not-supported",
      "Content-Type must be application/fhir+json or application/json",
    );
  }
  if (!event.body) throw new BadRequestError("The request has no body", "required");
  const raw = Buffer.from(event.body, event.isBase64Encoded ? "base64" : "utf8");
  if (raw.length > MAX_BODY_BYTES)
    throw new HttpError(413, "too-long", "The body is larger than 1 MB");
  let json: unknown;
  try {
    json = JSON.parse(raw.toString("utf8"));
  } catch {
    throw new BadRequestError("The body is not valid JSON", "structure");
  }
  if (!json || typeof json !== "object" || Array.isArray(json)) {
    throw new BadRequestError("The body must be a FHIR resource (a JSON object)", "structure");
  }
  return { json: json as Json, raw };
}

/** Every `reference` in a resource, with the FHIRPath of where it stands. */
function references(node: unknown, path: string, out: { path: string; holder: Json }[] = []) {
  if (Array.isArray(node)) {
    node.forEach((n, i) => {
      references(n, `${path}[${i}]`, out);
    });
  } else if (node && typeof node === "object") {
    const o = node as Json;
    if (typeof o.reference === "string") out.push({ path: `${path}.reference`, holder: o });
    for (const [k, v] of Object.entries(o))
      if (k !== "reference") references(v, `${path}.${k}`, out);
  }
  return out;
}

const refIssue = (diagnostics: string, expression: string): Issue => ({
  severity: "error",
  code: "invalid",
  diagnostics,
  expression: [expression],
});

interface Planned {
  index: number;
  resource: Json;
  issues: Issue[];
  created: boolean;
}

export const registerMembers =
  ({ store, now = () => new Date(), newId = randomUUID }: MemberDeps): RouteImpl =>
  async ({ event }) => {
    const org = tenant(event);
    const { json, raw } = readBody(event);
    const key = header(event, "Idempotency-Key");
    const keyHash = key ? createHash("sha256").update(`${org}\n${key}`).digest("hex") : undefined;
    const requestHash = createHash("sha256").update(raw).digest("hex");
    if (keyHash) {
      const seen = await store.idempotencyRecord(org, keyHash);
      if (seen) {
        if (seen.requestHash !== requestHash) {
          throw new ConflictError("This Idempotency-Key was already used for a different request");
        }
        return seen.response as APIGatewayProxyResult;
      }
    }
    const at = now();
    const lastUpdated = at.toISOString();
    const date = lastUpdated.slice(0, 10);
    const batch = newId();
    const stamp = (r: Json, id: string, version: number): Json => ({
      ...r,
      id,
      meta: { ...(r.meta as Json), versionId: String(version), lastUpdated },
    });
    const save = async (resources: Json[], response: APIGatewayProxyResult) => {
      await store.commit(org, batch, date, resources, {
        updates: resources.filter((r) => (r.meta as Json).versionId !== "1"),
        idempotency: keyHash ? { keyHash, record: { requestHash, response } } : undefined,
      });
      return response;
    };

    if (json.resourceType === "Patient") {
      const issues = validateMember(json);
      if (issues.length) throw new UnprocessableError(issues);
      const id = newId();
      const patient = stamp(json, id, 1);
      return save(
        [patient],
        fhirResponse(201, patient, {
          Location: `/members/${id}`,
          ETag: 'W/"1"',
          "Last-Modified": at.toUTCString(),
        }),
      );
    }
    if (json.resourceType !== "Bundle") {
      throw new UnprocessableError([
        {
          severity: "error",
          code: "not-supported",
          diagnostics: "Send a Patient, or a batch or transaction Bundle of Patient and Coverage",
          expression: ["resourceType"],
        },
      ]);
    }

    const shape = validateBundleShape(json);
    if (shape.length) throw new UnprocessableError(shape);
    const transaction = json.type === "transaction";
    const entries = json.entry as Json[];

    // Plan: validate each entry, assign ids, map fullUrls to the new references.
    const plan: Planned[] = [];
    const fullUrls = new Map<string, string>();
    for (const [index, entry] of entries.entries()) {
      const base = `Bundle.entry[${index}].resource`;
      const resource = entry.resource as Json;
      const request = entry.request as { method: string; url: string };
      const issues = validateMember(resource, base);
      const type = resource.resourceType as string;
      let id = newId();
      if (request.method === "PUT") {
        const [urlType, urlId, extra] = String(request.url).split("/");
        if (
          urlType !== type ||
          !ID.test(urlId ?? "") ||
          extra !== undefined ||
          (resource.id !== undefined && resource.id !== urlId)
        ) {
          issues.push(
            refIssue(
              `A PUT needs url '${type}/<id>' naming the resource's id`,
              `Bundle.entry[${index}].request.url`,
            ),
          );
        } else {
          id = urlId;
        }
      } else if (request.url !== type) {
        issues.push(
          refIssue(`A POST of a ${type} needs url '${type}'`, `Bundle.entry[${index}].request.url`),
        );
      }
      // A PUT of a registered member makes its next version.
      let version = 0;
      if (request.method === "PUT" && !issues.length) {
        const existing = await store.latest(org, type, id);
        version = Number((existing?.meta as Json | undefined)?.versionId ?? 0);
      }
      if (typeof entry.fullUrl === "string") fullUrls.set(entry.fullUrl, `${type}/${id}`);
      plan.push({
        index,
        resource: stamp(resource, id, version + 1),
        issues,
        created: version === 0,
      });
    }
    const failed = new Set(plan.filter((p) => p.issues.length).map((p) => p.index));
    const failedTargets = new Set(
      entries
        .filter((_, i) => failed.has(i))
        .map((e) => e.fullUrl)
        .filter((u): u is string => typeof u === "string"),
    );
    const bundlePatients = new Set(
      plan
        .filter((p) => p.resource.resourceType === "Patient")
        .map((p) => `Patient/${p.resource.id}`),
    );
    for (const p of plan) {
      for (const { path, holder } of references(p.resource, `Bundle.entry[${p.index}].resource`)) {
        const ref = holder.reference as string;
        if (ref.startsWith("urn:uuid:")) {
          const target = fullUrls.get(ref);
          if (!target) p.issues.push(refIssue("The reference names no entry of this Bundle", path));
          else if (failedTargets.has(ref) && !transaction)
            p.issues.push(refIssue("The referenced entry was refused", path));
          else holder.reference = target;
        } else if (/^Patient\/[^/]+$/.test(ref) && !bundlePatients.has(ref)) {
          if (!(await store.latest(org, "Patient", ref.slice(8)))) {
            p.issues.push(
              refIssue("The referenced Patient is not registered for this organisation", path),
            );
          }
        }
      }
    }

    const refused = plan.filter((p) => p.issues.length);
    if (transaction && refused.length)
      throw new UnprocessableError(refused.flatMap((p) => p.issues));
    const accepted = plan.filter((p) => !p.issues.length);
    const response = fhirResponse(200, {
      resourceType: "Bundle",
      type: transaction ? "transaction-response" : "batch-response",
      entry: plan.map((p) =>
        p.issues.length
          ? {
              response: { status: "422 Unprocessable Entity", outcome: operationOutcome(p.issues) },
            }
          : {
              response: {
                status: p.created ? "201 Created" : "200 OK",
                location: `${p.resource.resourceType}/${p.resource.id}/_history/${(p.resource.meta as Json).versionId}`,
                etag: `W/"${(p.resource.meta as Json).versionId}"`,
                lastModified: lastUpdated,
              },
            },
      ),
    });
    if (!accepted.length) return response;
    return save(
      accepted.map((p) => p.resource),
      response,
    );
  };

export const getMember =
  ({ store }: MemberDeps): RouteImpl =>
  async ({ event, params }) => {
    const org = tenant(event);
    const id = params.id;
    if (!ID.test(id)) throw new NotFoundError(`Member ${id} does not exist`);
    const patient = await store.latest(org, "Patient", id);
    if (!patient) throw new NotFoundError(`Member ${id} does not exist`);
    const meta = patient.meta as Json;
    return fhirResponse(200, patient, {
      ETag: `W/"${meta.versionId}"`,
      "Last-Modified": new Date(meta.lastUpdated as string).toUTCString(),
    });
  };
