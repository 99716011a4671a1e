import type { Issue } from "./outcome";
import {
  type ActionRole,
  type Head,
  headSk,
  identifierHash,
  identifierHashes,
  type Json,
  type PlannedWrite,
} from "./registry";

/**
 * Planning a registration: from validated entries and what the registry holds
 * now, the writes of one transaction, or the answer of each entry that cannot
 * be written. Pure: no I/O, so every rule is tested without a database.
 */

export const ID = /^[A-Za-z0-9\-.]{1,64}$/;

/** An entry of a registration (a lone Patient is a one-entry transaction). */
export interface Entry {
  index: number;
  /** FHIRPath of the resource, e.g. `Bundle.entry[2].resource`. */
  at: string;
  /** FHIRPath of the request, for issues about it. */
  requestAt: string;
  method: "POST" | "PUT";
  resource: Json;
  type: "Patient" | "Coverage";
  fullUrl?: string;
  /** PUT: the id in the url. */
  id?: string;
  /** PUT: `W/"n"`'s n. */
  ifMatch?: number;
  /** POST: the hash of the identifier an `identifier=system|value` criterion names. */
  ifNoneExist?: string;
  /** A batch entry answered before any read (not granted, or not valid). */
  refusal?: Refusal;
}

/** The outcome of an entry that is not written as planned. */
export interface Refusal {
  status: 400 | 403 | 404 | 409 | 412 | 422;
  issues: Issue[];
}

export const issue = (code: Issue["code"], diagnostics: string, expression: string): Issue => ({
  severity: "error",
  code,
  diagnostics,
  expression: [expression],
});

/** `identifier=system|value` (or `identifier=|value`) -> its hash; anything else is unsupported. */
export function identifierCriterion(criteria: string): string | undefined {
  const params = new URLSearchParams(criteria.startsWith("?") ? criteria.slice(1) : criteria);
  const keys = [...params.keys()];
  if (keys.length !== 1 || keys[0] !== "identifier") return undefined;
  const value = params.get("identifier") ?? "";
  const bar = value.indexOf("|");
  if (bar < 0 || bar === value.length - 1) return undefined;
  return identifierHash(value.slice(0, bar) || undefined, value.slice(bar + 1));
}

/** Parses `W/"3"` (or `"3"`) into 3. */
export function parseETag(tag: string): number | undefined {
  const m = /^(?:W\/)?"([1-9]\d{0,9})"$/.exec(tag.trim());
  return m ? Number(m[1]) : undefined;
}

