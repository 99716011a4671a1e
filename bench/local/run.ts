import { type ChildProcess, spawn } from "node:child_process";
import * as os from "node:os";
import * as path from "node:path";
import { freePort, stopMoto } from "../../local/moto";
import { fetchToken, LOCAL_CLIENTS } from "../../local/okta";
import { alive, processes, tree } from "../../local/processTree";
import { killGroup } from "../../local/python";
import { startStack } from "../../local/stack";
import { median, table } from "../lib";

/**
 * bench/local: the local stack (npm start) under load. The stack runs in this
 * process (the emulator on its event loop, the Lambda bundles as the stack
 * hosts them); autocannon runs in its own process so the load generator does
 * not share the server's event loop. Load runs start once the stack is warm
 * and its child processes are quiet. Measures POST /health with the authorizer
 * cache on and off and POST /members with one Patient (each 201), then the
 * wall time from starting local/start.ts to its ready line, median of 3.
 * All traffic is to 127.0.0.1; every run is bounded and stops by itself.
 * Targets: POST /health (cache on) >= 1,000 req/s and p99 < 50 ms;
 * start to ready < 15 s.
 */

const ROOT = path.join(__dirname, "..", "..");
const AUTOCANNON = path.join(ROOT, "node_modules", ".bin", "autocannon");
const TSX = path.join(ROOT, "node_modules", ".bin", "tsx");
const CONNECTIONS = 10;
const WARMUP_S = 2;
const DURATION_S = 10;
/** autocannon's own per-request timeout (s). */
const REQUEST_TIMEOUT_S = 10;
/** Pause after a stack's last load run before stopping it. */
const DRAIN_MS = 3_000;
const START_RUNS = 3;
/** Longest wait for a stack's background Spark warm-up before the load runs. */
const SPARK_TIMEOUT_MS = 180_000;
/** Then up to this long for the stack's child processes to drop below QUIET_PERCENT of a core. */
const QUIET_TIMEOUT_MS = 60_000;
const QUIET_PERCENT = 20;
/** Give up on local/start.ts after this long without its ready line. */
const START_TIMEOUT_MS = 180_000;
const READY_LINE = "HOTH local stack ready";

const client = LOCAL_CLIENTS[0];
const SCOPES = "system/Patient.cruds system/Task.cruds";
const patient = {
  resourceType: "Patient",
  identifier: [{ system: "https://example.org/mrn", value: "BENCH-1" }],
  name: [{ family: "Bench", given: ["Lee"] }],
  gender: "other",
  birthDate: "1990-01-01",
};

/** The part of autocannon's --json result this benchmark reads. */
interface LoadResult {
  requests: { mean: number; total: number };
  latency: { p50: number; p99: number; mean: number };
  errors: number;
  timeouts: number;
  non2xx: number;
  statusCodeStats: Record<string, { count: number }>;
}

interface Row {
  what: string;
  result: LoadResult;
}

const problems: string[] = [];
/** The environment before startStack adds moto's and the handlers' settings. */
const ENV = { ...process.env };
/** The 1-minute load average: on a shared 2-core machine, context for every figure. */
const load = () => os.loadavg()[0].toFixed(2);
const sec = (msecs: number) => `${(msecs / 1000).toFixed(2)} s`;
/** autocannon's latency histogram has 1 ms resolution. */
const lat = (n: number) => (n < 1 ? "< 1 ms" : `${n} ms`);

/** Waits for a child to exit, killing its process group after `timeoutMs`. */
function exited(child: ChildProcess, timeoutMs: number): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve(child.exitCode);
    const timer = setTimeout(() => killGroup(child, "SIGKILL"), timeoutMs);
    child.once("exit", (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
}

/** CPU ticks (1/100 s on Linux) used so far by this process's live descendants. */
function descendantTicks(all: NonNullable<ReturnType<typeof processes>>): number {
  const mine = tree(process.pid, all);
  mine.delete(process.pid);
  return all.filter((p) => mine.has(p.pid)).reduce((n, p) => n + p.ticks, 0);
}

/** SIGKILLs processes this benchmark started (directly or through local/start.ts). */
function killPids(pids: number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // gone meanwhile
    }
  }
}

