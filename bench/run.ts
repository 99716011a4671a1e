import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

/** `npm run bench [-- name...]`: runs each benchmark under bench/<name>/ and prints its figures. */
const ROOT = path.join(__dirname, "..");
const all = fs
  .readdirSync(__dirname, { withFileTypes: true })
  .filter((d) => d.isDirectory() && d.name !== "results")
  .map((d) => d.name)
  .sort();
const chosen = process.argv.slice(2).length ? process.argv.slice(2) : all;
let failed = 0;
for (const name of chosen) {
  const ts = path.join(__dirname, name, "run.ts");
  const py = path.join(__dirname, name, "run.py");
  const [cmd, args] = fs.existsSync(ts)
    ? [path.join(ROOT, "node_modules", ".bin", "tsx"), [ts]]
    : fs.existsSync(py)
      ? [path.join(ROOT, ".venv", "bin", "python"), [py]]
      : [undefined, []];
  if (!cmd) throw new Error(`bench/${name} has no run.ts or run.py; one of ${all.join(", ")}`);
  console.log(`\n### bench/${name}\n`);
  const run = spawnSync(cmd, args, { cwd: ROOT, stdio: "inherit" });
  if (run.status !== 0) failed++;
}
process.exit(failed ? 1 : 0);
