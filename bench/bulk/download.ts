import { downloadFile } from "../../handlers/lib/bulkExport";
import { fileSink } from "../../handlers/lib/objectSink";

/**
 * One download step in a process of its own, so its peak RSS is its own:
 * `tsx bench/bulk/download.ts <fileUrl> <count> <outDir>` with the access
 * token in BULK_TOKEN. Prints JSON: bytes, lines, seconds, RSS before and peak.
 */
async function main(): Promise<void> {
  const [url, count, out] = process.argv.slice(2);
  const token = process.env.BULK_TOKEN ?? "";
  const origin = new URL(url).origin;
  global.gc?.();
  const rssBefore = process.memoryUsage().rss;
  const started = process.hrtime.bigint();
  const r = await downloadFile(
    {
      type: "Observation",
      kind: "output",
      url,
      count: Number(count),
      requiresAccessToken: true,
      key: "bench/Observation.000.ndjson",
    },
    {
      server: {
        name: "bench",
        fhirBaseUrl: `${origin}/fhir`,
        tokenUrl: `${origin}/auth/token`,
        clientId: "bench",
        scopes: [],
      },
      tokens: { token: async () => token, invalidate: () => undefined },
    },
    { sink: fileSink(out) },
  );
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  process.stdout.write(
    JSON.stringify({
      bytes: r.bytes,
      lines: r.lines,
      seconds,
      rssBefore,
      maxRss: process.resourceUsage().maxRSS * 1024,
    }),
  );
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
