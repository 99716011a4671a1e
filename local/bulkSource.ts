import { randomBytes } from "node:crypto";
import { createReadStream, createWriteStream, existsSync, promises as fsp } from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import * as readline from "node:readline";
import { JwtVerifier } from "aws-jwt-verify";
import { JWT_BEARER, MAX_ASSERTION_LIFETIME_SECONDS } from "../handlers/lib/smartBackend";

/**
 * A local FHIR Bulk Data source (https://hl7.org/fhir/uv/bulkdata/export.html)
 * behind a SMART Backend Services token endpoint
 * (https://hl7.org/fhir/smart-app-launch/backend-services.html), for the
 * local stack, the tests and the benchmark. It serves NDJSON files from a
 * directory (`<Type>.<anything>.ndjson`) as asynchronous system- and
 * Group-level exports, and can be told to misbehave (faults) the ways real
 * sources do. Client assertions are verified with aws-jwt-verify against the
 * client's registered JWKS (URL or inline keys).
 */

export interface RegisteredClient {
  clientId: string;
  /** Where the client publishes its JWKS (HOTH: `/.well-known/jwks.json`), or the keys inline. */
  jwksUrl?: string;
  jwks?: { keys: object[] };
  /** Scopes the client may be granted, e.g. `system/*.read`. */
  scopes: string[];
}

export interface Faults {
  /** The next kick-off answers 429 with Retry-After: 0. */
  kickoff429Once?: boolean;
  /** Every kick-off answers this status with an OperationOutcome. */
  kickoffStatus?: number;
  /** The next status request answers 503 with a `transient` OperationOutcome. */
  status503Once?: boolean;
  /** Status requests answer 500 with an `exception` OperationOutcome: the job failed. */
  statusFatal?: boolean;
  /** Status requests answer 202 (in progress) this many more times. */
  extraPolls?: number;
  /** The manifest lists an error file of OperationOutcomes. */
  errorFile?: boolean;
  /** The manifest's count of the first output file is one more than its lines. */
  wrongCount?: boolean;
  /** The next file download answers 500 without a body. */
  file500Once?: boolean;
  /** Tokens are issued already expired. */
  expiredTokens?: boolean;
}

export interface BulkSourceOptions {
  clients: RegisteredClient[];
  /** NDJSON directory; the Synthea fixture when present, else generated data (see generateNdjson). */
  dataDir?: string;
  /** @default 0 (a free port) */
  port?: number;
  /** Group id to member Patient ids. */
  groups?: Record<string, string[]>;
  /** Status requests answered 202 before the manifest. @default 1 */
  progressPolls?: number;
  /** @default 1 */
  retryAfterSeconds?: number;
  /** @default 300 */
  tokenLifetimeSeconds?: number;
  /** @default true */
  requiresAccessToken?: boolean;
  /**
   * Output files per manifest page: more are listed on further pages linked
   * with `link` relation `next` (Bulk Data 3.0). @default all on one page
   */
  manifestPageSize?: number;
  /** See Serving. @default whole files */
  linesPerFile?: number;
}

/** What the source exports; read at each kick-off, so it may change between exports. */
export interface Serving {
  /** NDJSON directory (`<Type>.<anything>.ndjson`). */
  dataDir: string;
  /**
   * Each file exported as parts of at most this many resources
   * (`<name>.<nnnn>.ndjson`), as sources that cap their files' size do:
   * a few resources make an export of many files. @default whole files
   */
  linesPerFile?: number;
}

export interface BulkSource {
  /** FHIR base URL. */
  baseUrl: string;
  tokenUrl: string;
  /** The directory served at start. */
  dataDir: string;
  serving: Serving;
  faults: Faults;
  /** Counts of what the server saw, for tests. */
  stats: {
    tokens: number;
    kickoffs: number;
    statusPolls: number;
    downloads: number;
    deletes: number;
  };
  /** Revokes every access token issued so far (the next use answers 401). */
  revokeTokens(): void;
  stop(): Promise<void>;
}

interface Job {
  id: string;
  request: string;
  transactionTime: string;
  pollsLeft: number;
  ready: Promise<OutputFile[]>;
  dir: string;
  deleted: boolean;
}

interface OutputFile {
  name: string;
  type: string;
  path: string;
  count: number;
}

