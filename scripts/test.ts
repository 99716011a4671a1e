import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

/**
 * The README's test command (`npm test`, which `.ci/run` runs): lint and type
 * checks first, then every test, TypeScript and Python. Every step runs even
 * when an earlier one fails, so one run shows everything; the exit code is
 * non-zero if any step failed. The last line is CI's
 * `mocha: N passed, N failed`, read from mocha's own result.
 */

const ROOT = path.join(__dirname, "..");
const BIN = path.join(ROOT, "node_modules", ".bin");
const VENV = path.join(ROOT, ".venv", "bin");
const REPORTS = path.join(ROOT, "reports");

interface Step {
  name: string;
  cmd: string;
  args: string[];
}

const steps: Step[] = [
  {
    name: "biome (lint + format)",
    cmd: path.join(BIN, "biome"),
    args: ["ci", "--colors=off", "."],
  },
  {
    name: "tsc (type check, tests included)",
    cmd: path.join(BIN, "tsc"),
    args: ["--noEmit", "-p", "."],
  },
  { name: "ruff check", cmd: path.join(VENV, "ruff"), args: ["check", "glue", "bench", "local"] },
  {
    name: "ruff format --check",
    cmd: path.join(VENV, "ruff"),
    args: ["format", "--check", "glue", "bench", "local"],
  },
  { name: "mocha", cmd: path.join(BIN, "mocha"), args: [] },
  {
    name: "pytest",
    cmd: path.join(VENV, "pytest"),
    args: ["glue", "local/python", "-q", "-rs", `--junitxml=${path.join(REPORTS, "pytest.xml")}`],
  },
];

fs.rmSync(REPORTS, { recursive: true, force: true });
fs.mkdirSync(REPORTS, { recursive: true });

const failed: string[] = [];
for (const step of steps) {
  console.log(`\n==> ${step.name}`);
  const started = Date.now();
  const run = spawnSync(step.cmd, step.args, { cwd: ROOT, stdio: "inherit", env: process.env });
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  if (run.status !== 0) {
    failed.push(step.name);
    console.log(`<== ${step.name}: FAILED (exit ${run.status ?? run.signal}) in ${seconds}s`);
  } else {
    console.log(`<== ${step.name}: ok in ${seconds}s`);
  }
}

let mocha = { passed: 0, failed: 0, pending: 0 };
try {
  mocha = JSON.parse(fs.readFileSync(path.join(REPORTS, "mocha-summary.json"), "utf8"));
} catch {
  failed.push("mocha (no result)");
}

/** pytest's counts, from its JUnit XML (its own summary line is far above by now). */
function pytestCounts(): string {
  try {
    const xml = fs.readFileSync(path.join(REPORTS, "pytest.xml"), "utf8");
    const suite = /<testsuite\b[^>]*>/.exec(xml)?.[0] ?? "";
    const n = (name: string) => Number(new RegExp(`\\b${name}="(\\d+)"`).exec(suite)?.[1] ?? 0);
    const bad = n("failures") + n("errors");
    return `pytest: ${n("tests") - bad - n("skipped")} passed, ${bad} failed, ${n("skipped")} skipped`;
  } catch {
    return "pytest: no result";
  }
}

console.log(failed.length ? `\nFAILED: ${failed.join(", ")}` : "\nAll checks and tests passed.");
console.log(
  `Handler logs of the run: ${path.relative(ROOT, path.join(REPORTS, "handler-logs.jsonl"))}`,
);
console.log(pytestCounts());
console.log(`mocha: ${mocha.passed} passed, ${mocha.failed} failed, ${mocha.pending} skipped`);
process.exit(failed.length ? 1 : 0);
