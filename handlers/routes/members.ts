import { createHash, randomUUID } from "node:crypto";
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from "aws-lambda";
import { Deadline } from "../lib/deadline";
import { BadRequestError, ConflictError, HttpError, UnprocessableError } from "../lib/errors";
import { validateBundleShape, validateMember } from "../lib/fhir";
import { parseFhirJson } from "../lib/fhirJson";
import type { RouteImpl } from "../lib/http";
import {
  type Entry,
  ID,
  identifierCriterion,
  issue,
  type Planned,
  parseETag,
  plan,
  type Refusal,
  references,
  refusalsOf,
} from "../lib/memberPlan";
import { fhirResponse, type Issue, operationOutcome } from "../lib/outcome";
import {
  type Head,
  IDEMPOTENCY_TTL_DAYS,
  type IdempotencyRecord,
  type Json,
  type MemberRegistry,
  TransactionRefused,
} from "../lib/registry";
import { accessDenied, callerPermissions, header, requireAccess, tenant } from "../lib/request";
import { type Interaction, permits } from "../lib/scopes";

/** Largest accepted body (the API allows 10 MB; registration wants far less). */
export const MAX_BODY_BYTES = 1024 * 1024;
/** Largest resource the registry stores (a DynamoDB item holds at most 400 KB). */
export const MAX_RESOURCE_BYTES = 300 * 1024;
/** Entries of one transaction Bundle: it is one DynamoDB transaction (100 actions). */
export const MAX_TRANSACTION_ENTRIES = 25;
/** Entries of one batch Bundle (each entry is its own transaction). */
export const MAX_BATCH_ENTRIES = 1000;
const BATCH_PARALLEL = 8;
const ACCEPTED_TYPES = ["application/fhir+json", "application/json"];

export interface MemberDeps {
  registry: MemberRegistry;
  /** The request budget (ms) when the invocation gives none. */
  budgetMs?: number;
  now?: () => Date;
  newId?: () => string;
}

const STATUS_TEXT: Record<number, string> = {
  200: "200 OK",
  201: "201 Created",
  400: "400 Bad Request",
  403: "403 Forbidden",
  404: "404 Not Found",
  409: "409 Conflict",
  412: "412 Precondition Failed",
  422: "422 Unprocessable Entity",
};

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
  // Strict: duplicate keys and nesting past a limit are 400 (handlers/lib/fhirJson.ts).
  const json = parseFhirJson(raw.toString("utf8"));
  if (!json || typeof json !== "object" || Array.isArray(json)) {
    throw new BadRequestError("The body must be a FHIR resource (a JSON object)", "structure");
  }
  return { json: json as Json, raw };
}