const FIXTURE = path.join(__dirname, "..", "..", "shared", "fixtures", "synthea-10");
const INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;
const TYPE = /^[A-Z][A-Za-z]{1,63}$/;
const NDJSON_FORMATS = ["application/fhir+ndjson", "application/ndjson", "ndjson"];

const outcome = (code: string, diagnostics: string, severity = "error") => ({
  resourceType: "OperationOutcome",
  issue: [{ severity, code, diagnostics }],
});

function send(
  res: http.ServerResponse,
  status: number,
  body?: unknown,
  headers: Record<string, string> = {},
  type = "application/fhir+json",
): void {
  const text = body === undefined ? "" : JSON.stringify(body);
  res.writeHead(status, {
    ...(text ? { "Content-Type": type } : {}),
    "Cache-Control": "no-store",
    ...headers,
  });
  res.end(text);
}

async function readBody(req: http.IncomingMessage, limit = 64 * 1024): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > limit) throw new Error("body too large");
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks).toString("utf8");
}

/** Counts lines of an NDJSON file without holding it. */
async function countLines(file: string): Promise<number> {
  let n = 0;
  const rl = readline.createInterface({ input: createReadStream(file), crlfDelay: Infinity });
  for await (const line of rl) if (line.trim()) n++;
  return n;
}

/** Whether `scopes` grant a system-level read of `type` (SMART v1 `.read` or v2 `.r`/`.rs`). */
function grants(scopes: string[], type: string): boolean {
  return scopes.some((s) => {
    const m = /^system\/([A-Za-z*]+)\.(read|\*|[cruds]+)$/.exec(s);
    return (
      !!m &&
      (m[1] === "*" || m[1] === type) &&
      (m[2] === "read" || m[2] === "*" || m[2].includes("r"))
    );
  });
}

