import { type ChildProcess, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import * as readline from "node:readline";

/**
 * The local stack's Python processes (moto, the local Glue): started from the
 * project's .venv in their own process group, followed through the JSON lines
 * they print, and stopped as a group (Spark's JVM included). Each also stops
 * itself when this process dies (local/python/supervise.py), so an `npm start`
 * ended by any signal leaves no orphan.
 */

const ROOT = path.join(__dirname, "..");
export const PYTHON = path.join(ROOT, ".venv", "bin", "python");
const LOGS = path.join(ROOT, ".local", "logs");

export type PyEvent = { event: string } & Record<string, unknown>;

export interface PyProcess {
  proc: ChildProcess;
  /** Resolves with the first event of that name; rejects if the process exits first. */
  waitFor(event: string, timeoutMs: number): Promise<PyEvent>;
  onEvent(listener: (e: PyEvent) => void): void;
  /** Where its stderr goes. */
  logFile: string;
  stop(): Promise<void>;
}

const running = new Set<ChildProcess>();

/** Signals a detached child's whole process group (it and what it started). */
export function killGroup(proc: ChildProcess, signal: NodeJS.Signals) {
  try {
    if (proc.pid) process.kill(-proc.pid, signal);
  } catch {
    // already gone
  }
}

// Synchronous last resort when this process exits without stopping them.
process.on("exit", () => {
  for (const proc of running) killGroup(proc, "SIGKILL");
});

export function spawnPython(
  name: string,
  script: string,
  args: string[],
  env: Record<string, string> = {},
): PyProcess {
  if (!fs.existsSync(PYTHON)) {
    throw new Error(`${PYTHON} is missing: run 'npm run setup' to create the Python environment`);
  }
  fs.mkdirSync(LOGS, { recursive: true });
  const logFile = path.join(LOGS, `${name}.log`);
  const log = fs.openSync(logFile, "w");
  const proc = spawn(PYTHON, [path.join(ROOT, "local", "python", script), ...args], {
    cwd: ROOT,
    detached: true,
    stdio: ["ignore", "pipe", log],
    env: { ...process.env, PYTHONUNBUFFERED: "1", ...env },
  });
  fs.closeSync(log);
  running.add(proc);
  const events: PyEvent[] = [];
  const listeners: ((e: PyEvent) => void)[] = [];
  const exited = new Promise<number | null>((resolve) =>
    proc.once("exit", (code) => {
      running.delete(proc);
      resolve(code);
    }),
  );
  readline.createInterface({ input: proc.stdout as NodeJS.ReadableStream }).on("line", (line) => {
    let e: PyEvent;
    try {
      e = JSON.parse(line) as PyEvent;
    } catch {
      return; // a library's stray print
    }
    events.push(e);
    for (const l of listeners) l(e);
  });
  const tail = () =>
    fs.readFileSync(logFile, "utf8").trim().split("\n").slice(-5).join("\n").slice(0, 2000);
  return {
    proc,
    logFile,
    onEvent: (l) => listeners.push(l),
    waitFor(event, timeoutMs) {
      const seen = events.find((e) => e.event === event);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`${name} did not report '${event}' within ${timeoutMs} ms`)),
          timeoutMs,
        );
        listeners.push((e) => {
          if (e.event !== event) return;
          clearTimeout(timer);
          resolve(e);
        });
        exited.then((code) => {
          clearTimeout(timer);
          reject(new Error(`${name} exited (${code}) before '${event}'; ${logFile}:\n${tail()}`));
        });
      });
    },
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      killGroup(proc, "SIGTERM");
      const timer = setTimeout(() => killGroup(proc, "SIGKILL"), 5000);
      await exited;
      clearTimeout(timer);
      // Spark's JVM is in the same group; make sure nothing of it stays.
      killGroup(proc, "SIGKILL");
    },
  };
}