/** Validates the body into entries: a lone Patient is a one-entry transaction. */
function entriesOf(
  json: Json,
  event: APIGatewayProxyEvent,
): { entries: Entry[]; transaction: boolean; bundle: boolean } {
  if (json.resourceType === "Patient") {
    const criteria = header(event, "If-None-Exist");
    requireAccess(event, "Patient", "create");
    // A conditional create tells whether a member exists: a search.
    if (criteria !== undefined) requireAccess(event, "Patient", "search");
    const issues = validateMember(json);
    let ifNoneExist: string | undefined;
    if (criteria !== undefined) {
      ifNoneExist = identifierCriterion(criteria);
      if (!ifNoneExist) {
        throw new HttpError(
          412,
          "not-supported",
          "If-None-Exist supports one criterion: identifier=system|value",
        );
      }
    }
    if (issues.length) throw new UnprocessableError(issues);
    const tooLong = sizeIssues(json, "Patient");
    if (tooLong.length) throw new UnprocessableError(tooLong);
    return {
      entries: [
        {
          index: 0,
          at: "Patient",
          requestAt: "Patient",
          method: "POST",
          resource: json,
          type: "Patient",
          ifNoneExist,
        },
      ],
      transaction: true,
      bundle: false,
    };
  }
  if (json.resourceType !== "Bundle") {
    throw new UnprocessableError([
      issue(
        "not-supported",
        "Send a Patient, or a batch or transaction Bundle of Patient and Coverage",
        "resourceType",
      ),
    ]);
  }
  const shape = validateBundleShape(json);
  if (shape.length) throw new UnprocessableError(shape);
  const transaction = json.type === "transaction";
  const raw = json.entry as Json[];
  const limit = transaction ? MAX_TRANSACTION_ENTRIES : MAX_BATCH_ENTRIES;
  if (raw.length > limit) {
    throw new UnprocessableError([
      issue(
        "too-long",
        transaction
          ? `A transaction Bundle may have at most ${MAX_TRANSACTION_ENTRIES} entries (one database transaction); split it or send a batch`
          : `A batch Bundle may have at most ${MAX_BATCH_ENTRIES} entries`,
        "Bundle.entry",
      ),
    ]);
  }
  // Per entry, what the caller's scopes must grant (SMART: resource type and
  // interaction); in a transaction one entry not granted refuses all of it.
  const permissions = callerPermissions(event);
  const denied = new Map<number, HttpError>();
  raw.forEach((e, index) => {
    const type = (e.resource as Json | undefined)?.resourceType;
    const request = (e.request as Json | undefined) ?? {};
    // The registry takes Patient and Coverage; validation refuses any other type.
    if (type !== "Patient" && type !== "Coverage") return;
    const needs: Interaction[] =
      request.method === "PUT"
        ? ["update"]
        : typeof request.ifNoneExist === "string"
          ? ["create", "search"]
          : ["create"];
    const missing = needs.find((i) => !permits(permissions, type, i));
    if (missing) denied.set(index, accessDenied(type, missing));
  });
  if (transaction && denied.size) throw [...denied.values()][0];

  const entries: Entry[] = [];
  const invalid: Issue[] = [];
  const perEntry = new Map<number, Issue[]>();
  raw.forEach((e, index) => {
    const at = `Bundle.entry[${index}].resource`;
    const requestAt = `Bundle.entry[${index}].request`;
    const resource = e.resource as Json;
    const request = e.request as Json;
    const issues = validateMember(resource, at);
    const type = resource.resourceType as Entry["type"];
    const method = request.method as Entry["method"];
    const entry: Entry = {
      index,
      at,
      requestAt,
      method,
      resource,
      type,
      ...(typeof e.fullUrl === "string" ? { fullUrl: e.fullUrl } : {}),
    };
    if (!issues.length) {
      if (method === "PUT") {
        const [urlType, urlId, extra] = String(request.url).split("/");
        if (
          urlType !== type ||
          !ID.test(urlId ?? "") ||
          extra !== undefined ||
          (resource.id !== undefined && resource.id !== urlId)
        ) {
          issues.push(
            issue(
              "invalid",
              "A PUT needs url '<type>/<id>' naming the resource's id",
              `${requestAt}.url`,
            ),
          );
        } else {
          entry.id = urlId;
        }
        if (typeof request.ifMatch === "string") {
          entry.ifMatch = parseETag(request.ifMatch);
          if (entry.ifMatch === undefined)
            issues.push(
              issue("invalid", 'ifMatch must be a version ETag like W/"1"', `${requestAt}.ifMatch`),
            );
        }
      } else {
        if (request.url !== type) {
          issues.push(
            issue("invalid", "A POST needs url '<type>' of its resource", `${requestAt}.url`),
          );
        }
        if (typeof request.ifNoneExist === "string") {
          entry.ifNoneExist = identifierCriterion(request.ifNoneExist);
          if (!entry.ifNoneExist || type !== "Patient") {
            perEntry.set(index, [
              issue(
                "not-supported",
                "ifNoneExist supports one criterion on a Patient: identifier=system|value",
                `${requestAt}.ifNoneExist`,
              ),
            ]);
          }
        }
      }
    }
    issues.push(...sizeIssues(resource, at));
    if (issues.length) {
      invalid.push(...issues);
      perEntry.set(index, [...(perEntry.get(index) ?? []), ...issues]);
    }
    entries.push(entry);
  });
  if (transaction && invalid.length) throw new UnprocessableError(invalid);
  if (transaction && perEntry.size) {
    throw new HttpError(
      412,
      "not-supported",
      "A conditional create's criteria are not supported",
      {},
    );
  }
  // Batch: entries not granted or not valid answer on their own.
  for (const [index, error] of denied) {
    entries[index].refusal = {
      status: 403,
      issues: [issue("forbidden", error.message, `Bundle.entry[${index}]`)],
    };
    perEntry.delete(index);
  }
  for (const [index, issues] of perEntry) {
    entries[index].refusal = {
      status:
        issues.some((i) => i.code === "not-supported") &&
        !issues.some((i) => i.code !== "not-supported")
          ? 412
          : 422,
      issues,
    };
  }
  return { entries, transaction, bundle: true };
}

