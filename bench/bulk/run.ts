import { execFile } from "node:child_process";
import { createReadStream, createWriteStream, promises as fsp } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import { promisify } from "node:util";
import {
  downloadFile,
  initiateExport,
  planDownloads,
  pollExport,
  type StepContext,
} from "../../handlers/lib/bulkExport";
import type { ExportManifest } from "../../handlers/lib/bulkManifest";
import { fileSink } from "../../handlers/lib/objectSink";
import {
  createKmsSigner,
  jwks,
  publicJwk,
  SmartTokenClient,
} from "../../handlers/lib/smartBackend";
import { generateNdjson, startBulkSource } from "../../local/bulkSource";
import { LocalKms } from "../../local/kms";
import { median, table } from "../lib";

/**
 * bench/bulk: an export of 100k resources from the local Bulk Data source.
 * Download throughput (MB/s) of the download step (handlers/lib/bulkExport.ts:
 * streaming, SHA-256, line count, file sink with rename on commit) against a
 * plain HTTP copy of the same files (fetch piped to a file) on the same
 * machine, runs interleaved; then the peak RSS of one download step in a
 * process of its own at two file sizes (8x apart), which must stay flat.
 */

const RESOURCES = 100_000;
const RUNS = 5;
const MB = 1e6;

async function plainCopy(urls: string[], token: string, out: string): Promise<number> {
  let bytes = 0;
  for (const [i, url] of urls.entries()) {
    const res = await fetch(url, { headers: { Authorization: `Bearer ${token}` } });
    if (!res.ok || !res.body) throw new Error(`plain copy got ${res.status}`);
    const target = path.join(out, `plain-${i}.ndjson`);
    await pipeline(
      Readable.fromWeb(res.body as WebReadableStream<Uint8Array>),
      createWriteStream(target),
    );
    bytes += (await fsp.stat(target)).size;
  }
  return bytes;
}

