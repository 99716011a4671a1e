import { randomUUID } from "node:crypto";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import "./node22";
import { StateMachine } from "aws-local-stepfunctions";
import { GlueApiError, HEARTBEAT_TIMEOUT_MS, type JobRun, type LocalGlue } from "./glue";

/**
 * Step Functions on this machine: the calls the app makes (StartExecution,
 * DescribeExecution) plus ListExecutions and StopExecution, over the AWS JSON
 * 1.0 protocol so the app's SFNClient talks to it unchanged
 * (AWS_ENDPOINT_URL_SFN). Executions run the same definition Pulumi deploys
 * in aws-local-stepfunctions; `glue:startJobRun.sync` tasks start runs on the
 * local Glue and wait for them, `events:putEvents` tasks are recorded.
 *
 * A Glue task also watches the local Glue worker's heartbeat, as a task's
 * HeartbeatSeconds would: a worker silent for `heartbeatTimeoutMs` (stopped
 * with SIGSTOP, hung, killed) fails the task with States.HeartbeatTimeout
 * (which the definition's Catch turns into MigrationFailed). Bound: the
 * timeout plus one poll and one call timeout (CALL_TIMEOUT_MS) after the
 * worker's last line, about 12.5 s with the defaults.
 */

const GLUE_SYNC = "arn:aws:states:::glue:startJobRun.sync";
const PUT_EVENTS = "arn:aws:states:::events:putEvents";
const LAMBDA_INVOKE = "arn:aws:states:::lambda:invoke";

export interface PublishedEvent {
  time: string;
  Source: string;
  DetailType: string;
  EventBusName: string;
  Detail: Record<string, unknown>;
}

type Status = "RUNNING" | "SUCCEEDED" | "FAILED" | "ABORTED";

interface Execution {
  executionArn: string;
  stateMachineArn: string;
  name: string;
  status: Status;
  startDate: number;
  stopDate?: number;
  input: string;
  output?: string;
  error?: string;
  cause?: string;
  /**
   * The largest state a state entered with or left with, in bytes of JSON
   * (Step Functions refuses one over 256 KiB with States.DataLimitExceeded).
   */
  largestStateBytes: number;
  abort?: () => void;
}

class ApiError extends Error {
  constructor(
    readonly type: string,
    message: string,
  ) {
    super(message);
  }
}

export interface LocalStepFunctions {
  url: string;
  events: PublishedEvent[];
  /** Resolves when the execution leaves RUNNING. */
  settled(executionArn: string): Promise<Execution>;
  stop(): Promise<void>;
}

