import * as path from "node:path";
import { freePort } from "./moto";
import { type PyEvent, spawnPython } from "./python";

/**
 * The local Glue: local/python/glue_worker.py runs the real job scripts on one
 * warm local Spark session against moto's S3. This side starts it and speaks
 * its two calls (StartJobRun, GetJobRun).
 */

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
  await worker.waitFor("listening", 30_000);
  const url = `http://127.0.0.1:${port}`;
  const sparkReady = worker.waitFor("spark-ready", 180_000);
  sparkReady.catch(() => undefined); // a stop before Spark is up is not an error of its own
  const call = async <T>(method: string, route: string, body?: unknown): Promise<T> => {
    const res = await fetch(`${url}${route}`, {
      method,
      headers: body ? { "Content-Type": "application/json" } : {},
      body: body ? JSON.stringify(body) : undefined,
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
    stop: worker.stop,
  };
}