/** Every `reference` in a resource, with the FHIRPath of where it stands. */
export function references(
  node: unknown,
  path: string,
  out: { path: string; holder: Json }[] = [],
) {
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

export interface Registry {
  heads: Map<string, Head>;
  /** Identifier hash -> the Patient id holding it. */
  owners: Map<string, string>;
}

export interface Planned {
  entry: Entry;
  /** What the entry writes, or why not. */
  write?: PlannedWrite;
  /** An existing resource answered instead (conditional create that matched). */
  existing?: Head;
  refusal?: Refusal;
}

/**
 * Assigns ids and versions, resolves bundle-local references, and checks the
 * registration rules that need the registry's state: identifier ownership
 * (409), If-Match (412), PUT of an unregistered resource (404), conditional
 * create (the existing member instead). `newId` names created resources.
 */
export function plan(
  entries: Entry[],
  registry: Registry,
  opts: { lastUpdated: string; newId: () => string; transaction: boolean },
): { planned: Planned[]; mustExist: Map<string, string[]> } {
  const planned: Planned[] = [];
  const fullUrls = new Map<string, Planned>();
  const claimedBy = new Map<string, number>();
  for (const entry of entries) {
    const p: Planned = { entry };
    planned.push(p);
    const headOf = (id: string) => registry.heads.get(headSk(entry.type, id));
    let id: string;
    let version = 1;
    let previousIdentifiers: string[] = [];
    if (entry.method === "PUT") {
      id = entry.id as string;
      const head = headOf(id);
      if (!head) {
        p.refusal = {
          status: 404,
          issues: [
            issue(
              "not-found",
              "No such resource is registered for this organisation (updates cannot create)",
              entry.requestAt,
            ),
          ],
        };
        continue;
      }
      if (entry.ifMatch !== undefined && entry.ifMatch !== head.version) {
        p.refusal = {
          status: 412,
          issues: [
            issue("conflict", "The version in If-Match is not the latest version", entry.requestAt),
          ],
        };
        continue;
      }
      version = head.version + 1;
      previousIdentifiers = head.identifiers;
    } else {
      if (entry.ifNoneExist !== undefined) {
        const owner = registry.owners.get(entry.ifNoneExist);
        const head = owner ? registry.heads.get(headSk("Patient", owner)) : undefined;
        if (owner && head) {
          p.existing = head;
          if (entry.fullUrl) fullUrls.set(entry.fullUrl, p);
          continue;
        }
      }
      id = opts.newId();
    }
    const identifiers = entry.type === "Patient" ? identifierHashes(entry.resource) : [];
    const conflicts: Issue[] = [];
    identifiers.forEach((hash) => {
      const owner = registry.owners.get(hash);
      const other = claimedBy.get(hash);
      if ((owner !== undefined && owner !== id) || (other !== undefined && other !== entry.index)) {
        const i = identifierIndex(entry.resource, hash);
        conflicts.push(
          issue(
            "conflict",
            other !== undefined && owner === undefined
              ? "Another entry of this Bundle registers the same member identifier"
              : "A member with this identifier is already registered",
            `${entry.at}.identifier[${i}]`,
          ),
        );
      }
      claimedBy.set(hash, entry.index);
    });
    if (conflicts.length) {
      p.refusal = { status: 409, issues: conflicts };
      continue;
    }
    p.write = {
      type: entry.type,
      id,
      version,
      lastUpdated: opts.lastUpdated,
      identifiers,
      previousIdentifiers,
      body: {
        ...entry.resource,
        id,
        meta: {
          ...(entry.resource.meta as Json | undefined),
          versionId: String(version),
          lastUpdated: opts.lastUpdated,
        },
      },
    };
    if (entry.fullUrl) fullUrls.set(entry.fullUrl, p);
  }

  // References: bundle-local ones become `Type/id`; registered Patients must exist.
  const inBundle = new Set(
    planned
      .map((p) => p.write ?? p.existing)
      .filter((w): w is PlannedWrite | Head => w !== undefined)
      .map((w) => `${w.type}/${w.id}`),
  );
  const mustExist = new Map<string, string[]>();
  for (const p of planned) {
    if (!p.write) continue;
    const issues: Issue[] = [];
    for (const { path, holder } of references(p.write.body, p.entry.at)) {
      const ref = holder.reference as string;
      if (ref.startsWith("urn:uuid:")) {
        const target = fullUrls.get(ref);
        const resolved = target?.write ?? target?.existing;
        if (!target)
          issues.push(issue("invalid", "The reference names no entry of this Bundle", path));
        else if (!resolved) issues.push(issue("invalid", "The referenced entry was refused", path));
        else holder.reference = `${resolved.type}/${resolved.id}`;
      } else if (/^Patient\/[^/]+$/.test(ref) && !inBundle.has(ref)) {
        const id = ref.slice(8);
        if (!ID.test(id)) {
          issues.push(
            issue(
              "invalid",
              "The referenced Patient is not registered for this organisation",
              path,
            ),
          );
          continue;
        }
        mustExist.set(id, [...(mustExist.get(id) ?? []), path]);
      }
    }
    if (issues.length) {
      p.refusal = { status: 422, issues };
      p.write = undefined;
    }
  }
  // In a transaction, the first refusal answers for all: nothing is written.
  if (opts.transaction && planned.some((p) => p.refusal)) mustExist.clear();
  return { planned, mustExist };
}

function identifierIndex(resource: Json, hash: string): number {
  const list = (resource.identifier as Json[]) ?? [];
  return Math.max(
    0,
    list.findIndex(
      (i) =>
        typeof i?.value === "string" &&
        identifierHash(typeof i.system === "string" ? i.system : undefined, i.value) === hash,
    ),
  );
}

/** Turns a refused transaction's failed actions into the answer of the entries at fault. */
export function refusalsOf(
  failed: ActionRole[],
  planned: Planned[],
  mustExist: Map<string, string[]>,
): { retry: boolean; idempotency: boolean; refusals: Map<number, Refusal> } {
  const writes = planned.filter((p) => p.write);
  const refusals = new Map<number, Refusal>();
  let retry = false;
  let idempotency = false;
  for (const role of failed) {
    if (role.kind === "idempotency") {
      idempotency = true;
    } else if (role.kind === "txn") {
      // A transaction id is fresh per attempt: only a replay of this very call collides.
      retry = true;
    } else if (role.kind === "exists") {
      for (const path of mustExist.get(role.patient) ?? []) {
        const index = planned.findIndex((p) => p.write && path.startsWith(`${p.entry.at}.`));
        const prior = refusals.get(index)?.issues ?? [];
        refusals.set(index, {
          status: 422,
          issues: [
            ...prior,
            issue(
              "invalid",
              "The referenced Patient is not registered for this organisation",
              path,
            ),
          ],
        });
      }
    } else {
      const p = writes[role.write];
      if (role.kind === "claim" && p.entry.ifNoneExist === undefined) {
        const i = identifierIndex(p.entry.resource, role.hash);
        refusals.set(p.entry.index, {
          status: 409,
          issues: [
            issue(
              "conflict",
              "A member with this identifier is already registered",
              `${p.entry.at}.identifier[${i}]`,
            ),
          ],
        });
      } else {
        // Another writer got there first (a version, an id, a conditional
        // create's identifier): read again and plan anew.
        retry = true;
      }
    }
  }
  return { retry, idempotency, refusals };
}
