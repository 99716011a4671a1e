import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

/** Shared measurement helpers for the benchmarks. Figures only; no pass/fail. */

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
}

/**
 * Cold module load of a bundle: `runs` fresh Node processes each require it
 * once. Returns the in-process load times (ms, excluding Node's own start)
 * and the whole-process wall times (ms).
 */
export function coldLoad(
  bundlePath: string,
  env: Record<string, string>,
  runs = 20,
): { loadMs: number[]; processMs: number[] } {
  const script = `const t=process.hrtime.bigint();require(${JSON.stringify(bundlePath)});process.stdout.write(String(Number(process.hrtime.bigint()-t)/1e6));`;
  const loadMs: number[] = [];
  const processMs: number[] = [];
  for (let i = 0; i < runs; i++) {
    const started = process.hrtime.bigint();
    const run = spawnSync(process.execPath, ["-e", script], {
      env: { ...process.env, ...env },
      encoding: "utf8",
    });
    processMs.push(Number(process.hrtime.bigint() - started) / 1e6);
    if (run.status !== 0) throw new Error(`loading ${bundlePath} failed: ${run.stderr}`);
    loadMs.push(Number(run.stdout));
  }
  return { loadMs, processMs };
}

export const ms = (n: number) => (n < 1 ? `${(n * 1000).toFixed(1)} µs` : `${n.toFixed(2)} ms`);

/** Prints rows as an aligned Markdown table. */
export function table(header: string[], rows: (string | number)[][]): void {
  const cells = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => r[i].length)));
  const line = (r: string[]) => `| ${r.map((c, i) => c.padEnd(widths[i])).join(" | ")} |`;
  console.log(line(header));
  console.log(`|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`);
  for (const r of cells.slice(1)) console.log(line(r));
}

/**
 * The commit just before the one that removed `file` (e.g. the validator's
 * generated ajv code, or the S3 member store): the "before" of a change.
 */
export function commitBefore(file: string): string | undefined {
  const root = path.join(__dirname, "..");
  const removed = spawnSync("git", ["rev-list", "-n", "1", "HEAD", "--", file], {
    cwd: root,
    encoding: "utf8",
  }).stdout.trim();
  return removed ? `${removed}^` : undefined;
}

/**
 * Today's bundle of a handler, for before/after figures measured in one run:
 * the tree of git `ref` (default: where this branch left main) is exported
 * to a temporary directory beside this one's node_modules and bundled by its
 * own bundle.ts (contracts/, or components/ before the move). Undefined when git cannot resolve the ref.
 */
export function baselineBundle(
  name: "app" | "authorizer",
  ref = process.env.BENCH_BASELINE ?? "",
): { ref: string; code: string } | undefined {
  const root = path.join(__dirname, "..");
  const git = (...args: string[]) => spawnSync("git", args, { cwd: root, encoding: "utf8" });
  const commit = (ref || git("merge-base", "HEAD", "main").stdout.trim()) as string;
  if (!commit || git("cat-file", "-e", `${commit}^{commit}`).status !== 0) return undefined;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "hoth-bench-baseline-"));
  try {
    const tar = path.join(dir, "tree.tar");
    if (git("archive", "--format=tar", "-o", tar, commit).status !== 0) return undefined;
    spawnSync("tar", ["-x", "-f", tar, "-C", dir]);
    fs.symlinkSync(
      fs.realpathSync(path.join(root, "node_modules")),
      path.join(dir, "node_modules"),
    );
    // The bundler moved from components/ to contracts/; a baseline may have either.
    const bundler = ["contracts", "components"]
      .map((d) => path.join(dir, d, "bundle.ts"))
      .find((f) => fs.existsSync(f)) as string;
    const { bundleHandler } = require(bundler) as {
      bundleHandler: (n: string) => { code: string };
    };
    return { ref: commit.slice(0, 12), code: bundleHandler(name).code };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Cold loads of two bundles, alternating run by run so that both see the same machine load. */
export function coldLoadPair(
  a: string,
  b: string,
  env: Record<string, string>,
  runs = 20,
): { a: number[]; b: number[] } {
  const out = { a: [] as number[], b: [] as number[] };
  for (let i = 0; i < runs; i++) {
    out.a.push(...coldLoad(a, env, 1).loadMs);
    out.b.push(...coldLoad(b, env, 1).loadMs);
  }
  return out;
}
