import {
  DeleteObjectCommand,
  GetObjectCommand,
  PutObjectCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import { ServiceUnavailableError } from "./errors";
import type { Json } from "./fhir";

/**
 * Where registered members live in the data lake:
 * - `landing/<org>/members/<date>/<batch>/<Type>.ndjson`: what ingest_fhir reads;
 * - `registry/<org>/<Type>/<id>.json`: the latest version, for reads;
 * - `idempotency/<org>/<key hash>.json`: the answer to a request, for retries.
 * Writes of one request are all or none: on a failure, what was written is
 * deleted again before the caller gets a 503.
 */
export class MemberStore {
  constructor(
    private readonly s3: S3Client,
    private readonly bucket: string,
  ) {}

  private async getJson(key: string): Promise<Json | undefined> {
    try {
      const out = await this.s3.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      return JSON.parse((await out.Body?.transformToString()) ?? "null") as Json;
    } catch (error) {
      if ((error as Error).name === "NoSuchKey") return undefined;
      throw new ServiceUnavailableError("Member storage is unavailable; retry later", {
        cause: error,
      });
    }
  }

  latest(org: string, type: string, id: string): Promise<Json | undefined> {
    return this.getJson(`registry/${org}/${type}/${id}.json`);
  }

  idempotencyRecord(org: string, keyHash: string): Promise<Json | undefined> {
    return this.getJson(`idempotency/${org}/${keyHash}.json`);
  }

  /** Writes accepted resources (landing NDJSON per type, registry copies) and the idempotency record. */
  /**
   * Writes accepted resources (landing NDJSON per type, registry copies) and
   * the idempotency record, PARALLEL objects at a time. `updates` names the
   * registry keys that may hold an earlier version, restored on a rollback.
   */
  async commit(
    org: string,
    batch: string,
    date: string,
    resources: Json[],
    options: { updates?: Json[]; idempotency?: { keyHash: string; record: Json } } = {},
  ) {
    const registryKey = (r: Json) => `registry/${org}/${r.resourceType}/${r.id}.json`;
    const byType = new Map<string, Json[]>();
    for (const r of resources) {
      const type = r.resourceType as string;
      byType.set(type, [...(byType.get(type) ?? []), r]);
    }
    const { idempotency } = options;
    const objects: { key: string; body: string; contentType: string }[] = [
      ...[...byType].map(([type, rs]) => ({
        key: `landing/${org}/members/${date}/${batch}/${type}.ndjson`,
        body: `${rs.map((r) => JSON.stringify(r)).join("\n")}\n`,
        contentType: "application/fhir+ndjson",
      })),
      ...resources.map((r) => ({
        key: registryKey(r),
        body: JSON.stringify(r),
        contentType: "application/fhir+json",
      })),
      ...(idempotency
        ? [
            {
              key: `idempotency/${org}/${idempotency.keyHash}.json`,
              body: JSON.stringify(idempotency.record),
              contentType: "application/json",
            },
          ]
        : []),
    ];
    const previous = new Map<string, string>();
    await inBatches(options.updates ?? [], async (r) => {
      const before = await this.getJson(registryKey(r));
      if (before) previous.set(registryKey(r), JSON.stringify(before));
    });
    const written: string[] = [];
    try {
      await inBatches(objects, async (o) => {
        await this.s3.send(
          new PutObjectCommand({
            Bucket: this.bucket,
            Key: o.key,
            Body: o.body,
            ContentType: o.contentType,
          }),
        );
        written.push(o.key);
      });
    } catch (error) {
      await this.rollBack(written, previous);
      throw new ServiceUnavailableError(
        "Member storage is unavailable; nothing was registered, retry later",
        {
          cause: error,
        },
      );
    }
  }

  /** Best effort: a key that cannot be restored now is overwritten by the client's retry. */
  private async rollBack(written: string[], previous: Map<string, string>) {
    await inBatches(written, async (key) => {
      const before = previous.get(key);
      await this.s3
        .send(
          before === undefined
            ? new DeleteObjectCommand({ Bucket: this.bucket, Key: key })
            : new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: before }),
        )
        .catch(() => undefined);
    });
  }
}

/** S3 requests in flight at once for one registration. */
const PARALLEL = 16;

/** Runs `fn` over `items`, PARALLEL at a time; the first failure rejects after its batch settles. */
async function inBatches<T>(items: T[], fn: (item: T) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += PARALLEL) {
    const results = await Promise.allSettled(items.slice(i, i + PARALLEL).map(fn));
    const failure = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (failure) throw failure.reason;
  }
}