export async function startStepFunctions(o: {
  stateMachineArn: string;
  definition: object;
  glue: LocalGlue;
  /** Local functions by ARN, for `lambda:invoke` tasks. @default {} */
  functions?: Record<string, (payload: unknown) => Promise<unknown>>;
  /** How often a .sync task polls the Glue run. @default 250 */
  pollMs?: number;
  /** A Glue worker silent this long fails its task. @default HEARTBEAT_TIMEOUT_MS (10 s) */
  heartbeatTimeoutMs?: number;
  onEvent?: (e: PublishedEvent) => void;
  onExecution?: (e: Execution) => void;
  port?: number;
}): Promise<LocalStepFunctions> {
  const executions = new Map<string, Execution>();
  const waiters = new Map<string, ((e: Execution) => void)[]>();
  const events: PublishedEvent[] = [];
  const heartbeatTimeoutMs = o.heartbeatTimeoutMs ?? HEARTBEAT_TIMEOUT_MS;
  const machine = new StateMachine(o.definition as never);
  const prefix = `${o.stateMachineArn.replace(":stateMachine:", ":execution:")}:`;

  const glueSync =
    (execution: Execution) =>
    async (params: { JobName: string; Arguments?: Record<string, string> }): Promise<JobRun> => {
      const checkHeartbeat = () => {
        if (o.glue.heartbeatAgeMs() > heartbeatTimeoutMs) {
          throw named(
            "States.HeartbeatTimeout",
            `The local Glue worker sent no heartbeat for ${(heartbeatTimeoutMs / 1000).toFixed(1)} s`,
          );
        }
      };
      checkHeartbeat();
      let id: string;
      try {
        id = await o.glue.startJobRun(params.JobName, params.Arguments ?? {});
      } catch (error) {
        // Service errors surface as Glue.<ExceptionName>, as in the Glue integration.
        if (error instanceof GlueApiError) throw named(`Glue.${error.name}`, error.message);
        checkHeartbeat();
        throw error;
      }
      for (;;) {
        let run: JobRun | undefined;
        try {
          run = await o.glue.getJobRun(id);
        } catch (error) {
          // A call that timed out or failed: the heartbeat decides whether the worker is gone.
          if (error instanceof GlueApiError) throw named(`Glue.${error.name}`, error.message);
        }
        if (run?.JobRunState === "SUCCEEDED") return run;
        if (run?.JobRunState === "FAILED") throw named("States.TaskFailed", JSON.stringify(run));
        // The execution was stopped: nobody awaits this task any more.
        if (execution.status !== "RUNNING") return run as JobRun;
        checkHeartbeat();
        await new Promise((r) => setTimeout(r, o.pollMs ?? 250));
      }
    };

  // The Lambda integration's answer: the function's result as Payload; a
  // function error fails the task with the function's error type as its name
  // (https://docs.aws.amazon.com/step-functions/latest/dg/connect-lambda.html).
  const lambdaInvoke = async (params: { FunctionName: string; Payload?: unknown }) => {
    const fn = o.functions?.[params.FunctionName];
    if (!fn) throw named("Lambda.ResourceNotFoundException", "Function not found");
    try {
      return { StatusCode: 200, Payload: await fn(params.Payload ?? {}) };
    } catch (error) {
      const e = error as Error;
      throw named(
        e.name || "Error",
        JSON.stringify({ errorType: e.name, errorMessage: e.message }),
      );
    }
  };

  const putEvents = async (params: { Entries: Omit<PublishedEvent, "time">[] }) => {
    for (const entry of params.Entries) {
      const event = { time: new Date().toISOString(), ...entry };
      events.push(event);
      o.onEvent?.(event);
    }
    return { Entries: params.Entries.map(() => ({ EventId: randomUUID() })), FailedEntryCount: 0 };
  };

  function finish(execution: Execution, patch: Partial<Execution>) {
    if (execution.status !== "RUNNING") return;
    Object.assign(execution, patch, { stopDate: Date.now() / 1000 });
    o.onExecution?.(execution);
    for (const w of waiters.get(execution.executionArn) ?? []) w(execution);
    waiters.delete(execution.executionArn);
  }

  function run(execution: Execution) {
    const handlers: Record<string, unknown> = {};
    // Task states at any depth: a Map's item processor has its own States.
    type StateDef = { Resource?: string; ItemProcessor?: Machine; Iterator?: Machine };
    type Machine = { States: Record<string, StateDef> };
    const visit = (machine: Machine) => {
      for (const [state, def] of Object.entries(machine.States)) {
        if (def.Resource === GLUE_SYNC) handlers[state] = glueSync(execution);
        if (def.Resource === PUT_EVENTS) handlers[state] = putEvents;
        if (def.Resource === LAMBDA_INVOKE) handlers[state] = lambdaInvoke;
        const inner = def.ItemProcessor ?? def.Iterator;
        if (inner) visit(inner);
      }
    };
    visit(o.definition as Machine);
    const input = JSON.parse(execution.input);
    const started = machine.run(input, {
      context: {
        Execution: { Id: execution.executionArn, Name: execution.name, Input: input },
        StateMachine: { Id: o.stateMachineArn, Name: o.stateMachineArn.split(":").pop() },
      },
      overrides: { taskResourceLocalHandlers: handlers as never },
    } as never);
    execution.abort = started.abort;
    (async () => {
      for await (const event of started.eventLogs) {
        const state = (event as { state?: { input?: unknown; output?: unknown } }).state;
        for (const payload of [state?.input, state?.output]) {
          if (payload === undefined) continue;
          const bytes = Buffer.byteLength(JSON.stringify(payload));
          execution.largestStateBytes = Math.max(execution.largestStateBytes, bytes);
        }
      }
    })().catch(() => undefined);
    started.result.then(
      (output) => finish(execution, { status: "SUCCEEDED", output: JSON.stringify(output) }),
      (error: Error & { cause?: Error }) => {
        if (error.name === "ExecutionAbortedError") return;
        const cause = error.cause ?? error;
        finish(execution, { status: "FAILED", error: cause.name, cause: cause.message });
      },
    );
  }

  /** ListExecutions' item; DescribeExecution adds input, output and error. */
  const summary = (e: Execution) => ({
    executionArn: e.executionArn,
    stateMachineArn: e.stateMachineArn,
    name: e.name,
    status: e.status,
    startDate: e.startDate,
    ...(e.stopDate ? { stopDate: e.stopDate } : {}),
  });
  const describe = (e: Execution) => ({
    ...summary(e),
    input: e.input,
    ...(e.output !== undefined ? { output: e.output } : {}),
    ...(e.error !== undefined ? { error: e.error, cause: e.cause } : {}),
  });

  function lookup(arn: unknown): Execution {
    const execution = executions.get(String(arn));
    if (!execution)
      throw new ApiError("ExecutionDoesNotExist", `Execution Does Not Exist: '${arn}'`);
    return execution;
  }

  const operations: Record<string, (req: Record<string, unknown>) => unknown> = {
    StartExecution(req) {
      if (req.stateMachineArn !== o.stateMachineArn) {
        throw new ApiError(
          "StateMachineDoesNotExist",
          `State Machine Does Not Exist: '${req.stateMachineArn}'`,
        );
      }
      const name = String(req.name ?? randomUUID());
      if (!/^[A-Za-z0-9_-]{1,80}$/.test(name)) {
        throw new ApiError("InvalidName", `Invalid Name: '${name}'`);
      }
      const input = req.input === undefined ? "{}" : String(req.input);
      try {
        JSON.parse(input);
      } catch {
        throw new ApiError("InvalidExecutionInput", "Invalid State Machine Execution Input");
      }
      const executionArn = `${prefix}${name}`;
      const existing = executions.get(executionArn);
      if (existing) {
        // Standard workflows: the same name and input while running answers
        // as the first call did; anything else is a conflict.
        // https://docs.aws.amazon.com/step-functions/latest/apireference/API_StartExecution.html
        if (existing.status === "RUNNING" && existing.input === input) {
          return { executionArn, startDate: existing.startDate };
        }
        throw new ApiError("ExecutionAlreadyExists", `Execution Already Exists: '${executionArn}'`);
      }
      const execution: Execution = {
        executionArn,
        stateMachineArn: o.stateMachineArn,
        name,
        status: "RUNNING",
        startDate: Date.now() / 1000,
        input,
        largestStateBytes: 0,
      };
      executions.set(executionArn, execution);
      o.onExecution?.(execution);
      run(execution);
      return { executionArn, startDate: execution.startDate };
    },
    DescribeExecution: (req) => describe(lookup(req.executionArn)),
    ListExecutions(req) {
      const list = [...executions.values()]
        .filter((e) => !req.statusFilter || e.status === req.statusFilter)
        .sort((a, b) => b.startDate - a.startDate);
      return {
        executions: list.map(summary),
      };
    },
    StopExecution(req) {
      const execution = lookup(req.executionArn);
      execution.abort?.();
      finish(execution, {
        status: "ABORTED",
        ...(req.error !== undefined ? { error: String(req.error) } : {}),
        ...(req.cause !== undefined ? { cause: String(req.cause) } : {}),
      });
      return { stopDate: execution.stopDate };
    },
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const target = String(req.headers["x-amz-target"] ?? "");
      const op = target.startsWith("AWSStepFunctions.") ? operations[target.slice(17)] : undefined;
      let status = 200;
      let body: unknown;
      try {
        if (!op) throw new ApiError("UnknownOperationException", `Unknown operation ${target}`);
        body = op(JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}"));
      } catch (error) {
        status = 400;
        body =
          error instanceof ApiError
            ? { __type: error.type, message: error.message }
            : { __type: "ValidationException", message: (error as Error).message };
      }
      res.writeHead(status, { "Content-Type": "application/x-amz-json-1.0" });
      res.end(JSON.stringify(body));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(o.port ?? 0, "127.0.0.1", resolve);
  });

  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    events,
    settled(arn) {
      const execution = lookup(arn);
      if (execution.status !== "RUNNING") return Promise.resolve(execution);
      return new Promise((resolve) => {
        waiters.set(arn, [...(waiters.get(arn) ?? []), resolve]);
      });
    },
    async stop() {
      for (const e of executions.values()) {
        e.abort?.();
        finish(e, { status: "ABORTED" });
      }
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

function named(name: string, message: string): Error {
  const error = new Error(message);
  error.name = name;
  return error;
}
