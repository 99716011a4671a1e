import type { ScopeRequirement } from "../../contracts/routes";

/**
 * SMART on FHIR scopes (v1 and v2 grammar) parsed into permissions:
 * https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html
 * - v2: `system/Patient.cruds`, `user/*.rs` (letters in c-r-u-d-s order);
 * - v1: `system/Patient.write` (= c u d), `patient/*.read` (= r s), `.*` (all).
 * A v2 scope with a `?query` restricts to matching resources, which a route
 * cannot check: it is ignored (grants nothing), as is anything malformed.
 */

export type Access = ScopeRequirement["access"];
export type Context = "system" | "user" | "patient";

export interface Permission {
  context: Context;
  /** A FHIR resource type, or "*". */
  resource: string;
  access: ReadonlySet<Access>;
  /** The scope as granted. */
  scope: string;
}

const V2 = /^(system|user|patient)\/(\*|[A-Z][A-Za-z]{1,63})\.(c?r?u?d?s?)$/;
const V1 = /^(system|user|patient)\/(\*|[A-Z][A-Za-z]{1,63})\.(read|write|\*)$/;
const V1_ACCESS: Record<string, Access[]> = {
  read: ["r", "s"],
  write: ["c", "u", "d"],
  "*": ["c", "r", "u", "d", "s"],
};

export function parseScope(scope: string): Permission | undefined {
  const v1 = V1.exec(scope);
  if (v1) {
    return { context: v1[1] as Context, resource: v1[2], access: new Set(V1_ACCESS[v1[3]]), scope };
  }
  const v2 = V2.exec(scope);
  if (v2 && v2[3] !== "") {
    return {
      context: v2[1] as Context,
      resource: v2[2],
      access: new Set(v2[3].split("") as Access[]),
      scope,
    };
  }
  return undefined;
}

/** The scopes of an access token: `scp` (array, Okta) or `scope` (space-separated, RFC 9068). */
export function tokenScopes(claims: Record<string, unknown>): string[] {
  if (Array.isArray(claims.scp))
    return claims.scp.filter((s): s is string => typeof s === "string");
  if (typeof claims.scope === "string") return claims.scope.split(" ").filter(Boolean);
  return [];
}

export function parseScopes(scopes: string[]): Permission[] {
  return scopes.map(parseScope).filter((p): p is Permission => p !== undefined);
}

/**
 * Whether a permission grants a route requirement. The API acts for an
 * organisation, not for one user or patient, so only `system/` scopes grant
 * routes; `user/` and `patient/` scopes are parsed and grant nothing here.
 */
export function grants(p: Permission, req: ScopeRequirement): boolean {
  return (
    p.context === "system" &&
    (p.resource === "*" || p.resource === req.resource) &&
    p.access.has(req.access)
  );
}

/**
 * FHIR RESTful interactions the API serves. `history` is instance-level
 * history (`GET [type]/[id]/_history`); type-level history is a search.
 */
export type Interaction = "create" | "read" | "vread" | "update" | "delete" | "history" | "search";

/**
 * The SMART v2 permission letter each interaction needs, from the table in
 * https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html#scopes-for-requesting-fhir-resources
 * (r covers read, vread and instance history; s covers search). SMART v1
 * `read` grants r and s, `write` grants c, u and d, `*` all (see parseScope).
 */
export const INTERACTION_ACCESS: Readonly<Record<Interaction, Access>> = {
  create: "c",
  read: "r",
  vread: "r",
  history: "r",
  update: "u",
  delete: "d",
  search: "s",
};

/**
 * Whether these scopes let an organisation (system/ context) perform an
 * interaction on a resource type. Scopes may be given as granted strings
 * (v1 or v2, wildcards included; malformed ones grant nothing) or already
 * parsed. Pure: no I/O, no defaults; an empty list permits nothing.
 *
 *   permits(["system/Patient.cruds"], "Patient", "vread")  // true
 *   permits(["system/*.read"], "Coverage", "search")       // true
 *   permits(["system/Patient.c"], "Coverage", "create")    // false
 *   permits(["patient/*.*"], "Patient", "read")            // false: not system/
 */
export function permits(
  scopes: readonly (string | Permission)[],
  resourceType: string,
  interaction: Interaction,
): boolean {
  const req: ScopeRequirement = { resource: resourceType, access: INTERACTION_ACCESS[interaction] };
  return scopes.some((s) => {
    const p = typeof s === "string" ? parseScope(s) : s;
    return p !== undefined && grants(p, req);
  });
}

/** The narrowest SMART v2 scope that grants an interaction, e.g. `system/Coverage.c`. */
export function requiredScope(resourceType: string, interaction: Interaction): string {
  return scopeName({ resource: resourceType, access: INTERACTION_ACCESS[interaction] });
}

/** A route requirement as a SMART v2 scope, e.g. `system/Task.r`. */
export const scopeName = (req: ScopeRequirement) => `system/${req.resource}.${req.access}`;

/**
 * The resource types the API serves. Access checks take only these, so an
 * error naming the scope it needs can never repeat a type the caller sent.
 */
export const API_RESOURCE_TYPES = ["Patient", "Coverage", "Task", "Binary"] as const;
export type ApiResourceType = (typeof API_RESOURCE_TYPES)[number];

export const isApiResourceType = (t: unknown): t is ApiResourceType =>
  (API_RESOURCE_TYPES as readonly unknown[]).includes(t);
