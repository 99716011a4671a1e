import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { bundleHandler } from "../../contracts/bundle";
import {
  baselineBundle,
  coldLoad,
  coldLoadPair,
  commitBefore,
  median,
  ms,
  percentile,
  table,
} from "../lib";

/**
 * bench/app: the app bundle's size and its cold module-load time, median of
 * 20 fresh Node processes (the part of a Lambda cold start the code controls),
 * beside the bundle before the R4 validator built and loaded in the same run, alternately.
 */
const { code } = bundleHandler("app");
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "hoth-bench-app-"));
const file = path.join(dir, "index.js");
fs.writeFileSync(file, code);
// The app before the R4 validator replaced the JSON-schema one (issue 13's budget).
const baseline = baselineBundle(
  "app",
  process.env.BENCH_BASELINE ?? commitBefore("handlers/generated/fhirValidators.js"),
);
const baseFile = path.join(dir, "baseline.js");
if (baseline) fs.writeFileSync(baseFile, baseline.code);

const env = {
  APP_SECRET_ID: "bench/app",
  STATE_MACHINE_ARN: "arn:aws:states:us-east-1:123456789012:stateMachine:bench",
  LAKE_BUCKET: "bench-lake",
  REGISTRY_TABLE: "bench-registry",
  AWS_REGION: "us-east-1",
};
const pair = coldLoadPair(file, baseline ? baseFile : file, env);
const { processMs } = coldLoad(file, env, 10);
fs.rmSync(dir, { recursive: true, force: true });
const load = os
  .loadavg()
  .map((l) => l.toFixed(2))
  .join(" ");
console.log(
  `bench/app on Node ${process.version}, ${os.cpus().length} cores, load average ${load}\n`,
);
table(
  ["figure", "value"],
  [
    ["bundle size", `${code.length} bytes (${(code.length / 1024).toFixed(1)} KiB)`],
    ["cold module load, median of 20", ms(median(pair.a))],
    ["cold module load, p90 of 20", ms(percentile(pair.a, 90))],
    ["whole process (node start + load), median of 10", ms(median(processMs))],
    ...(baseline
      ? [
          [
            `the bundle before the R4 validator (${baseline.ref}) size`,
            `${baseline.code.length} bytes`,
          ],
          [
            "the bundle before the R4 validator cold load, median of 20 (same run)",
            ms(median(pair.b)),
          ],
          ["growth over main (median - median)", ms(median(pair.a) - median(pair.b))],
          [
            "growth over main (median of the 20 paired differences)",
            ms(median(pair.a.map((a, i) => a - pair.b[i]))),
          ],
        ]
      : [["the bundle before the R4 validator", "not found (git)"]]),
  ],
);
