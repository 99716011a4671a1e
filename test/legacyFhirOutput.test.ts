import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { validateMember } from "../handlers/lib/fhir";
import { PYTHON } from "../local/python";

/**
 * The legacy job's output against the same validator as POST /members: a
 * generated extract (glue/hoth_glue/generate.py) plus the edge rows of
 * test/fixtures/legacy/edge-members.csv (blank optional fields, year 0000,
 * Feb 30 and a non-leap Feb 29, whitespace-only names and fields), run
 * through the real job entry point (glue/jobs/legacy_members_to_fhir.py) on
 * local Spark. Every resource it writes must be valid R4 and pass the
 * registration rules; every row it does not convert must be quarantined
 * with a reason.
 */

const ROOT = path.join(__dirname, "..");
const GLUE = path.join(ROOT, "glue");
const EDGE = path.join(__dirname, "fixtures", "legacy", "edge-members.csv");

type Json = Record<string, unknown>;

function python(args: string[], timeoutMs: number) {
  const run = spawnSync(PYTHON, args, {
    cwd: ROOT,
    env: { ...process.env, PYTHONPATH: [GLUE, path.join(GLUE, "jobs")].join(path.delimiter) },
    encoding: "utf8",
    timeout: timeoutMs,
    killSignal: "SIGKILL",
  });
  if (run.status !== 0) {
    throw new Error(
      `python ${args[0]} failed (${run.status ?? run.signal}): ${run.stderr.slice(-2000)}`,
    );
  }
  return run.stdout;
}

/** Every line of every part file under `dir` (Spark writes part-*.txt / part-*.json). */
function lines(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .filter((f) => f.startsWith("part-"))
    .flatMap((f) => fs.readFileSync(path.join(dir, f), "utf8").split("\n"))
    .filter((l) => l.trim() !== "");
}

describe("legacy_members_to_fhir output (generated extract with edge rows) through the FHIR validator", function () {
  this.timeout(300_000);
  let dir: string;
  let rows: number;
  let resources: Json[];
  let quarantine: Json[];

  before(() => {
    // Prepare: the generator's rows, then the edge rows (header dropped).
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "hoth-legacy-fhir-"));
    const extract = path.join(dir, "members.csv");
    python(
      ["-m", "hoth_glue.generate", "legacy", "--members", "40", "--seed", "13", "--out", extract],
      60_000,
    );
    const edge = fs.readFileSync(EDGE, "utf8").split("\n").slice(1).join("\n");
    fs.appendFileSync(extract, edge);
    rows = fs.readFileSync(extract, "utf8").trim().split("\n").length - 1;
    // Act: the job's own entry point, as Glue runs it.
    python(
      [
        path.join(GLUE, "jobs", "legacy_members_to_fhir.py"),
        ...["--run_id", "run-fhir-validation", "--org", "acme", "--ingest_date", "2026-11-24"],
        ...["--input_path", extract, "--landing_path", path.join(dir, "landing")],
        ...[
          "--quarantine_path",
          path.join(dir, "quarantine"),
          "--report_path",
          path.join(dir, "reports"),
        ],
      ],
      240_000,
    );
    resources = ["Patient", "Coverage"].flatMap((t) =>
      lines(path.join(dir, "landing", t)).map((l) => JSON.parse(l) as Json),
    );
    quarantine = lines(path.join(dir, "quarantine", "legacy")).map((l) => JSON.parse(l) as Json);
  });

  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("converts or quarantines (with a reason) every row, edge rows included", () => {
    const patients = resources.filter((r) => r.resourceType === "Patient").length;
    const coverages = resources.filter((r) => r.resourceType === "Coverage").length;
    assert.equal(patients, coverages);
    assert.equal(patients + quarantine.length, rows);
    assert.ok(quarantine.every((q) => typeof q.reason === "string" && q.reason !== ""));
    assert.equal(rows, 55);
  });

  it("writes only resources that pass the validator POST /members uses (every resource passes)", () => {
    const failures: string[] = [];
    for (const r of resources) {
      const issues = validateMember(r);
      // Label by resource type and issue, never by a value from the extract.
      for (const i of issues)
        failures.push(`${r.resourceType}: ${i.expression?.[0]} (${i.code}: ${i.diagnostics})`);
    }
    assert.deepEqual([...new Set(failures)].sort(), []);
  });

  it("quarantines the impossible dates of the edge rows instead of writing them", () => {
    const written = new Set(
      resources
        .filter((r) => r.resourceType === "Patient")
        .map((r) => ((r.identifier as Json[])[0] as Json).value),
    );
    for (const id of ["E006", "E007", "E008", "E012", "E013"]) {
      assert.ok(!written.has(id), `edge row ${id} was converted`);
    }
    assert.ok(written.has("E009"), "29 February 2000 is a real date");
  });
});
