import { randomUUID } from "node:crypto";
import { Worker } from "node:worker_threads";

/**
 * A Lambda function on this machine: the bundle Pulumi ships, loaded in a
 * worker thread of its own with its own environment variables (as each
 * Lambda function has), so two functions and the process hosting them share
 * no module state or settings. Invocations are messages; an error thrown by
 * the handler comes back with its name and message, as Lambda reports a
 * function error.
 */

export interface LocalLambda {
  invoke<E, R>(event: E, requestId?: string): Promise<R>;
  stop(): Promise<void>;
}

/** The runtime inside the worker: require the bundle once, then serve invocations. */
const BOOTSTRAP = `
const { parentPort, workerData } = require("node:worker_threads");
const { handler } = require(workerData.file);
parentPort.postMessage({ ready: true });
parentPort.on("message", async ({ id, event, requestId, deadline }) => {
  const context = {
    awsRequestId: requestId,
    functionName: workerData.functionName,
    functionVersion: "$LATEST",
    memoryLimitInMB: String(workerData.memoryMb),
    invokedFunctionArn: "arn:aws:lambda:us-east-1:000000000000:function:" + workerData.functionName,
    logGroupName: "/aws/lambda/" + workerData.functionName,
    logStreamName: "local",
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
  };
  try {
    parentPort.postMessage({ id, result: await handler(event, context) });
  } catch (error) {
    parentPort.postMessage({ id, error: { name: error?.name ?? "Error", message: String(error?.message ?? error) } });
  }
});
`;

export class FunctionError extends Error {
  constructor(name: string, message: string) {
    super(message);
    this.name = name;
  }
}

export async function startLambda(o: {
  functionName: string;
  /** The bundle (index.js) to load. */
  file: string;
  environment: Record<string, string>;
  timeoutSeconds: number;
  memoryMb: number;
}): Promise<LocalLambda> {
  const worker = new Worker(BOOTSTRAP, {
    eval: true,
    env: { ...process.env, ...o.environment },
    workerData: { file: o.file, functionName: o.functionName, memoryMb: o.memoryMb },
  });
  const pending = new Map<string, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let failed: Error | undefined;
  // Init: the bundle's module scope runs once, before any invocation.
  await new Promise<void>((resolve, reject) => {
    worker.once("message", () => resolve());
    worker.once("error", (e) =>
      reject(new Error(`${o.functionName} failed to initialise: ${e.message}`)),
    );
  });
  worker.on("message", (m: { id: string; result?: unknown; error?: FunctionError }) => {
    const p = pending.get(m.id);
    pending.delete(m.id);
    if (m.error) p?.reject(new FunctionError(m.error.name, m.error.message));
    else p?.resolve(m.result);
  });
  worker.on("error", (e) => {
    // A bundle that cannot load (init error) or crashes fails every invocation.
    failed = e;
    for (const p of pending.values()) p.reject(e);
    pending.clear();
  });
  return {
    invoke<E, R>(event: E, requestId = randomUUID()): Promise<R> {
      if (failed) return Promise.reject(failed);
      const id = randomUUID();
      return new Promise<R>((resolve, reject) => {
        pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
        worker.postMessage({
          id,
          event,
          requestId,
          deadline: Date.now() + o.timeoutSeconds * 1000,
        });
      });
    },
    async stop() {
      await worker.terminate();
    },
  };
}