export async function startBulkSource(options: BulkSourceOptions): Promise<BulkSource> {
  const dataDir = options.dataDir ?? (existsSync(FIXTURE) ? FIXTURE : await generateNdjson());
  const jobsRoot = await fsp.mkdtemp(path.join(os.tmpdir(), "hoth-bulk-source-"));
  const serving: Serving = {
    dataDir,
    ...(options.linesPerFile ? { linesPerFile: options.linesPerFile } : {}),
  };
  const listFiles = async (dir: string) =>
    (await fsp.readdir(dir))
      .map((name) => ({ name, type: /^([A-Z][A-Za-z]+)\.(?:[^/]*\.)?ndjson$/.exec(name)?.[1] }))
      .filter((f): f is { name: string; type: string } => !!f.type)
      .map((f) => ({ ...f, path: path.join(dir, f.name) }));
  const lineCounts = new Map<string, Promise<number>>();
  const counted = (file: string) => {
    if (!lineCounts.has(file)) lineCounts.set(file, countLines(file));
    return lineCounts.get(file) as Promise<number>;
  };

  const faults: Faults = {};
  const stats = { tokens: 0, kickoffs: 0, statusPolls: 0, downloads: 0, deletes: 0 };
  const tokens = new Map<string, { clientId: string; scopes: string[]; expiresAt: number }>();
  const seenJti = new Map<string, number>();
  const jobs = new Map<string, Job>();
  const lifetime = options.tokenLifetimeSeconds ?? 300;
  const requiresAccessToken = options.requiresAccessToken ?? true;
  let origin = "";
  const tokenPath = "/auth/token";

  async function clientKeys(client: RegisteredClient): Promise<{ keys: object[] }> {
    if (client.jwks) return client.jwks;
    if (!client.jwksUrl) throw new Error("no keys registered");
    const res = await fetch(client.jwksUrl, { signal: AbortSignal.timeout(5000) });
    if (!res.ok) throw new Error("JWKS unavailable");
    return (await res.json()) as { keys: object[] };
  }

  async function token(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const refuse = (error: string, status = 400) =>
      send(res, status, { error }, {}, "application/json");
    const type = (req.headers["content-type"] ?? "").split(";")[0].trim();
    if (type !== "application/x-www-form-urlencoded") return refuse("invalid_request");
    const form = new URLSearchParams(await readBody(req));
    if (form.get("grant_type") !== "client_credentials") return refuse("unsupported_grant_type");
    const assertion = form.get("client_assertion");
    if (form.get("client_assertion_type") !== JWT_BEARER || !assertion) {
      return refuse("invalid_request");
    }
    let claims: { iss?: unknown; sub?: unknown; exp?: unknown; jti?: unknown };
    let header: { alg?: unknown };
    try {
      const [h, p] = assertion.split(".");
      header = JSON.parse(Buffer.from(h, "base64url").toString("utf8"));
      claims = JSON.parse(Buffer.from(p, "base64url").toString("utf8"));
    } catch {
      return refuse("invalid_client");
    }
    const client = options.clients.find((c) => c.clientId === claims.iss);
    if (!client || claims.sub !== claims.iss) return refuse("invalid_client");
    if (header.alg !== "RS384" && header.alg !== "ES384") return refuse("invalid_client");
    try {
      const verifier = JwtVerifier.create({
        issuer: client.clientId,
        audience: `${origin}${tokenPath}`,
        jwksUri: client.jwksUrl ?? `${origin}/unused-jwks`,
      });
      verifier.cacheJwks((await clientKeys(client)) as Parameters<typeof verifier.cacheJwks>[0]);
      verifier.verifySync(assertion);
    } catch {
      return refuse("invalid_client");
    }
    const now = Math.floor(Date.now() / 1000);
    if (typeof claims.exp !== "number" || claims.exp > now + MAX_ASSERTION_LIFETIME_SECONDS) {
      return refuse("invalid_client");
    }
    if (typeof claims.jti !== "string" || !claims.jti) return refuse("invalid_client");
    for (const [j, exp] of seenJti) if (exp < now) seenJti.delete(j);
    if (seenJti.has(claims.jti)) return refuse("invalid_client");
    seenJti.set(claims.jti, claims.exp);
    const asked = (form.get("scope") ?? "").split(" ").filter(Boolean);
    if (!asked.length || asked.some((s) => !client.scopes.includes(s)))
      return refuse("invalid_scope");
    const accessToken = randomBytes(24).toString("base64url");
    const expiresIn = faults.expiredTokens ? 0 : lifetime;
    tokens.set(accessToken, {
      clientId: client.clientId,
      scopes: asked,
      expiresAt: Date.now() + expiresIn * 1000,
    });
    stats.tokens++;
    send(
      res,
      200,
      {
        access_token: accessToken,
        token_type: "bearer",
        expires_in: Math.max(expiresIn, 1),
        scope: asked.join(" "),
      },
      {},
      "application/json",
    );
  }

  /** The caller's grant, or a 401 already sent. */
  function bearer(req: http.IncomingMessage, res: http.ServerResponse) {
    const m = /^Bearer (\S+)$/.exec(req.headers.authorization ?? "");
    const grant = m ? tokens.get(m[1]) : undefined;
    if (!grant || grant.expiresAt <= Date.now()) {
      send(res, 401, outcome("login", "A valid access token is required"), {
        "WWW-Authenticate": 'Bearer error="invalid_token"',
      });
      return undefined;
    }
    return grant;
  }

  async function buildOutputs(
    job: Job,
    files: { name: string; type: string; path: string }[],
    types: string[] | undefined,
    since: string | undefined,
    members?: Set<string>,
  ): Promise<OutputFile[]> {
    const out: OutputFile[] = [];
    const sinceMs = since ? Date.parse(since) : undefined;
    const perFile = serving.linesPerFile;
    for (const f of files) {
      if (types && !types.includes(f.type)) continue;
      if (sinceMs === undefined && !members && !perFile) {
        out.push({ name: f.name, type: f.type, path: f.path, count: await counted(f.path) });
        continue;
      }
      // The file's resources that are exported, written to the job's
      // directory: as one file, or as parts of `perFile` resources.
      let w: ReturnType<typeof createWriteStream> | undefined;
      let current: OutputFile | undefined;
      let part = 0;
      const close = async () => {
        if (!w || !current) return;
        const stream = w;
        await new Promise<void>((r, j) => stream.end((e?: Error | null) => (e ? j(e) : r())));
        out.push(current);
        w = undefined;
        current = undefined;
      };
      const rl = readline.createInterface({ input: createReadStream(f.path), crlfDelay: Infinity });
      for await (const line of rl) {
        if (!line.trim()) continue;
        const resource = JSON.parse(line) as { id?: string; meta?: { lastUpdated?: string } };
        if (members && !inGroup(f.type, resource, line, members)) continue;
        const updated = resource.meta?.lastUpdated;
        // No meta.lastUpdated: the change time is unknown, so the resource is included.
        if (sinceMs !== undefined && updated && Date.parse(updated) <= sinceMs) continue;
        if (current && perFile && current.count >= perFile) await close();
        if (!current) {
          const name = perFile
            ? `${f.name.replace(/\.ndjson$/, "")}.${String(part++).padStart(4, "0")}.ndjson`
            : f.name;
          current = { name, type: f.type, path: path.join(job.dir, name), count: 0 };
          w = createWriteStream(current.path);
        }
        const stream = w as ReturnType<typeof createWriteStream>;
        if (!stream.write(`${line}\n`)) {
          await new Promise<void>((r) => stream.once("drain", () => r()));
        }
        current.count++;
      }
      await close();
    }
    return out;
  }

  /** A member Patient, or a resource referring to one (its Patient compartment, roughly). */
  function inGroup(type: string, resource: { id?: string }, line: string, members: Set<string>) {
    if (type === "Patient") return !!resource.id && members.has(resource.id);
    for (const m of line.matchAll(/"reference"\s*:\s*"Patient\/([^"]+)"/g)) {
      if (members.has(m[1])) return true;
    }
    return false;
  }

  async function kickoff(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    url: URL,
    groupId?: string,
  ) {
    const grant = bearer(req, res);
    if (!grant) return;
    stats.kickoffs++;
    if (faults.kickoff429Once) {
      faults.kickoff429Once = false;
      return send(res, 429, outcome("throttled", "Too many exports"), { "Retry-After": "0" });
    }
    if (faults.kickoffStatus) {
      return send(res, faults.kickoffStatus, outcome("forbidden", "This export is not allowed"));
    }
    if (
      !(req.headers.accept ?? "")
        .split(",")
        .some((a) => a.trim().startsWith("application/fhir+json"))
    ) {
      return send(res, 400, outcome("invalid", "Accept must be application/fhir+json"));
    }
    if (!/\brespond-async\b/.test(String(req.headers.prefer ?? ""))) {
      return send(res, 400, outcome("invalid", "Prefer: respond-async is required"));
    }
    for (const key of url.searchParams.keys()) {
      if (!["_type", "_since", "_outputFormat"].includes(key)) {
        return send(res, 400, outcome("not-supported", `Parameter ${key} is not supported`));
      }
    }
    const format = url.searchParams.get("_outputFormat");
    if (format !== null && !NDJSON_FORMATS.includes(format)) {
      return send(res, 400, outcome("not-supported", "_outputFormat must be NDJSON"));
    }
    const since = url.searchParams.get("_since") ?? undefined;
    if (since !== undefined && (!INSTANT.test(since) || Number.isNaN(Date.parse(since)))) {
      return send(res, 400, outcome("invalid", "_since must be a FHIR instant"));
    }
    const typeParam = url.searchParams.get("_type");
    const types = typeParam?.split(",").map((t) => t.trim());
    if (types?.some((t) => !TYPE.test(t))) {
      return send(
        res,
        400,
        outcome("invalid", "_type must be a comma-separated list of resource types"),
      );
    }
    const files = await listFiles(serving.dataDir);
    const wanted = types ?? [...new Set(files.map((f) => f.type))];
    const denied = wanted.filter((t) => !grants(grant.scopes, t));
    if (denied.length) {
      return send(
        res,
        403,
        outcome("forbidden", `The token's scopes do not cover ${denied.join(", ")}`),
      );
    }
    let members: Set<string> | undefined;
    if (groupId !== undefined) {
      const group = options.groups?.[groupId];
      if (!group) return send(res, 404, outcome("not-found", `Group/${groupId} is not known`));
      members = new Set(group);
    }
    const id = randomBytes(12).toString("hex");
    const dir = path.join(jobsRoot, id);
    await fsp.mkdir(dir);
    const job: Job = {
      id,
      request: `${origin}${req.url}`,
      transactionTime: new Date().toISOString(),
      pollsLeft: options.progressPolls ?? 1,
      dir,
      deleted: false,
      ready: Promise.resolve([]),
    };
    job.ready = buildOutputs(job, files, types, since, members);
    job.ready.catch(() => undefined);
    jobs.set(id, job);
    send(res, 202, undefined, { "Content-Location": `${origin}/fhir/$export-status/${id}` });
  }

  async function status(req: http.IncomingMessage, res: http.ServerResponse, id: string, page = 0) {
    if (!bearer(req, res)) return;
    const job = jobs.get(id);
    if (!job || job.deleted) return send(res, 404, outcome("not-found", "No such export"));
    stats.statusPolls++;
    if (faults.status503Once) {
      faults.status503Once = false;
      return send(res, 503, outcome("transient", "Busy, retry"), { "Retry-After": "0" });
    }
    if (faults.statusFatal) return send(res, 500, outcome("exception", "The export failed"));
    if (faults.extraPolls) {
      faults.extraPolls--;
      return send(res, 202, undefined, {
        "X-Progress": "slow",
        "Retry-After": String(options.retryAfterSeconds ?? 1),
      });
    }
    if (job.pollsLeft > 0 && page === 0) {
      job.pollsLeft--;
      return send(res, 202, undefined, {
        "X-Progress": `${Math.round(100 / (job.pollsLeft + 2))}% of resources written`,
        "Retry-After": String(options.retryAfterSeconds ?? 1),
      });
    }
    const outputs = await job.ready;
    const fileUrl = (name: string) => `${origin}/fhir/$export-files/${job.id}/${name}`;
    const error: { type: string; url: string }[] = [];
    if (faults.errorFile) {
      const name = "OperationOutcome.errors.ndjson";
      await fsp.writeFile(
        path.join(job.dir, name),
        `${JSON.stringify(outcome("processing", "Resource could not be exported"))}\n${JSON.stringify(outcome("too-costly", "Too many resources"))}\n`,
      );
      error.push({ type: "OperationOutcome", url: fileUrl(name) });
    }
    const size = options.manifestPageSize ?? Math.max(outputs.length, 1);
    const pages = Math.max(1, Math.ceil(outputs.length / size));
    if (!Number.isInteger(page) || page < 0 || page >= pages) {
      return send(res, 404, outcome("not-found", "No such manifest page"));
    }
    send(
      res,
      200,
      {
        transactionTime: job.transactionTime,
        request: job.request,
        requiresAccessToken,
        output: outputs.slice(page * size, (page + 1) * size).map((o, i) => ({
          type: o.type,
          url: fileUrl(o.name),
          count: o.count + (faults.wrongCount && page === 0 && i === 0 ? 1 : 0),
        })),
        error: page === 0 ? error : [],
        ...(page + 1 < pages
          ? {
              link: [
                {
                  relation: "next",
                  url: `${origin}/fhir/$export-status/${job.id}?page=${page + 1}`,
                },
              ],
            }
          : {}),
      },
      { Expires: new Date(Date.now() + 3600_000).toUTCString() },
      "application/json",
    );
  }

  async function download(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    id: string,
    name: string,
  ) {
    if (requiresAccessToken && !bearer(req, res)) return;
    const job = jobs.get(id);
    if (!job || job.deleted) return send(res, 404, outcome("not-found", "No such file"));
    const outputs = await job.ready;
    const file =
      outputs.find((o) => o.name === name)?.path ??
      (name === "OperationOutcome.errors.ndjson" ? path.join(job.dir, name) : undefined);
    if (!file || !existsSync(file)) return send(res, 404, outcome("not-found", "No such file"));
    stats.downloads++;
    if (faults.file500Once) {
      faults.file500Once = false;
      res.writeHead(500);
      return res.end();
    }
    res.writeHead(200, { "Content-Type": "application/fhir+ndjson" });
    const stream = createReadStream(file);
    stream.on("error", () => res.destroy());
    stream.pipe(res);
  }

  async function remove(req: http.IncomingMessage, res: http.ServerResponse, id: string) {
    if (!bearer(req, res)) return;
    const job = jobs.get(id);
    if (!job || job.deleted) return send(res, 404, outcome("not-found", "No such export"));
    stats.deletes++;
    job.deleted = true;
    await job.ready.catch(() => undefined);
    await fsp.rm(job.dir, { recursive: true, force: true });
    send(res, 202);
  }

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://local");
    const p = decodeURIComponent(url.pathname);
    const handle = async () => {
      if (p === tokenPath && req.method === "POST") return token(req, res);
      if (p === "/fhir/.well-known/smart-configuration" && req.method === "GET") {
        return send(
          res,
          200,
          {
            token_endpoint: `${origin}${tokenPath}`,
            grant_types_supported: ["client_credentials"],
            token_endpoint_auth_methods_supported: ["private_key_jwt"],
            token_endpoint_auth_signing_alg_values_supported: ["RS384", "ES384"],
            scopes_supported: ["system/*.read", "system/*.rs"],
            capabilities: ["client-confidential-asymmetric"],
          },
          {},
          "application/json",
        );
      }
      if (p === "/fhir/$export" && req.method === "GET") return kickoff(req, res, url);
      const group = /^\/fhir\/Group\/([^/]+)\/\$export$/.exec(p);
      if (group && req.method === "GET") return kickoff(req, res, url, group[1]);
      const st = /^\/fhir\/\$export-status\/([0-9a-f]+)$/.exec(p);
      if (st && req.method === "GET")
        return status(req, res, st[1], Number(url.searchParams.get("page") ?? 0));
      if (st && req.method === "DELETE") return remove(req, res, st[1]);
      const f = /^\/fhir\/\$export-files\/([0-9a-f]+)\/([A-Za-z0-9._-]+)$/.exec(p);
      if (f && req.method === "GET") return download(req, res, f[1], f[2]);
      send(res, 404, outcome("not-found", "Unknown endpoint"));
    };
    handle().catch(() => {
      if (!res.headersSent) send(res, 500, outcome("exception", "Internal error"));
      else res.destroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, "127.0.0.1", resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    baseUrl: `${origin}/fhir`,
    tokenUrl: `${origin}${tokenPath}`,
    dataDir,
    serving,
    faults,
    stats,
    revokeTokens: () => tokens.clear(),
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      await fsp.rm(jobsRoot, { recursive: true, force: true });
    },
  };
}