async function main(): Promise<void> {
  const work = await fsp.mkdtemp(path.join(os.tmpdir(), "hoth-bench-bulk-"));
  try {
    await fsp.mkdir(path.join(work, "data"));
    const data = await generateNdjson({ dir: path.join(work, "data"), resources: RESOURCES });
    const kms = new LocalKms("ECC_NIST_P384");
    const signer = await createKmsSigner(kms, kms.keyId);
    const key = await kms.getPublicKey({ KeyId: kms.keyId });
    const source = await startBulkSource({
      dataDir: data,
      clients: [
        {
          clientId: "bench",
          jwks: jwks([publicJwk(key.PublicKey, signer.alg)]),
          scopes: ["system/*.read"],
        },
      ],
      progressPolls: 0,
      retryAfterSeconds: 0,
    });
    const server = {
      name: "local",
      fhirBaseUrl: source.baseUrl,
      tokenUrl: source.tokenUrl,
      clientId: "bench",
      scopes: ["system/*.read"],
    };
    const tokens = new SmartTokenClient({ ...server, signer });
    const ctx: StepContext = { server, tokens };
    try {
      const job = await initiateExport({ deadlineSeconds: 600 }, ctx);
      let manifest: ExportManifest | undefined;
      while (!manifest) {
        const r = await pollExport(job, ctx);
        if (r.status === "complete") manifest = r.manifest;
      }
      const tasks = planDownloads(manifest, "bench");
      const resources = manifest.output.reduce((n, o) => n + (o.count ?? 0), 0);
      const token = await tokens.token();

      const hoth: number[] = [];
      const plain: number[] = [];
      let totalBytes = 0;
      for (let run = 0; run < RUNS; run++) {
        const out = path.join(work, `out-${run}`);
        let t = process.hrtime.bigint();
        let bytes = 0;
        for (const task of tasks) {
          bytes += (await downloadFile(task, ctx, { sink: fileSink(out) })).bytes;
        }
        hoth.push(bytes / MB / (Number(process.hrtime.bigint() - t) / 1e9));
        totalBytes = bytes;
        t = process.hrtime.bigint();
        const copied = await plainCopy(
          tasks.map((x) => x.url),
          token,
          out,
        );
        plain.push(copied / MB / (Number(process.hrtime.bigint() - t) / 1e9));
        if (copied !== bytes) throw new Error("plain copy and download step disagree on size");
        await fsp.rm(out, { recursive: true, force: true });
      }
      console.log(
        `export of ${resources} resources in ${tasks.length} files, ${(totalBytes / MB).toFixed(1)} MB; ${RUNS} interleaved runs; load average ${os
          .loadavg()
          .map((l) => l.toFixed(2))
          .join(" ")}\n`,
      );
      table(
        ["download of every file", "median MB/s", "runs (MB/s)"],
        [
          [
            "download step (stream, sha256, line count, file sink)",
            median(hoth).toFixed(1),
            hoth.map((x) => x.toFixed(0)).join(" "),
          ],
          [
            "plain HTTP copy (fetch piped to a file)",
            median(plain).toFixed(1),
            plain.map((x) => x.toFixed(0)).join(" "),
          ],
          ["ratio download step / plain copy", (median(hoth) / median(plain)).toFixed(2), ""],
        ],
      );

      // Peak memory of one download step at two file sizes: the Observation
      // file, and that file eight times over (a second export of a bigger set).
      const obs = path.join(data, "Observation.000.ndjson");
      const big = path.join(work, "big");
      await fsp.mkdir(big);
      const bigFile = path.join(big, "Observation.000.ndjson");
      for (let i = 0; i < 8; i++) {
        await pipeline(createReadStream(obs), createWriteStream(bigFile, { flags: "a" }));
      }
      const bigSource = await startBulkSource({
        dataDir: big,
        clients: [
          {
            clientId: "bench",
            jwks: jwks([publicJwk(key.PublicKey, signer.alg)]),
            scopes: ["system/*.read"],
          },
        ],
        progressPolls: 0,
      });
      try {
        const rows: string[][] = [];
        for (const [label, src] of [
          ["1x", source],
          ["8x", bigSource],
        ] as const) {
          const c: StepContext = {
            server: { ...server, fhirBaseUrl: src.baseUrl, tokenUrl: src.tokenUrl },
            tokens: new SmartTokenClient({ ...server, tokenUrl: src.tokenUrl, signer }),
          };
          const j = await initiateExport(
            { deadlineSeconds: 600 },
            { ...c, server: { ...c.server, types: ["Observation"] } },
          );
          let m: ExportManifest | undefined;
          while (!m) {
            const r = await pollExport(j, c);
            if (r.status === "complete") m = r.manifest;
          }
          const file = m.output[0];
          const peaks: number[] = [];
          let size = 0;
          for (let i = 0; i < 3; i++) {
            const out = path.join(work, `mem-${label}-${i}`);
            // Asynchronously: the source answering the child runs in this process.
            const child = await promisify(execFile)(
              path.join(__dirname, "..", "..", "node_modules", ".bin", "tsx"),
              [path.join(__dirname, "download.ts"), file.url, String(file.count), out],
              { env: { ...process.env, BULK_TOKEN: await c.tokens.token() }, encoding: "utf8" },
            );
            const r = JSON.parse(child.stdout);
            size = r.bytes;
            peaks.push(r.maxRss / MB);
            await fsp.rm(out, { recursive: true, force: true });
          }
          rows.push([
            label,
            (size / MB).toFixed(1),
            String(file.count),
            median(peaks).toFixed(1),
            peaks.map((p) => p.toFixed(0)).join(" "),
          ]);
        }
        console.log("\npeak RSS of one download step (own process, tsx included; 3 runs each)\n");
        table(["file", "MB", "resources", "median peak RSS MB", "runs"], rows);
      } finally {
        await bigSource.stop();
      }
    } finally {
      await source.stop();
    }
  } finally {
    await fsp.rm(work, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
