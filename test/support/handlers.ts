import * as fs from "node:fs";
import * as path from "node:path";
import type { APIGatewayProxyEvent, Context } from "aws-lambda";

const ROOT = path.join(__dirname, "..", "..");

/** A fixture under test/fixtures/, parsed. */
export function fixture<T = unknown>(name: string): T {
  return JSON.parse(fs.readFileSync(path.join(ROOT, "test", "fixtures", name), "utf8")) as T;
}

/** The API Gateway REST proxy event in test/fixtures/events/<name>.json, with overrides. */
export function proxyEvent(
  name: string,
  overrides: Partial<APIGatewayProxyEvent> = {},
): APIGatewayProxyEvent {
  return { ...fixture<APIGatewayProxyEvent>(`events/${name}.json`), ...overrides };
}

export const lambdaContext = (requestId = "lambda-req-1"): Context =>
  ({
    awsRequestId: requestId,
    functionName: "hoth-test-fn",
    functionVersion: "$LATEST",
    invokedFunctionArn: "arn:aws:lambda:us-east-1:123456789012:function:hoth-test-fn",
    memoryLimitInMB: "512",
    logGroupName: "/aws/lambda/hoth-test-fn",
    logStreamName: "stream",
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => 10_000,
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  }) as Context;

/**
 * Imports a handler module afresh (its module-scope settings re-read) with
 * the given environment.
 */
export function loadHandler<T>(relativePath: string, env: Record<string, string>): T {
  Object.assign(process.env, env);
  const target = require.resolve(path.join(ROOT, relativePath));
  for (const key of Object.keys(require.cache)) {
    if (
      key.startsWith(path.join(ROOT, "handlers")) ||
      key.startsWith(path.join(ROOT, "components"))
    ) {
      delete require.cache[key];
    }
  }
  return require(target) as T;
}

/** Captures what the code under test writes to stdout and stderr (structured logs). */
export async function captureOutput<T>(
  fn: () => Promise<T>,
): Promise<{ result: T; output: string }> {
  const chunks: string[] = [];
  const out = process.stdout.write.bind(process.stdout);
  const err = process.stderr.write.bind(process.stderr);
  const grab = (chunk: unknown) => {
    chunks.push(String(chunk));
    return true;
  };
  process.stdout.write = grab as typeof process.stdout.write;
  process.stderr.write = grab as typeof process.stderr.write;
  try {
    const result = await fn();
    return { result, output: chunks.join("") };
  } finally {
    process.stdout.write = out;
    process.stderr.write = err;
  }
}