function sizeIssues(resource: Json, at: string): Issue[] {
  return Buffer.byteLength(JSON.stringify(resource)) > MAX_RESOURCE_BYTES
    ? [issue("too-long", "A resource may be at most 300 KB", at)]
    : [];
}

/** What one committed (or answered) entry says in a Bundle response. */
function entryResponse(p: Planned, lastUpdated: string) {
  if (p.refusal) {
    return {
      response: {
        status: STATUS_TEXT[p.refusal.status],
        outcome: operationOutcome(p.refusal.issues),
      },
    };
  }
  const w = p.write ?? (p.existing as Head);
  const { version } = w;
  return {
    response: {
      status: p.write ? (p.write.version === 1 ? "201 Created" : "200 OK") : "200 OK",
      location: `${w.type}/${w.id}/_history/${version}`,
      etag: `W/"${version}"`,
      lastModified: p.write ? lastUpdated : (p.existing as Head).lastUpdated,
    },
  };
}

type Answer = { statusCode: number; headers?: Record<string, string>; body: string };

export const registerMembers =
  ({
    registry,
    budgetMs = 8000,
    now = () => new Date(),
    newId = randomUUID,
  }: MemberDeps): RouteImpl =>
  async ({ event, context }) => {
    const org = tenant(event);
    const deadline = Deadline.forInvocation(context, budgetMs);
    const { json, raw } = readBody(event);
    const key = header(event, "Idempotency-Key");
    if (key !== undefined && !/^[\x21-\x7e]{1,255}$/.test(key)) {
      throw new BadRequestError("Idempotency-Key must be 1-255 printable characters", "value");
    }
    const keyHash = key ? createHash("sha256").update(key).digest("hex") : undefined;
    const requestHash = createHash("sha256")
      .update(`${header(event, "If-None-Exist") ?? ""}\n`)
      .update(raw)
      .digest("hex");
    const { entries, transaction, bundle } = entriesOf(json, event);
    const replay = (record: IdempotencyRecord | undefined): APIGatewayProxyResult | undefined => {
      if (!record) return undefined;
      if (record.requestHash !== requestHash) {
        throw new ConflictError("This Idempotency-Key was already used for a different request");
      }
      return record.response as APIGatewayProxyResult;
    };

    if (!transaction) {
      return registerBatch(registry, org, entries, deadline, {
        now,
        newId,
        keyHash,
        requestHash,
        replay,
      });
    }

    for (let attempt = 0; ; attempt++) {
      const at = now();
      const lastUpdated = at.toISOString();
      const { idempotency, planned, mustExist } = await readAndPlan(registry, org, entries, {
        idempotency: attempt > 0 ? keyHash : undefined,
        lastUpdated,
        newId,
        deadline,
      });
      const replayed = replay(idempotency);
      if (replayed) return replayed;
      const refused = planned.filter((p) => p.refusal);
      if (refused.length) throw transactionRefusal(refused);
      const writes = planned.filter((p) => p.write);
      const response = bundle
        ? fhirResponse(200, {
            resourceType: "Bundle",
            type: "transaction-response",
            entry: planned.map((p) => entryResponse(p, lastUpdated)),
          })
        : singleResponse(planned[0], at);
      if (!writes.length) return response; // every entry matched an existing member
      const txn = newId();
      try {
        await registry.commit(
          {
            org,
            txn,
            writes: writes.map((p) => p.write as NonNullable<Planned["write"]>),
            mustExist: [...mustExist.keys()],
            idempotency: keyHash
              ? {
                  sk: keyHash,
                  record: { requestHash, response: response as Answer },
                  expiresAt: expiry(at),
                }
              : undefined,
          },
          deadline,
        );
        return response;
      } catch (error) {
        if (!(error instanceof TransactionRefused)) throw error;
        const outcome = refusalsOf(error.failed, planned, mustExist);
        if (outcome.idempotency) {
          const again = await registry.read(org, { idempotency: keyHash }, deadline);
          const r = replay(again.idempotency);
          if (r) return r;
        }
        if (outcome.refusals.size) {
          for (const [index, refusal] of outcome.refusals) planned[index].refusal = refusal;
          throw transactionRefusal(planned.filter((p) => p.refusal));
        }
        // A concurrent writer won a version or an identifier: read again, within the budget.
        await deadline.sleep(Math.random() * 20 * 2 ** Math.min(attempt, 5));
      }
    }
  };

