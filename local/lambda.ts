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

/**
 * A function error as Lambda reports it: `Runtime.ExitError` when the runtime
 * died (an uncaught exception or unhandled rejection), `Sandbox.Timedout`
 * past the function timeout, else the name of the error the handler threw.
 */
export class FunctionError extends Error {
  constructor(name: string, message: string) {
    super(message);
    this.name = name;
  }
}

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

/** One execution environment: a worker thread that has run the bundle's init. */
interface Environment {
  worker: Worker;
  pending: Map<string, Pending>;
  /** Crashed, timed out or stopped: never given another invocation. */
  dead: boolean;
}

export async function startLambda(o: {
  functionName: string;
  /** The bundle (index.js) to load. */
  file: string;
  environment: Record<string, string>;
  timeoutSeconds: number;
  memoryMb: number;
}): Promise<LocalLambda> {
  let stopped = false;

  /** Starts a worker and runs the bundle's init (its module scope) once. */
  async function coldStart(): Promise<Environment> {
    const worker = new Worker(BOOTSTRAP, {
      eval: true,
      env: { ...process.env, ...o.environment },
      workerData: { file: o.file, functionName: o.functionName, memoryMb: o.memoryMb },
    });
    const env: Environment = { worker, pending: new Map(), dead: false };
    await new Promise<void>((resolve, reject) => {
      worker.once("message", () => resolve());
      worker.once("error", (e) =>
        reject(
          new FunctionError(
            "Runtime.InitError",
            `${o.functionName} failed to initialise: ${e.message}`,
          ),
        ),
      );
      worker.once("exit", () =>
        reject(new FunctionError("Runtime.InitError", `${o.functionName} exited during init`)),
      );
    });
    worker.on("message", (m: { id: string; result?: unknown; error?: FunctionError }) => {
      const p = env.pending.get(m.id);
      if (!p) return;
      env.pending.delete(m.id);
      clearTimeout(p.timer);
      if (m.error) p.reject(new FunctionError(m.error.name, m.error.message));
      else p.resolve(m.result);
    });
    // The runtime died (an uncaught exception or unhandled rejection in the
    // handler's code): as in Lambda, the invocations it held fail with
    // Runtime.ExitError and the next one gets a fresh environment.
    const died = () => retire(env, "Runtime.ExitError", "The function's runtime exited");
    worker.on("error", died);
    worker.on("exit", died);
    return env;
  }

  let current: Promise<Environment> | undefined = coldStart();
  // Init failing at start-up fails the start, as a function that cannot load.
  await current;

  function retire(env: Environment, name: string, message: string) {
    env.dead = true;
    for (const p of env.pending.values()) {
      clearTimeout(p.timer);
      p.reject(new FunctionError(name, message));
    }
    env.pending.clear();
  }

  /** The live environment, or a fresh one after a crash, a timeout or a failed init. */
  async function environment(): Promise<Environment> {
    for (;;) {
      if (!current) {
        const starting = coldStart();
        current = starting;
        // A failed init fails this invocation; the next one tries again, as in Lambda.
        starting.catch(() => {
          if (current === starting) current = undefined;
        });
      }
      const held = current;
      const env = await held;
      if (!env.dead) return env;
      if (current === held) current = undefined;
    }
  }

  return {
    async invoke<E, R>(event: E, requestId = randomUUID()): Promise<R> {
      if (stopped)
        throw new FunctionError("ResourceNotFoundException", `${o.functionName} is stopped`);
      const env = await environment();
      const id = randomUUID();
      return new Promise<R>((resolve, reject) => {
        // Past the function timeout Lambda fails the invocation and discards
        // the environment (https://docs.aws.amazon.com/lambda/latest/dg/configuration-timeout.html).
        const timer = setTimeout(() => {
          retire(env, "Sandbox.Timedout", `Task timed out after ${o.timeoutSeconds} seconds`);
          void env.worker.terminate();
        }, o.timeoutSeconds * 1000);
        env.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
        env.worker.postMessage({
          id,
          event,
          requestId,
          deadline: Date.now() + o.timeoutSeconds * 1000,
        });
      });
    },
    async stop() {
      stopped = true;
      const env = await current?.catch(() => undefined);
      current = undefined;
      if (env) {
        env.worker.removeAllListeners("exit");
        retire(env, "Runtime.ExitError", `${o.functionName} is stopping`);
        await env.worker.terminate();
      }
    },
  };
}
