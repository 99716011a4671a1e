import type { APIGatewayProxyResult } from "aws-lambda";
import { Deadline } from "../lib/deadline";
import { BadRequestError, NotFoundError } from "../lib/errors";
import type { RouteImpl } from "../lib/http";
import { ID, identifierCriterion } from "../lib/memberPlan";
import { fhirResponse } from "../lib/outcome";
import type { Json } from "../lib/registry";
import { requireAccess, tenant } from "../lib/request";
import type { MemberDeps } from "./members";

/**
 * The member registry's reads (FHIR R4 read, vread, history, search by
 * identifier), for the caller's organisation only: another organisation's
 * member is indistinguishable from a missing one.
 */

/** Versions a history Bundle lists, newest first. */
export const HISTORY_PAGE = 100;

const notFound = () => new NotFoundError("No such member is registered for this organisation");

function resourceResponse(body: Json): APIGatewayProxyResult {
  const meta = body.meta as Json;
  return fhirResponse(200, body, {
    ETag: `W/"${meta.versionId}"`,
    "Last-Modified": new Date(meta.lastUpdated as string).toUTCString(),
  });
}

export const getMember =
  ({ registry, budgetMs = 8000 }: MemberDeps): RouteImpl =>
  async ({ event, params, context }) => {
    const org = tenant(event);
    requireAccess(event, "Patient", "read");
    if (!ID.test(params.id)) throw notFound();
    const head = await registry.head(
      org,
      "Patient",
      params.id,
      Deadline.forInvocation(context, budgetMs),
    );
    if (!head) throw notFound();
    return resourceResponse(head.body);
  };

export const readMemberVersion =
  ({ registry, budgetMs = 8000 }: MemberDeps): RouteImpl =>
  async ({ event, params, context }) => {
    const org = tenant(event);
    requireAccess(event, "Patient", "vread");
    if (!ID.test(params.id) || !/^[1-9]\d{0,9}$/.test(params.vid)) throw notFound();
    const body = await registry.version(
      org,
      "Patient",
      params.id,
      Number(params.vid),
      Deadline.forInvocation(context, budgetMs),
    );
    if (!body) throw notFound();
    return resourceResponse(body);
  };

export const memberHistory =
  ({ registry, budgetMs = 8000 }: MemberDeps): RouteImpl =>
  async ({ event, params, context }) => {
    const org = tenant(event);
    requireAccess(event, "Patient", "history");
    if (!ID.test(params.id)) throw notFound();
    const deadline = Deadline.forInvocation(context, budgetMs);
    const [head, versions] = await Promise.all([
      registry.head(org, "Patient", params.id, deadline),
      registry.history(org, "Patient", params.id, HISTORY_PAGE, deadline),
    ]);
    if (!head) throw notFound();
    return fhirResponse(200, {
      resourceType: "Bundle",
      type: "history",
      total: head.version,
      entry: versions.map((body) => {
        const meta = body.meta as Json;
        return {
          fullUrl: `Patient/${body.id}`,
          resource: body,
          request: {
            method: meta.versionId === "1" ? "POST" : "PUT",
            url: meta.versionId === "1" ? "Patient" : `Patient/${body.id}`,
          },
          response: {
            status: meta.versionId === "1" ? "201 Created" : "200 OK",
            etag: `W/"${meta.versionId}"`,
            lastModified: meta.lastUpdated,
          },
        };
      }),
    });
  };

export const searchMembers =
  ({ registry, budgetMs = 8000 }: MemberDeps): RouteImpl =>
  async ({ event, context }) => {
    const org = tenant(event);
    requireAccess(event, "Patient", "search");
    const multi = event.multiValueQueryStringParameters ?? {};
    const single = event.queryStringParameters ?? {};
    const names = new Set([...Object.keys(multi), ...Object.keys(single)]);
    if (names.size !== 1 || !names.has("identifier") || (multi.identifier?.length ?? 1) !== 1) {
      throw new BadRequestError(
        "Search members with exactly one parameter: identifier=system|value",
        "not-supported",
      );
    }
    const hash = identifierCriterion(
      `identifier=${encodeURIComponent(single.identifier ?? multi.identifier?.[0] ?? "")}`,
    );
    if (!hash) {
      throw new BadRequestError("The identifier parameter must be system|value", "value");
    }
    const deadline = Deadline.forInvocation(context, budgetMs);
    const owner = await registry.owner(org, hash, deadline);
    const head = owner ? await registry.head(org, "Patient", owner, deadline) : undefined;
    return fhirResponse(200, {
      resourceType: "Bundle",
      type: "searchset",
      total: head ? 1 : 0,
      entry: head
        ? [{ fullUrl: `Patient/${head.id}`, resource: head.body, search: { mode: "match" } }]
        : [],
    });
  };