/**
 * Deterministic synthetic NDJSON (Patients and their Observations, with
 * `meta.lastUpdated` spread over 2024) in `dir` (a new temporary directory
 * by default). `resources` in all; one Patient per `perPatient` resources.
 */
export async function generateNdjson(
  opts: { dir?: string; resources?: number; perPatient?: number } = {},
): Promise<string> {
  const dir = opts.dir ?? (await fsp.mkdtemp(path.join(os.tmpdir(), "hoth-bulk-data-")));
  const total = opts.resources ?? 2000;
  const perPatient = opts.perPatient ?? 10;
  const patients = createWriteStream(path.join(dir, "Patient.000.ndjson"));
  const observations = createWriteStream(path.join(dir, "Observation.000.ndjson"));
  const write = async (w: ReturnType<typeof createWriteStream>, line: string) => {
    if (!w.write(line)) await new Promise<void>((r) => w.once("drain", () => r()));
  };
  const day = (i: number) => new Date(Date.UTC(2024, 0, 1) + (i % 366) * 86_400_000).toISOString();
  let written = 0;
  for (let p = 0; written < total; p++) {
    const id = `gen-${String(p).padStart(7, "0")}`;
    await write(
      patients,
      `${JSON.stringify({
        resourceType: "Patient",
        id,
        meta: { lastUpdated: day(p) },
        identifier: [{ system: "urn:hoth:generated", value: `G-${p}` }],
        name: [{ family: `Family${p % 997}`, given: [`Given${p % 101}`] }],
        gender: p % 2 ? "female" : "male",
        birthDate: `19${String(40 + (p % 60)).padStart(2, "0")}-0${1 + (p % 9)}-1${p % 9}`,
      })}\n`,
    );
    written++;
    for (let o = 1; o < perPatient && written < total; o++, written++) {
      await write(
        observations,
        `${JSON.stringify({
          resourceType: "Observation",
          id: `${id}-obs-${o}`,
          meta: { lastUpdated: day(p + o) },
          status: "final",
          code: { coding: [{ system: "http://loinc.org", code: "8867-4", display: "Heart rate" }] },
          subject: { reference: `Patient/${id}` },
          effectiveDateTime: day(p + o),
          valueQuantity: {
            value: 60 + ((p * 7 + o) % 40),
            unit: "/min",
            system: "http://unitsofmeasure.org",
            code: "/min",
          },
        })}\n`,
      );
    }
  }
  await Promise.all(
    [patients, observations].map(
      (w) => new Promise<void>((r, j) => w.end((e?: Error | null) => (e ? j(e) : r()))),
    ),
  );
  return dir;
}
