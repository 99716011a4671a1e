import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";

const ROOT = path.join(__dirname, "..");

function tsFiles(dir: string): string[] {
  return fs.readdirSync(path.join(ROOT, dir), { withFileTypes: true }).flatMap((d) => {
    const rel = path.join(dir, d.name);
    if (d.isDirectory()) return ["generated", "node_modules"].includes(d.name) ? [] : tsFiles(rel);
    return d.name.endsWith(".ts") ? [rel] : [];
  });
}

/** Relative imports of a file, resolved to repository paths. */
function imports(file: string): string[] {
  const text = fs.readFileSync(path.join(ROOT, file), "utf8");
  return [...text.matchAll(/(?:from|import|require)\s*\(?\s*["'](\.{1,2}\/[^"']+)["']/g)].map((m) =>
    path.normalize(path.join(path.dirname(file), m[1])),
  );
}

describe("layout", () => {
  it("handlers, the local stack, scripts, benches and the policy pack import nothing from components/ (shared code is in contracts/)", () => {
    const offenders = ["handlers", "local", "scripts", "bench", "policy", "contracts"]
      .flatMap(tsFiles)
      .flatMap((f) =>
        imports(f)
          .filter((i) => i.startsWith("components/"))
          .map((i) => `${f} -> ${i}`),
      );
    assert.deepEqual(offenders, []);
  });

  it("keeps contracts/ pure of Pulumi and of the handlers", () => {
    const offenders = tsFiles("contracts").filter((f) => {
      const text = fs.readFileSync(path.join(ROOT, f), "utf8");
      return /@pulumi\//.test(text) || imports(f).some((i) => i.startsWith("handlers/"));
    });
    assert.deepEqual(offenders, []);
  });
});
