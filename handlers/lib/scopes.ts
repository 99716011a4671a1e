import type { ScopeRequirement } from "../../components/routes";

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
