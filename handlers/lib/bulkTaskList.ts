import { GetObjectCommand, PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import type { DownloadTask } from "./bulkExport";

/**
 * A run's download plan, kept in S3 rather than in the execution's state
 * (which Step Functions caps at 256 KiB): the poll step writes it once the
 * manifest is complete, each download batch reads its slice. It sits beside
 * the run's `output/`, `error/` and `deleted/` folders, never in them: the
 * ingest job reads `<prefix>/output/` only.
 */

/** The run's task list is missing its tasks: a wiring error, never retried. */
export class TaskListError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TaskListError";
  }
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
  await store.s3.send(
    new PutObjectCommand({
      Bucket: store.bucket,
      Key: taskListKey(prefix),
      Body: JSON.stringify(list),
      ContentType: "application/json",
      ServerSideEncryption: "aws:kms",
      SSEKMSKeyId: store.kmsKeyArn,
    }),
  );
}

export async function readTaskList(store: TaskListStore, prefix: string): Promise<TaskList> {
  const out = await store.s3.send(
    new GetObjectCommand({ Bucket: store.bucket, Key: taskListKey(prefix) }),
  );
  const list = JSON.parse((await out.Body?.transformToString("utf8")) ?? "null") as TaskList;
  if (!Array.isArray(list?.tasks))
    throw new TaskListError(`${taskListKey(prefix)} holds no task list`);
  return list;
}