/**
 * What a registration depends on, read in one batch (the heads PUTs update,
 * the owners of conditional creates' identifiers, the idempotency record),
 * the heads of conditional creates' matches, and the plan from them.
 * Identifier ownership is enforced by the write's conditions: plain creates
 * read nothing.
 */
async function readAndPlan(
  registry: MemberRegistry,
  org: string,
  entries: Entry[],
  o: { idempotency?: string; lastUpdated: string; newId: () => string; deadline: Deadline },
) {
  const state = await registry.read(
    org,
    {
      heads: entries
        .filter((e) => e.method === "PUT")
        .map((e) => ({ type: e.type, id: e.id as string })),
      owners: entries.flatMap((e) => (e.ifNoneExist ? [e.ifNoneExist] : [])),
      idempotency: o.idempotency,
    },
    o.deadline,
  );
  // A conditional create's match must be readable as a head.
  const matches = [
    ...new Set(
      entries
        .map((e) => e.ifNoneExist && state.owners.get(e.ifNoneExist))
        .filter((m): m is string => !!m),
    ),
  ];
  if (matches.length) {
    const more = await registry.read(
      org,
      { heads: matches.map((id) => ({ type: "Patient", id })) },
      o.deadline,
    );
    for (const [k, v] of more.heads) state.heads.set(k, v);
  }
  return {
    idempotency: state.idempotency,
    ...plan(entries, state, { lastUpdated: o.lastUpdated, newId: o.newId, transaction: true }),
  };
}

const expiry = (at: Date) => Math.floor(at.getTime() / 1000) + IDEMPOTENCY_TTL_DAYS * 86400;

function singleResponse(p: Planned, at: Date): APIGatewayProxyResult {
  if (p.existing) {
    return fhirResponse(200, p.existing.body, {
      Location: `/members/${p.existing.id}`,
      ETag: `W/"${p.existing.version}"`,
      "Last-Modified": new Date(p.existing.lastUpdated).toUTCString(),
    });
  }
  const w = p.write as NonNullable<Planned["write"]>;
  return fhirResponse(201, w.body, {
    Location: `/members/${w.id}`,
    ETag: `W/"${w.version}"`,
    "Last-Modified": at.toUTCString(),
  });
}

/** A transaction's answer when entries are refused: the most telling status, every issue. */
function transactionRefusal(refused: Planned[]): HttpError {
  const issues = refused.flatMap((p) => (p.refusal as Refusal).issues);
  const statuses = refused.map((p) => (p.refusal as Refusal).status);
  for (const status of [403, 422, 409, 412, 404] as const) {
    if (!statuses.includes(status)) continue;
    if (status === 422) return new UnprocessableError(issues);
    const code = { 403: "forbidden", 409: "conflict", 412: "conflict", 404: "not-found" }[status];
    return new HttpError(status, code as Issue["code"], issues[0].diagnostics, {}, { issues });
  }
  return new UnprocessableError(issues);
}

/**
 * A batch: every entry is its own transaction (with its own idempotency
 * record under the request's key), Patients before the entries that may
 * reference them. A retry with the same key answers the committed entries
 * as they were answered and finishes the rest.
 */
