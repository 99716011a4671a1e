import { GetObjectCommand, PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { awsErrorSummary, isTransientAwsError, TransientAwsError } from "./aws";
import type { DownloadTask } from "./bulkExport";

/**
 * A run's download plan, kept in S3 rather than in the execution's state
 * (which Step Functions caps at 256 KiB): the poll step writes it once the
 * manifest is complete, each download batch reads its slice. It sits beside
 * the run's `output/`, `error/` and `deleted/` folders, never in them: the
 * ingest job reads `<prefix>/output/` only.
 */

/**
 * The run's task list cannot be written or read, and would not be on a retry
 * (missing, refused, its KMS key disabled, not a task list): the run fails.
 * Transient S3 or KMS failures are TransientAwsError, which the state
 * machine retries.
 */
export class TaskListError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "TaskListError";
  }
}

/** S3 or KMS (through S3) failed: TransientAwsError if worth retrying, TaskListError otherwise. */
function storeError(action: "write" | "read", key: string, error: unknown): Error {
  if (error instanceof TaskListError) return error;
  const what = `Could not ${action} ${key} (${awsErrorSummary(error)})`;
  if (isTransientAwsError(error)) return new TransientAwsError(what, { cause: error });
  const name = (error as Error | undefined)?.name;
  if (name === "NoSuchKey" && action === "read") {
    return new TaskListError(`${what}: the poll writes it once the export is complete`, {
      cause: error,
    });
  }
  if (name === "AccessDenied" && action === "read") {
    // S3 answers 403, not 404, for a missing object to a role that may not
    // list the bucket, as the download's may not
    // (https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html#API_GetObject_RequestSyntax).
    return new TaskListError(`${what}: it is missing, or this role may not read it`, {
      cause: error,
    });
  }
  return new TaskListError(what, { cause: error });
}

export interface TaskList {
  transactionTime: string;
  tasks: DownloadTask[];
}

/** `<prefix>/tasks.json`; the bulk roles may read or write only this name besides the files. */
export const taskListKey = (prefix: string) => `${prefix}/tasks.json`;

export interface TaskListStore {
  s3: S3Client;
  bucket: string;
  /** The stack key: written with SSE-KMS under it, like the downloaded files. */
  kmsKeyArn: string;
}

export async function writeTaskList(
  store: TaskListStore,
  prefix: string,
  list: TaskList,
): Promise<void> {
  const key = taskListKey(prefix);
  try {
    await store.s3.send(
      new PutObjectCommand({
        Bucket: store.bucket,
        Key: key,
        Body: JSON.stringify(list),
        ContentType: "application/json",
        ServerSideEncryption: "aws:kms",
        SSEKMSKeyId: store.kmsKeyArn,
      }),
    );
  } catch (error) {
    throw storeError("write", key, error);
  }
}

export async function readTaskList(store: TaskListStore, prefix: string): Promise<TaskList> {
  const key = taskListKey(prefix);
  let text: string | undefined;
  try {
    // The body is read inside: a connection broken mid-body is transient too.
    const out = await store.s3.send(new GetObjectCommand({ Bucket: store.bucket, Key: key }));
    text = await out.Body?.transformToString("utf8");
  } catch (error) {
    throw storeError("read", key, error);
  }
  let list: TaskList | null;
  try {
    list = JSON.parse(text ?? "null") as TaskList | null;
  } catch {
    list = null;
  }
  if (!Array.isArray(list?.tasks)) throw new TaskListError(`${key} holds no task list`);
  return list;
}
