import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { bundleHandler } from "../../components/bundle";
import { coldLoad, median, ms, percentile, table } from "../lib";

/**
 * bench/app: the app bundle's size and its cold module-load time, median of
 * 20 fresh Node processes (the part of a Lambda cold start the code controls).
 */
const { code } = bundleHandler("app");
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "hoth-bench-app-"));
const file = path.join(dir, "index.js");
fs.writeFileSync(file, code);

const { loadMs, processMs } = coldLoad(file, {
  APP_SECRET_ID: "bench/app",
  STATE_MACHINE_ARN: "arn:aws:states:us-east-1:123456789012:stateMachine:bench",
  LAKE_BUCKET: "bench-lake",
  AWS_REGION: "us-east-1",
});
console.log(`bench/app on Node ${process.version}, ${os.cpus().length} cores\n`);
table(
  ["figure", "value"],
  [
    ["bundle size", `${code.length} bytes (${(code.length / 1024).toFixed(1)} KiB)`],
    ["cold module load, median of 20", ms(median(loadMs))],
    ["cold module load, p90 of 20", ms(percentile(loadMs, 90))],
    ["whole process (node start + load), median", ms(median(processMs))],
  ],
);
