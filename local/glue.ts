import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { freePort } from "./moto";
import { type PyEvent, spawnPython } from "./python";

/**
 * The local Glue: local/python/glue_worker.py runs the real job scripts on one
 * warm local Spark session against moto's S3. This side starts it and speaks
 * its two calls (StartJobRun, GetJobRun), each bounded by CALL_TIMEOUT_MS,
 * follows its heartbeat (a line every second), and removes its scratch
 * directory (extracts, untokenized FHIR) however the process ends.
 */

/** A worker silent this long has stopped responding (SIGSTOP, hung): its tasks fail. */
export const HEARTBEAT_TIMEOUT_MS = 10_000;
/** Each call to the worker gets this long to answer. */
export const CALL_TIMEOUT_MS = 2_000;

const ROOT = path.join(__dirname, "..");

export interface LocalJob {
  script: string;
  defaultArguments: Record<string, string>;
}

export interface JobRun {
  Id: string;
  JobName: string;
  JobRunState: "WAITING" | "RUNNING" | "SUCCEEDED" | "FAILED";
  ErrorMessage?: string;
  ExecutionTime: number;
}

export interface LocalGlue {
  url: string;
  /** Resolves when Spark is up and warm. */
  sparkReady: Promise<PyEvent>;
  onEvent(listener: (e: PyEvent) => void): void;
  startJobRun(jobName: string, args: Record<string, string>): Promise<string>;
  getJobRun(id: string): Promise<JobRun>;
  /** The worker's process id (its process group holds Spark's JVM too). */
  pid: number | undefined;
  /** Milliseconds since the worker last proved it runs (a heartbeat or any other line). */
  heartbeatAgeMs(): number;
  logFile: string;
  stop(): Promise<void>;
}

/** Glue's API errors carry their type like the AWS SDK names them. */
export class GlueApiError extends Error {
  constructor(type: string, message: string) {
    super(message);
    this.name = type;
  }
}

export async function startGlue(o: {
  jobs: Record<string, LocalJob>;
  /** The AWS emulator the jobs read and write. */
  awsEndpoint: string;
}): Promise<LocalGlue> {
  const port = await freePort();
  const worker = spawnPython(
    "glue",
    "glue_worker.py",
    ["--port", String(port), "--jobs", JSON.stringify(o.jobs)],
    {
      PYTHONPATH: path.join(ROOT, "glue"),
      AWS_ENDPOINT_URL: o.awsEndpoint,
      AWS_ACCESS_KEY_ID: "testing",
      AWS_SECRET_ACCESS_KEY: "testing",
      AWS_DEFAULT_REGION: "us-east-1",
      // Spark binds to loopback only, never to this machine's other addresses.
      SPARK_LOCAL_IP: "127.0.0.1",
      SPARK_LOCAL_HOSTNAME: "localhost",
    },
  );
  let lastSign = Date.now();
  worker.onEvent(() => {
    lastSign = Date.now();
  });
  const listening = await worker.waitFor("listening", 30_000);
  // Whatever ends the process (SIGKILL included), its scratch data goes with it.
  const scratch = String(listening.scratch ?? "");
  if (
    path.dirname(scratch) === os.tmpdir() &&
    path.basename(scratch).startsWith("hoth-local-glue-")
  ) {
    worker.proc.once("exit", () => fs.rmSync(scratch, { recursive: true, force: true }));
  }
  const url = `http://127.0.0.1:${port}`;
  const sparkReady = worker.waitFor("spark-ready", 180_000);
  sparkReady.catch(() => undefined); // a stop before Spark is up is not an error of its own
  const call = async <T>(method: string, route: string, body?: unknown): Promise<T> => {
    const res = await fetch(`${url}${route}`, {
      method,
      headers: body ? { "Content-Type": "application/json" } : {},
      body: body ? JSON.stringify(body) : undefined,
      signal: AbortSignal.timeout(CALL_TIMEOUT_MS),
    });
    const json = (await res.json()) as T & { __type?: string; message?: string };
    if (!res.ok)
      throw new GlueApiError(json.__type ?? "InternalServiceException", json.message ?? route);
    return json;
  };
  return {
    url,
    sparkReady,
    onEvent: worker.onEvent,
    logFile: worker.logFile,
    startJobRun: async (JobName, Arguments) =>
      (await call<{ JobRunId: string }>("POST", "/runs", { JobName, Arguments })).JobRunId,
    getJobRun: async (id) => (await call<{ JobRun: JobRun }>("GET", `/runs/${id}`)).JobRun,
    pid: worker.proc.pid,
    heartbeatAgeMs: () => Date.now() - lastSign,
    stop: worker.stop,
  };
}
