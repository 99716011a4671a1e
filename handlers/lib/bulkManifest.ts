import * as z from "zod/mini";

/**
 * The Bulk Data complete-status manifest
 * (https://hl7.org/fhir/uv/bulkdata/export.html, "Response - Complete
 * Status"), parsed and checked before a single file is fetched: a manifest
 * that would send the access token somewhere it should not go, or that
 * cannot be downloaded faithfully, is refused with the fields at fault.
 */

/** A FHIR instant: to the second at least, with a time zone. */
const INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;
const RESOURCE_TYPE = /^[A-Z][A-Za-z]{1,63}$/;

const fileItem = z.object({
  type: z.string().check(z.regex(RESOURCE_TYPE)),
  url: z.string().check(z.minLength(1)),
  count: z.optional(z.int().check(z.nonnegative())),
});

const manifestSchema = z.object({
  transactionTime: z.string().check(z.regex(INSTANT)),
  request: z.string().check(z.minLength(1)),
  requiresAccessToken: z.boolean(),
  outputOrganizedBy: z.optional(z.string()),
  output: z.array(fileItem),
  error: z.array(fileItem),
  deleted: z.optional(z.array(fileItem)),
  link: z.optional(z.array(z.object({ relation: z.string(), url: z.string() }))),
});

export interface ManifestFile {
  type: string;
  url: string;
  count?: number;
}

export interface ExportManifest {
  transactionTime: string;
  request: string;
  requiresAccessToken: boolean;
  output: ManifestFile[];
  error: ManifestFile[];
  deleted: ManifestFile[];
  /** The next manifest page (Bulk Data 3.0 `link` with relation `next`), when there is one. */
  next?: string;
}

/** The manifest cannot be used; `fields` are paths into it (never its values). */
export class ManifestError extends Error {
  constructor(readonly fields: string[]) {
    super(`The export manifest is invalid: ${fields.join("; ")}`);
    this.name = "ManifestError";
  }
}

export interface ManifestRules {
  /**
   * Origins (`https://host[:port]`) that may receive the access token. When
   * `requiresAccessToken` is true, every file must be on one of them: a
   * manifest naming another host would otherwise get it our token.
   */
  tokenOrigins: string[];
}

function httpUrl(value: string): URL | undefined {
  try {
    const u = new URL(value);
    return u.protocol === "https:" || u.protocol === "http:" ? u : undefined;
  } catch {
    return undefined;
  }
}

/** Parses and checks a manifest, returning every problem at once. */
export function parseManifest(json: unknown, rules: ManifestRules): ExportManifest {
  const parsed = manifestSchema.safeParse(json);
  if (!parsed.success) {
    const fields = parsed.error.issues.map(
      (i) => `${i.path.join(".") || "(root)"}: ${reason(i, valueAt(json, i.path))}`,
    );
    throw new ManifestError([...new Set(fields)]);
  }
  const m = parsed.data;
  const problems: string[] = [];
  const lists = { output: m.output, error: m.error, deleted: m.deleted ?? [] };
  for (const [list, items] of Object.entries(lists)) {
    items.forEach((item, i) => {
      const url = httpUrl(item.url);
      if (!url) {
        problems.push(`${list}.${i}.url: not an absolute http(s) URL`);
      } else if (m.requiresAccessToken && !rules.tokenOrigins.includes(url.origin)) {
        problems.push(
          `${list}.${i}.url: requires the access token but is not on an allowed origin (${rules.tokenOrigins.join(", ")})`,
        );
      }
      if (list === "error" && item.type !== "OperationOutcome") {
        problems.push(`error.${i}.type: must be OperationOutcome`);
      }
      if (list === "deleted" && item.type !== "Bundle") {
        problems.push(`deleted.${i}.type: must be Bundle`);
      }
    });
  }
  const next = m.link?.find((l) => l.relation === "next")?.url;
  if (next !== undefined && !httpUrl(next)) problems.push("link.next: not an absolute http(s) URL");
  if (problems.length) throw new ManifestError(problems);
  return {
    transactionTime: m.transactionTime,
    request: m.request,
    requiresAccessToken: m.requiresAccessToken,
    output: m.output.map(file),
    error: m.error.map(file),
    deleted: (m.deleted ?? []).map(file),
    ...(next !== undefined ? { next } : {}),
  };
}

const file = (f: ManifestFile): ManifestFile =>
  f.count === undefined
    ? { type: f.type, url: f.url }
    : { type: f.type, url: f.url, count: f.count };

function valueAt(json: unknown, at: PropertyKey[]): unknown {
  let v = json;
  for (const k of at) {
    if (v === null || typeof v !== "object") return undefined;
    v = (v as Record<PropertyKey, unknown>)[k];
  }
  return v;
}

function reason(issue: z.core.$ZodIssue, value: unknown): string {
  switch (issue.code) {
    case "invalid_type":
      return value === undefined ? "required" : `must be ${issue.expected}`;
    case "invalid_format":
      return "has the wrong format";
    case "too_small":
      return issue.origin === "string" ? "must not be empty" : "must not be negative";
    default:
      return "is invalid";
  }
}
