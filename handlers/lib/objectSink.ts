import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { createWriteStream, promises as fsp } from "node:fs";
import * as path from "node:path";
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  PutObjectCommand,
  type S3Client,
  UploadPartCommand,
} from "@aws-sdk/client-s3";

/**
 * Where a downloaded file goes, written as it streams. Nothing is visible
 * at the destination until `commit`; `abort` leaves nothing behind, so a
 * download that fails or does not check out is never half-written.
 */
export interface ObjectSink {
  write(chunk: Uint8Array): Promise<void>;
  commit(): Promise<{ location: string }>;
  abort(): Promise<void>;
}

export type SinkFactory = (key: string) => Promise<ObjectSink>;

/** S3 part size: above the 5 MiB minimum for all but the last part; the memory one upload holds. */
export const DEFAULT_PART_BYTES = 8 * 1024 * 1024;

export interface S3SinkOptions {
  bucket: string;
  /** The stack's KMS key: objects are written with SSE-KMS under it. */
  kmsKeyArn?: string;
  /** @default 8 MiB */
  partBytes?: number;
}

/**
 * An S3 multipart upload holding at most one part in memory. A file smaller
 * than a part is one PutObject; a larger one is CreateMultipartUpload,
 * UploadPart per part, CompleteMultipartUpload, and AbortMultipartUpload on
 * failure (an incomplete upload is never an object:
 * https://docs.aws.amazon.com/AmazonS3/latest/userguide/mpuoverview.html).
 */
export function s3Sink(s3: S3Client, options: S3SinkOptions): SinkFactory {
  const partBytes = options.partBytes ?? DEFAULT_PART_BYTES;
  if (partBytes < 5 * 1024 * 1024) throw new RangeError("partBytes must be at least 5 MiB");
  const encryption = options.kmsKeyArn
    ? { ServerSideEncryption: "aws:kms" as const, SSEKMSKeyId: options.kmsKeyArn }
    : {};
  return async (key) => {
    const Bucket = options.bucket;
    let buffer = Buffer.alloc(partBytes);
    let filled = 0;
    let uploadId: string | undefined;
    const parts: { ETag: string; PartNumber: number }[] = [];

    async function flushPart(): Promise<void> {
      uploadId ??= (
        await s3.send(
          new CreateMultipartUploadCommand({
            Bucket,
            Key: key,
            ContentType: "application/fhir+ndjson",
            ...encryption,
          }),
        )
      ).UploadId;
      if (!uploadId) throw new Error("S3 returned no UploadId");
      const PartNumber = parts.length + 1;
      const out = await s3.send(
        new UploadPartCommand({
          Bucket,
          Key: key,
          UploadId: uploadId,
          PartNumber,
          Body: buffer.subarray(0, filled),
        }),
      );
      if (!out.ETag) throw new Error(`S3 returned no ETag for part ${PartNumber}`);
      parts.push({ ETag: out.ETag, PartNumber });
      // A new buffer: the SDK may still hold the old one's bytes while retrying.
      buffer = Buffer.alloc(partBytes);
      filled = 0;
    }

    return {
      async write(chunk) {
        let offset = 0;
        while (offset < chunk.length) {
          const n = Math.min(chunk.length - offset, partBytes - filled);
          buffer.set(chunk.subarray(offset, offset + n), filled);
          filled += n;
          offset += n;
          if (filled === partBytes) await flushPart();
        }
      },
      async commit() {
        if (uploadId === undefined) {
          await s3.send(
            new PutObjectCommand({
              Bucket,
              Key: key,
              Body: buffer.subarray(0, filled),
              ContentType: "application/fhir+ndjson",
              ...encryption,
            }),
          );
        } else {
          if (filled > 0) await flushPart();
          await s3.send(
            new CompleteMultipartUploadCommand({
              Bucket,
              Key: key,
              UploadId: uploadId,
              MultipartUpload: { Parts: parts },
            }),
          );
        }
        return { location: `s3://${Bucket}/${key}` };
      },
      async abort() {
        if (uploadId !== undefined) {
          await s3.send(new AbortMultipartUploadCommand({ Bucket, Key: key, UploadId: uploadId }));
        }
        filled = 0;
      },
    };
  };
}

/**
 * A file under `root`, written to a temporary name beside it and renamed
 * into place on commit (atomic on one file system). For the local stack,
 * tests and benchmarks.
 */
export function fileSink(root: string): SinkFactory {
  return async (key) => {
    const target = path.resolve(root, key);
    if (!target.startsWith(path.resolve(root) + path.sep)) {
      throw new RangeError(`key '${key}' leaves the sink's root`);
    }
    await fsp.mkdir(path.dirname(target), { recursive: true });
    const temp = `${target}.partial-${randomBytes(6).toString("hex")}`;
    const out = createWriteStream(temp);
    await once(out, "open");
    const closed = () =>
      new Promise<void>((resolve, reject) => {
        out.end((err?: Error | null) => (err ? reject(err) : resolve()));
      });
    return {
      async write(chunk) {
        if (!out.write(chunk)) await once(out, "drain");
      },
      async commit() {
        await closed();
        await fsp.rename(temp, target);
        return { location: target };
      },
      async abort() {
        // A write still pending fails once the stream is destroyed: that is the point.
        out.on("error", () => undefined);
        if (!out.closed) {
          const closed = new Promise<void>((resolve) => out.once("close", () => resolve()));
          out.destroy();
          await closed;
        }
        await fsp.rm(temp, { force: true });
      },
    };
  };
}
