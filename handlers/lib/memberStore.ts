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
  async commit(
    org: string,
    batch: string,
    date: string,
    resources: Json[],
    idempotency?: { keyHash: string; record: Json },
  ) {
    const byType = new Map<string, Json[]>();
    for (const r of resources)
      byType.set(r.resourceType as string, [...(byType.get(r.resourceType as string) ?? []), r]);
    const objects: { key: string; body: string; contentType: string }[] = [
      ...[...byType].map(([type, rs]) => ({
        key: `landing/${org}/members/${date}/${batch}/${type}.ndjson`,
        body: `${rs.map((r) => JSON.stringify(r)).join("\n")}\n`,
        contentType: "application/fhir+ndjson",
      })),
      ...resources.map((r) => ({
        key: `registry/${org}/${r.resourceType}/${r.id}.json`,
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
    // Registry objects may already hold an earlier version; keep it to restore.
    const previous = new Map<string, string>();
    for (const r of resources) {
      const key = `registry/${org}/${r.resourceType}/${r.id}.json`;
      const before = await this.getJson(key);
      if (before) previous.set(key, JSON.stringify(before));
    }
    const written: string[] = [];
    try {
      for (const o of objects) {
        await this.s3.send(
          new PutObjectCommand({
            Bucket: this.bucket,
            Key: o.key,
            Body: o.body,
            ContentType: o.contentType,
          }),
        );
        written.push(o.key);
      }
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

  private async rollBack(written: string[], previous: Map<string, string>) {
    for (const key of written.reverse()) {
      const before = previous.get(key);
      await this.s3
        .send(
          before === undefined
            ? new DeleteObjectCommand({ Bucket: this.bucket, Key: key })
            : new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: before }),
        )
        .catch(() => undefined);
    }
  }
}