/** One bounded autocannon run in its own process; returns its JSON result. */
async function autocannon(
  url: string,
  token: string,
  seconds: number,
  body?: unknown,
): Promise<LoadResult> {
  const args = [
    "--json",
    "-c",
    String(CONNECTIONS),
    "-d",
    String(seconds),
    "-t",
    String(REQUEST_TIMEOUT_S),
    "-m",
    "POST",
    "-H",
    `Authorization=Bearer ${token}`,
    "-H",
    `X-Client-Id=${client.clientId}`,
  ];
  if (body !== undefined) {
    args.push("-H", "Content-Type=application/fhir+json", "-b", JSON.stringify(body));
  }
  args.push(url);
  const child = spawn(AUTOCANNON, args, {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  let out = "";
  let err = "";
  child.stdout?.on("data", (c: Buffer) => {
    out += c.toString("utf8");
  });
  child.stderr?.on("data", (c: Buffer) => {
    err += c.toString("utf8");
  });
  // autocannon stops itself after `seconds`; this only guards against a hang.
  const code = await exited(child, (seconds + REQUEST_TIMEOUT_S + 20) * 1000);
  const line = out.trim().split("\n").pop() ?? "";
  if (code !== 0 || !line.startsWith("{")) {
    throw new Error(`autocannon against ${url} failed (exit ${code}): ${err.trim() || out.trim()}`);
  }
  return JSON.parse(line) as LoadResult;
}

/** A warm-up run (discarded), then the measured run; flags errors and unexpected statuses. */
async function measure(
  what: string,
  url: string,
  token: string,
  expect: number,
  body?: unknown,
): Promise<Row> {
  const warm = await autocannon(url, token, WARMUP_S, body);
  const result = await autocannon(url, token, DURATION_S, body);
  for (const [phase, r] of [
    ["warm-up", warm],
    ["measured run", result],
  ] as const) {
    const codes = Object.entries(r.statusCodeStats)
      .map(([c, { count }]) => `${c}: ${count}`)
      .join(", ");
    const unexpected = Object.entries(r.statusCodeStats)
      .filter(([c]) => Number(c) !== expect)
      .reduce((n, [, { count }]) => n + count, 0);
    if (r.errors || r.timeouts) {
      problems.push(
        `${what} (${phase}): ${r.errors} transport errors (${r.timeouts} timeouts); status codes ${codes || "none"}`,
      );
    }
    if (unexpected || r.non2xx) {
      problems.push(
        `${what} (${phase}): ${unexpected} responses other than ${expect} (${r.non2xx} non-2xx); status codes ${codes}`,
      );
    }
  }
  console.log(
    `${what}: ${result.requests.mean.toFixed(0)} req/s, p50 ${lat(result.latency.p50)}, p99 ${lat(result.latency.p99)}, status codes ${JSON.stringify(
      Object.fromEntries(Object.entries(result.statusCodeStats).map(([c, s]) => [c, s.count])),
    )}`,
  );
  return { what, result };
}

/**
 * Waits (bounded) for the stack's background Spark warm-up, if it has one, and
 * then for the processes the stack started (moto, Glue's Python and JVM) to go
 * quiet: the JVM keeps a core busy for a while after it reports ready, and on
 * 2 cores that would halve what the first load run gets.
 */
async function settle(stack: object): Promise<void> {
  const started = Date.now();
  const ready = (stack as { sparkReady?: Promise<unknown> }).sparkReady;
  if (ready) {
    let timer: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([
      ready.then(
        () => "warm",
        (e: Error) => `failed: ${e.message.split("\n")[0]}`,
      ),
      new Promise<string>((r) => {
        timer = setTimeout(
          () => r(`not warm after ${SPARK_TIMEOUT_MS / 1000} s`),
          SPARK_TIMEOUT_MS,
        );
      }),
    ]);
    clearTimeout(timer);
    if (outcome !== "warm") {
      problems.push(`the stack's Spark warm-up ${outcome}; load runs went ahead regardless`);
    }
  }
  let busy = Number.NaN;
  const deadline = Date.now() + QUIET_TIMEOUT_MS;
  for (let before = processes(); before && Date.now() < deadline; ) {
    await new Promise((r) => setTimeout(r, 1000));
    const after = processes();
    if (!after) break;
    busy = descendantTicks(after) - descendantTicks(before); // % of one core over 1 s
    if (busy < QUIET_PERCENT) break;
    before = after;
  }
  const state = Number.isNaN(busy) ? "" : `; its child processes at ${busy}% of a core`;
  console.log(`(stack settled ${sec(Date.now() - started)} after starting${state})`);
  if (busy >= QUIET_PERCENT) {
    problems.push(
      `the stack's child processes still used ${busy}% of a core after ${QUIET_TIMEOUT_MS / 1000} s; load runs went ahead regardless`,
    );
  }
}

/** Runs `fn` against a fresh in-process stack and always stops it. */
async function withStack<T>(
  authorizerCacheTtlSeconds: number | undefined,
  fn: (apiUrl: string, token: string) => Promise<T>,
): Promise<T> {
  let stack: Awaited<ReturnType<typeof startStack>>;
  try {
    stack = await startStack({ stack: "dev", authorizerCacheTtlSeconds });
  } catch (error) {
    stopMoto();
    throw new Error(`the local stack did not start: ${(error as Error).message}`);
  }
  try {
    await settle(stack);
    const token = await fetchToken(stack.tokenUrl, client, SCOPES);
    // One request first, so a broken setup fails here with its answer, not as a load run.
    const probe = await fetch(`${stack.apiUrl}/health`, {
      method: "POST",
      headers: { Authorization: `Bearer ${token}`, "X-Client-Id": client.clientId },
    });
    if (probe.status !== 200) {
      throw new Error(`POST /health answered ${probe.status}: ${await probe.text()}`);
    }
    return await fn(stack.apiUrl, token);
  } finally {
    // autocannon drops its connections at the deadline, but the handlers of the
    // requests then in flight run on; let them finish before moto goes away.
    await new Promise((r) => setTimeout(r, DRAIN_MS));
    await stack.stop();
  }
}

/** A progress line of local/start.ts and when (ms after spawning it) it appeared. */
interface Step {
  step: string;
  at: number;
}

/** Wall time (ms) from spawning local/start.ts to its ready line, or why it did not get there. */
async function startToReady(): Promise<
  { ms: number; reported?: string; leftovers: number[]; steps: Step[] } | { error: string }
> {
  const [apiPort, oktaPort] = [await freePort(), await freePort()];
  const started = process.hrtime.bigint();
  const child = spawn(TSX, [path.join(ROOT, "local", "start.ts")], {
    cwd: ROOT,
    env: { ...ENV, HOTH_API_PORT: String(apiPort), HOTH_OKTA_PORT: String(oktaPort) },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  let out = "";
  let err = "";
  const steps: Step[] = [];
  child.stderr?.on("data", (c: Buffer) => {
    err += c.toString("utf8");
  });
  const ready = await new Promise<number | undefined>((resolve) => {
    const timer = setTimeout(() => resolve(undefined), START_TIMEOUT_MS);
    child.stdout?.on("data", (c: Buffer) => {
      const at = Number(process.hrtime.bigint() - started) / 1e6;
      out += c.toString("utf8");
      // Progress lines ("hoth: <step> (n s)") mark the phases of the start.
      for (const m of c.toString("utf8").matchAll(/^hoth: (.+?)(?: \([\d.]+ s\))?$/gm)) {
        steps.push({ step: m[1], at });
      }
      if (out.includes(READY_LINE)) {
        clearTimeout(timer);
        resolve(Number(process.hrtime.bigint() - started) / 1e6);
      }
    });
    child.once("exit", () => {
      clearTimeout(timer);
      resolve(undefined);
    });
  });
  if (ready === undefined) {
    killPids(alive(child.pid ? tree(child.pid) : new Set()));
    killGroup(child, "SIGKILL");
    await exited(child, 5_000);
    const tail = `${out}\n${err}`.trim().split("\n").slice(-5).join("\n");
    return {
      error: `local/start.ts did not print "${READY_LINE}" within ${START_TIMEOUT_MS / 1000} s (exit ${child.exitCode ?? child.signalCode}):\n${tail}`,
    };
  }
  // Everything start.ts started (moto, Glue's Python and JVM, perhaps in process
  // groups of their own) gets a few seconds to go after Ctrl-C; what is still
  // alive then was not stopped by it, and is killed here by pid.
  const spawned = child.pid ? tree(child.pid) : new Set<number>();
  child.kill("SIGINT");
  const code = await exited(child, 20_000);
  const deadline = Date.now() + 10_000;
  while (alive(spawned).length && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
  }
  const leftovers = alive(spawned);
  killPids(leftovers);
  const reported = new RegExp(`${READY_LINE} in ([\\d.]+ s)`).exec(out)?.[1];
  if (code !== 0) {
    const tail = err.trim().split("\n").filter(Boolean).slice(-4).join("\n!!!     ");
    problems.push(
      `local/start.ts exited ${code ?? child.signalCode} after SIGINT; its stderr ends:\n!!!     ${tail}`,
    );
  }
  return { ms: ready, reported, leftovers, steps };
}

async function main() {
  console.log(
    `bench/local on Node ${process.version}, ${os.cpus().length} cores; autocannon in its own process, ${CONNECTIONS} connections, ${WARMUP_S} s warm-up (discarded) + ${DURATION_S} s measured per run; load average ${load()}\n`,
  );
  const rows: Row[] = [];
  await withStack(undefined, async (apiUrl, token) => {
    rows.push(await measure("POST /health, authorizer cache on", `${apiUrl}/health`, token, 200));
    rows.push(
      await measure("POST /members, one Patient", `${apiUrl}/members`, token, 201, patient),
    );
  });
  await withStack(0, async (apiUrl, token) => {
    rows.push(await measure("POST /health, authorizer cache off", `${apiUrl}/health`, token, 200));
  });

  const starts: number[] = [];
  const runs: { ms: number; steps: Step[] }[] = [];
  const reported: string[] = [];
  let startError: string | undefined;
  for (let i = 0; i < START_RUNS && !startError; i++) {
    const before = load();
    const r = await startToReady();
    if ("error" in r) {
      startError = r.error;
      break;
    }
    starts.push(r.ms);
    runs.push(r);
    if (r.reported) reported.push(r.reported);
    if (r.leftovers.length) {
      problems.push(
        `local/start.ts left ${r.leftovers.length} process(es) running 10 s after SIGINT (killed: ${r.leftovers.join(", ")})`,
      );
    }
    console.log(
      `start to ready, run ${i + 1}: ${sec(r.ms)} (the stack reports ${r.reported ?? "?"}; load average before ${before})`,
    );
  }

  console.log();
  table(
    ["load run", "req/s (mean)", "p50", "p99", "requests", "non-2xx", "errors"],
    rows.map(({ what, result: r }) => [
      what,
      r.requests.mean.toFixed(0),
      lat(r.latency.p50),
      lat(r.latency.p99),
      r.requests.total,
      r.non2xx,
      r.errors,
    ]),
  );
  console.log();
  const health = rows[0].result;
  table(
    ["figure", "value", "target"],
    [
      [
        "POST /health (cache on) throughput",
        `${health.requests.mean.toFixed(0)} req/s`,
        ">= 1,000 req/s",
      ],
      ["POST /health (cache on) p99", lat(health.latency.p99), "< 50 ms"],
      [
        `npm start to ready, median of ${starts.length}`,
        starts.length ? sec(median(starts)) : "n/a",
        "< 15 s",
      ],
    ],
  );
  // Where the start goes: each phase of the median run, up to the ready line.
  const mid = runs.find((r) => r.ms === median(starts));
  const phases = mid?.steps.filter((st) => st.at <= mid.ms) ?? [];
  if (mid && phases.length) {
    console.log();
    const bounds = [{ step: "tsx + Node start, tool and port checks", at: 0 }, ...phases];
    table(
      ["start phase (median run)", "took"],
      bounds.map((b, i) => [b.step, sec((bounds[i + 1]?.at ?? mid.ms) - b.at)]),
    );
  }
  if (reported.length)
    console.log(`\n(the stack's own "ready in" figures: ${reported.join(", ")})`);
  if (startError) {
    console.error(`\n!!! start to ready NOT MEASURED: ${startError}`);
    process.exitCode = 1;
  }

  if (problems.length) {
    console.error("\n!!! bench/local: some runs did not go cleanly; their figures are suspect:");
    for (const p of problems) console.error(`!!!   ${p}`);
    process.exitCode = 1;
  }
}

main().catch((e) => {
  console.error(e);
  stopMoto();
  process.exit(1);
});