async function registerBatch(
  registry: MemberRegistry,
  org: string,
  entries: Entry[],
  deadline: Deadline,
  o: {
    now: () => Date;
    newId: () => string;
    keyHash?: string;
    requestHash: string;
    replay: (r: IdempotencyRecord | undefined) => APIGatewayProxyResult | undefined;
  },
): Promise<APIGatewayProxyResult> {
  const prior = await registry.read(org, { idempotency: o.keyHash }, deadline);
  const replayed = o.replay(prior.idempotency);
  if (replayed) return replayed;
  const answers = new Map<number, unknown>();
  const resolved = new Map<string, string>();
  const refusedUrls = new Set<string>();
  const order = [...entries].sort(
    (a, b) => Number(a.type !== "Patient") - Number(b.type !== "Patient") || a.index - b.index,
  );
  const run = async (entry: Entry) => {
    if (entry.refusal) {
      answers.set(entry.index, entryResponse({ entry, refusal: entry.refusal }, ""));
      if (entry.fullUrl) refusedUrls.add(entry.fullUrl);
      return;
    }
    // Bundle-local references of a batch point at entries committed before it.
    const resource = JSON.parse(JSON.stringify(entry.resource)) as Json;
    let brokenRef: string | undefined;
    for (const { holder, path } of references(resource, entry.at)) {
      const ref = holder.reference as string;
      if (!ref.startsWith("urn:uuid:")) continue;
      const target = resolved.get(ref);
      if (target) holder.reference = target;
      else if (refusedUrls.has(ref)) brokenRef = path;
    }
    if (brokenRef) {
      answers.set(
        entry.index,
        entryResponse(
          {
            entry,
            refusal: {
              status: 422,
              issues: [issue("invalid", "The referenced entry was refused", brokenRef)],
            },
          },
          "",
        ),
      );
      if (entry.fullUrl) refusedUrls.add(entry.fullUrl);
      return;
    }
    const single = { ...entry, resource };
    const sk = o.keyHash ? `${o.keyHash}#${entry.index}` : undefined;
    const answer = await commitEntry(registry, org, single, deadline, { ...o, sk });
    answers.set(entry.index, answer.entry);
    if (entry.fullUrl) {
      if (answer.location) resolved.set(entry.fullUrl, answer.location);
      else refusedUrls.add(entry.fullUrl);
    }
  };
  const patients = order.filter((e) => e.type === "Patient");
  const others = order.filter((e) => e.type !== "Patient");
  for (const group of [patients, others]) {
    for (let i = 0; i < group.length; i += BATCH_PARALLEL) {
      await Promise.all(group.slice(i, i + BATCH_PARALLEL).map(run));
    }
  }
  const response = fhirResponse(200, {
    resourceType: "Bundle",
    type: "batch-response",
    entry: entries.map((e) => answers.get(e.index)),
  });
  if (o.keyHash)
    await registry.remember(
      org,
      o.keyHash,
      { requestHash: o.requestHash, response: response as Answer },
      expiry(o.now()),
      deadline,
    );
  return response;
}

/** One batch entry as its own transaction; answers its Bundle response entry. */
async function commitEntry(
  registry: MemberRegistry,
  org: string,
  entry: Entry,
  deadline: Deadline,
  o: { now: () => Date; newId: () => string; sk?: string; requestHash: string },
): Promise<{ entry: unknown; location?: string }> {
  const e = { ...entry, index: 0 };
  for (let attempt = 0; ; attempt++) {
    const lastUpdated = o.now().toISOString();
    const { idempotency, planned, mustExist } = await readAndPlan(registry, org, [e], {
      idempotency: o.sk,
      lastUpdated,
      newId: o.newId,
      deadline,
    });
    if (idempotency) {
      return JSON.parse(idempotency.response.body) as { entry: unknown; location?: string };
    }
    const p = planned[0];
    const location = p.write
      ? `${p.write.type}/${p.write.id}`
      : p.existing
        ? `${p.existing.type}/${p.existing.id}`
        : undefined;
    const answer = { entry: entryResponse({ ...p, entry }, lastUpdated), location };
    if (!p.write) return answer;
    try {
      await registry.commit(
        {
          org,
          txn: o.newId(),
          writes: [p.write],
          mustExist: [...mustExist.keys()],
          idempotency: o.sk
            ? {
                sk: o.sk,
                record: {
                  requestHash: o.requestHash,
                  response: { statusCode: 200, body: JSON.stringify(answer) },
                },
                expiresAt: expiry(o.now()),
              }
            : undefined,
        },
        deadline,
      );
      return answer;
    } catch (error) {
      if (!(error instanceof TransactionRefused)) throw error;
      const outcome = refusalsOf(error.failed, planned, mustExist);
      if (outcome.refusals.size) {
        const refusal = [...outcome.refusals.values()][0];
        return { entry: entryResponse({ entry, refusal }, "") };
      }
      if (!outcome.idempotency)
        await deadline.sleep(Math.random() * 20 * 2 ** Math.min(attempt, 5));
    }
  }
}
