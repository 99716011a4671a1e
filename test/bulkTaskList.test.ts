import * as assert from "node:assert/strict";

import { NoSuchKey, type S3Client, S3ServiceException } from "@aws-sdk/client-s3";
import { RETRYABLE_BULK_ERRORS } from "../contracts/migrationDefinition";
import { isTransientAwsError, TransientAwsError } from "../handlers/lib/aws";
import {
  readTaskList,
  TaskListError,
  type TaskListStore,
  writeTaskList,
} from "../handlers/lib/bulkTaskList";

const PREFIX = "landing/acme/bulk/m-1";
const KEY = `${PREFIX}/tasks.json`;
const list = { transactionTime: "2026-01-01T00:00:00Z", tasks: [] };

/** A store whose S3 client fails every call with `error` (what the SDK throws once its attempts are spent). */
const failing = (error: unknown) => {
  const calls: string[] = [];
  const store: TaskListStore = {
    s3: {
      send: async (command: { constructor: { name: string } }) => {
        calls.push(command.constructor.name);
        throw error;
      },
    } as unknown as S3Client,
    bucket: "hoth-test-lake",
    kmsKeyArn: "arn:aws:kms:us-east-1:123456789012:key/k",
  };
  return { store, calls };
};

const serviceError = (name: string, status: number, fault: "client" | "server" = "client") =>
  new S3ServiceException({
    name,
    $fault: fault,
    $metadata: { httpStatusCode: status },
    message: "the service's own words",
  });

describe("the run's task list in S3: transient failures retried, permanent ones named", () => {
  const transient: [string, unknown][] = [
    ["SlowDown (503)", serviceError("SlowDown", 503, "server")],
    ["InternalError (500)", serviceError("InternalError", 500, "server")],
    ["KMS.ThrottlingException (400)", serviceError("KMS.ThrottlingException", 400)],
    ["a 429 of any name", serviceError("TooManyRequests", 429)],
    ["a request timeout", Object.assign(new Error("timed out"), { name: "TimeoutError" })],
    ["a reset connection", Object.assign(new Error("socket hang up"), { code: "ECONNRESET" })],
  ];
  const permanent: [string, unknown][] = [
    ["AccessDenied (403)", serviceError("AccessDenied", 403)],
    ["KMS.DisabledException (400)", serviceError("KMS.DisabledException", 400)],
    ["NoSuchKey (404)", new NoSuchKey({ $metadata: { httpStatusCode: 404 }, message: "gone" })],
  ];

  it("classifies throttling, 5xx, timeouts and broken connections as transient, and nothing else", () => {
    const verdicts = [...transient, ...permanent].map(([label, e]) => [
      label,
      isTransientAwsError(e),
    ]);

    assert.deepEqual(verdicts, [
      ...transient.map(([label]) => [label, true]),
      ...permanent.map(([label]) => [label, false]),
    ]);
  });

  it("fails a write or a read S3 could not serve for now with TransientAwsError, which the state machine retries", async () => {
    for (const [label, error] of transient) {
      const { store } = failing(error);

      const write = await writeTaskList(store, PREFIX, list).catch((e: Error) => e);
      const read = await readTaskList(store, PREFIX).catch((e: Error) => e);

      for (const [what, e] of [
        ["write", write],
        ["read", read],
      ] as const) {
        assert.ok(e instanceof TransientAwsError, `${label}, ${what}: ${e}`);
        assert.match(e.message, new RegExp(`^Could not ${what} ${KEY} \\(`));
        assert.equal(e.cause, error);
      }
    }
    assert.ok(RETRYABLE_BULK_ERRORS.includes("TransientAwsError"));
  });

  it("fails at once with TaskListError naming the key and S3's error when a retry would fail the same way", async () => {
    const causes: string[] = [];
    for (const [, error] of permanent) {
      const { store } = failing(error);
      for (const e of [
        await writeTaskList(store, PREFIX, list).catch((e: Error) => e),
        await readTaskList(store, PREFIX).catch((e: Error) => e),
      ]) {
        assert.ok(e instanceof TaskListError);
        causes.push(e.message);
      }
    }

    assert.deepEqual(causes, [
      `Could not write ${KEY} (AccessDenied, HTTP 403)`,
      `Could not read ${KEY} (AccessDenied, HTTP 403): it is missing, or this role may not read it`,
      `Could not write ${KEY} (KMS.DisabledException, HTTP 400)`,
      `Could not read ${KEY} (KMS.DisabledException, HTTP 400)`,
      `Could not write ${KEY} (NoSuchKey, HTTP 404)`,
      `Could not read ${KEY} (NoSuchKey, HTTP 404): the poll writes it once the export is complete`,
    ]);
    assert.ok(!RETRYABLE_BULK_ERRORS.includes("TaskListError"));
  });

  it("refuses an object that is not a task list, without retrying", async () => {
    const store: TaskListStore = {
      ...failing(undefined).store,
      s3: {
        send: async () => ({ Body: { transformToString: async () => "{not json" } }),
      } as unknown as S3Client,
    };

    const err = await readTaskList(store, PREFIX).catch((e: Error) => e);

    assert.ok(err instanceof TaskListError);
    assert.equal(err.message, `${KEY} holds no task list`);
  });
});
