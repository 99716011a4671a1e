import * as assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { existsSync, promises as fsp } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
  CreateBucketCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import { fileSink, type ObjectSink, s3Sink } from "../handlers/lib/objectSink";
import { startMoto } from "./support/moto";

const MiB = 1024 * 1024;
const KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/lake-key";

/** Writes `data` in uneven chunks, as a download would arrive. */
async function writeChunked(sink: ObjectSink, data: Buffer): Promise<void> {
  let at = 0;
  for (let i = 0; at < data.length; i++) {
    const n = Math.min(data.length - at, [65_536, 1, 300_001, 16_384][i % 4]);
    await sink.write(data.subarray(at, at + n));
    at += n;
  }
}

/** An S3Client stand-in recording each command's name and input. */
function recordingS3() {
  const calls: { command: string; input: Record<string, unknown> }[] = [];
  const client = {
    send: async (cmd: { constructor: { name: string }; input: Record<string, unknown> }) => {
      calls.push({ command: cmd.constructor.name, input: cmd.input });
      if (cmd.constructor.name === "CreateMultipartUploadCommand") return { UploadId: "u-1" };
      if (cmd.constructor.name === "UploadPartCommand") {
        return { ETag: `"e${cmd.input.PartNumber}"` };
      }
      return {};
    },
  } as unknown as S3Client;
  return { client, calls };
}

describe("s3Sink", () => {
  it("uploads parts of the configured size with SSE-KMS under the stack key and completes them in order", async () => {
    const { client, calls } = recordingS3();
    const sink = await s3Sink(client, { bucket: "lake", kmsKeyArn: KEY_ARN, partBytes: 5 * MiB })(
      "k",
    );

    await writeChunked(sink, Buffer.alloc(12 * MiB, 7));
    await sink.commit();

    assert.deepEqual(
      calls.map((c) => [c.command, (c.input.Body as Buffer | undefined)?.length]),
      [
        ["CreateMultipartUploadCommand", undefined],
        ["UploadPartCommand", 5 * MiB],
        ["UploadPartCommand", 5 * MiB],
        ["UploadPartCommand", 2 * MiB],
        ["CompleteMultipartUploadCommand", undefined],
      ],
    );
    assert.deepEqual(calls[0].input, {
      Bucket: "lake",
      Key: "k",
      ContentType: "application/fhir+ndjson",
      ServerSideEncryption: "aws:kms",
      SSEKMSKeyId: KEY_ARN,
    });
    assert.deepEqual(calls[4].input.MultipartUpload, {
      Parts: [
        { ETag: '"e1"', PartNumber: 1 },
        { ETag: '"e2"', PartNumber: 2 },
        { ETag: '"e3"', PartNumber: 3 },
      ],
    });
  });

  it("puts a file smaller than a part in one PutObject, encrypted the same way", async () => {
    const { client, calls } = recordingS3();
    const sink = await s3Sink(client, { bucket: "lake", kmsKeyArn: KEY_ARN, partBytes: 5 * MiB })(
      "k",
    );

    await sink.write(Buffer.from('{"resourceType":"Patient"}\n'));
    await sink.commit();

    assert.deepEqual(
      calls.map((c) => c.command),
      ["PutObjectCommand"],
    );
    assert.equal(calls[0].input.ServerSideEncryption, "aws:kms");
    assert.equal(calls[0].input.SSEKMSKeyId, KEY_ARN);
  });

  it("refuses parts under S3's 5 MiB minimum", () => {
    assert.throws(() => s3Sink(recordingS3().client, { bucket: "b", partBytes: MiB }), RangeError);
  });

  describe("against moto", () => {
    const bucket = `hoth-test-sink-${Date.now()}`;
    const s3 = () => new S3Client({ forcePathStyle: true });

    before(async function () {
      this.timeout(60_000);
      await startMoto();
      await s3().send(new CreateBucketCommand({ Bucket: bucket }));
    });

    it("stores a multipart file byte for byte", async () => {
      const data = randomBytes(11 * MiB + 123);
      const sink = await s3Sink(s3(), { bucket, partBytes: 5 * MiB })("bulk/big.ndjson");

      await writeChunked(sink, data);
      const { location } = await sink.commit();

      const got = await s3().send(new GetObjectCommand({ Bucket: bucket, Key: "bulk/big.ndjson" }));
      assert.equal(location, `s3://${bucket}/bulk/big.ndjson`);
      assert.ok(
        Buffer.from(
          await (
            got.Body as { transformToByteArray(): Promise<Uint8Array> }
          ).transformToByteArray(),
        ).equals(data),
      );
    });

    it("leaves neither an object nor an open multipart upload after abort", async () => {
      const sink = await s3Sink(s3(), { bucket, partBytes: 5 * MiB })("bulk/aborted.ndjson");
      await writeChunked(sink, randomBytes(7 * MiB));

      await sink.abort();

      await assert.rejects(
        s3().send(new HeadObjectCommand({ Bucket: bucket, Key: "bulk/aborted.ndjson" })),
        (e: Error) => e.name === "NotFound",
      );
      const open = await s3().send(new ListMultipartUploadsCommand({ Bucket: bucket }));
      assert.deepEqual(open.Uploads ?? [], []);
    });
  });
});

describe("fileSink", () => {
  let root: string;
  beforeEach(async () => {
    root = await fsp.mkdtemp(path.join(os.tmpdir(), "hoth-sink-"));
  });
  afterEach(() => fsp.rm(root, { recursive: true, force: true }));

  it("shows the file only once committed", async () => {
    const sink = await fileSink(root)("a/b.ndjson");
    await sink.write(Buffer.from("x\n"));
    assert.equal(existsSync(path.join(root, "a/b.ndjson")), false);

    await sink.commit();

    assert.equal(await fsp.readFile(path.join(root, "a/b.ndjson"), "utf8"), "x\n");
    assert.deepEqual(await fsp.readdir(path.join(root, "a")), ["b.ndjson"]);
  });

  it("leaves nothing behind on abort", async () => {
    const sink = await fileSink(root)("a/b.ndjson");
    await sink.write(Buffer.from("x\n"));

    await sink.abort();

    assert.deepEqual(await fsp.readdir(path.join(root, "a")), []);
  });

  it("refuses a key that leaves its root", async () => {
    await assert.rejects(fileSink(root)("../escape.ndjson"), RangeError);
  });
});
