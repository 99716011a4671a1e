import * as fs from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";

import program = require("../index");

import { parseStackConfig } from "../contracts/config";
import { plain, type Recorded, recorded, settle, stackConfig, useStack } from "../test/harness";

/**
 * `npm run plan -- <stack>`: an offline preview. Runs the program for every
 * stack under Pulumi's runtime mocks, prints the chosen stack's resource tree
 * (component, type, name) with the settings that differ between stacks and a
 * total count, and writes a Mermaid diagram of the components and the data
 * that flows between them (derived from which component's resources consume
 * which other component's ARNs and ids) to docs/architecture.md and README.md.
 */

const STACKS = ["dev", "test", "prod"];
const ROOT = path.join(__dirname, "..");

interface Node {
  name: string;
  type: string;
  custom: boolean;
  protect: boolean;
  children: Node[];
}

interface Internals {
  __name: string;
  __protect?: boolean;
  __pulumiType: string;
  __childResources?: Set<pulumi.Resource>;
}

function tree(r: pulumi.Resource): Node {
  const i = r as unknown as Internals;
  return {
    name: i.__name,
    type: i.__pulumiType,
    custom: pulumi.CustomResource.isInstance(r),
    protect: Boolean(i.__protect),
    children: [...(i.__childResources ?? [])].map(tree),
  };
}

async function run(stack: string) {
  useStack(stack);
  const platform = program.compose(parseStackConfig(stack, stackConfig(stack)));
  await settle();
  return { platform, resources: [...recorded] };
}

/** Identity of a resource across stacks: its type and its name with the stack's prefix taken out. */
const key = (r: { type: string; name: string }) =>
  `${r.type}|${r.name.replace(/^hoth-(dev|test|prod)$/, "hoth-<stack>")}`;

/** Leaf values of an input object, by dotted path (JSON strings are opened up). */
function leaves(
  value: unknown,
  prefix = "",
  out: Record<string, string> = {},
): Record<string, string> {
  let v = plain(value);
  if (typeof v === "string" && /^[[{]/.test(v)) {
    try {
      v = JSON.parse(v);
    } catch {
      // a plain string that starts with a bracket
    }
  }
  if (v && typeof v === "object") {
    for (const [k, child] of Object.entries(v)) leaves(child, prefix ? `${prefix}.${k}` : k, out);
  } else {
    out[prefix] = String(v);
  }
  return out;
}

/** Settings of one resource whose values differ between stacks (names aside). */
function differing(r: Recorded, all: Map<string, Map<string, Recorded>>): string[] {
  const normalise = (stack: string, s: string) => s.replaceAll(`hoth-${stack}`, "hoth-<stack>");
  const per = STACKS.map((s) => {
    const twin = all.get(s)?.get(key(r));
    return twin ? leaves(twin.inputs) : {};
  });
  const keys = new Set(per.flatMap((l) => Object.keys(l)));
  return [...keys]
    .filter((k) => new Set(per.map((l, i) => normalise(STACKS[i], l[k] ?? "∅"))).size > 1)
    .filter((k) => !k.startsWith("__"))
    .sort();
}

function printTree(n: Node, differs: (n: Node) => boolean, depth = 0): void {
  const pad = "  ".repeat(depth);
  const extra = [n.protect ? "protected" : "", n.custom && differs(n) ? "differs by stack" : ""]
    .filter(Boolean)
    .join(", ");
  console.log(`${pad}${n.custom ? "" : "▸ "}${n.type}  ${n.name}${extra ? `  [${extra}]` : ""}`);
  for (const c of n.children) printTree(c, differs, depth + 1);
}

/** A value for the table: absent says so, long values are cut. */
function cell(value: string | undefined): string {
  if (value === undefined) return "(not set)";
  return value.length > 48 ? `${value.slice(0, 45)}...` : value;
}

function printTable(header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) => `| ${r.map((c, i) => c.padEnd(widths[i])).join(" | ")} |`;
  console.log(line(header));
  console.log(`|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`);
  for (const r of rows) console.log(line(r));
}

function count(n: Node, custom: boolean): number {
  const self = n.custom === custom ? 1 : 0;
  return self + n.children.reduce((a, c) => a + count(c, custom), 0);
}

/** Component edges: D -> C when a resource of C consumes an ARN or id of a resource of D. */
function mermaid(components: Node[], resources: Recorded[]): string {
  const owner = new Map<string, string>();
  const walk = (n: Node, comp: string) => {
    owner.set(n.name, comp);
    for (const c of n.children) walk(c, comp);
  };
  // Components are identified by type: every instance here is named "hoth".
  for (const c of components) walk(c, c.type);
  // ARNs are matched inside values (policies, `${arn}:*`); ids only whole, and
  // only ids that name one resource (mocks give some children their parent's id).
  const arns = new Map<string, Recorded>();
  const ids = new Map<string, Recorded[]>();
  for (const r of resources) {
    if (typeof r.state.arn === "string" && r.state.arn.startsWith("arn:")) arns.set(r.state.arn, r);
    if (r.id.length > 8) ids.set(r.id, [...(ids.get(r.id) ?? []), r]);
  }
  const sources = (value: string): Recorded[] => [
    ...[...arns].filter(([arn]) => value.includes(arn)).map(([, r]) => r),
    ...(ids.get(value)?.length === 1 ? (ids.get(value) as Recorded[]) : []),
  ];
  const edges = new Map<string, Set<string>>();
  for (const r of resources) {
    const to = owner.get(r.name);
    if (!to) continue;
    for (const value of Object.values(leaves(r.inputs))) {
      for (const source of sources(value)) {
        const from = owner.get(source.name);
        if (from && from !== to) {
          const label = source.type.split(":")[1].replace("/", " ");
          const k = `${from}|${to}`;
          edges.set(k, (edges.get(k) ?? new Set()).add(label));
        }
      }
    }
  }
  const id = (name: string) => name.replace(/[^A-Za-z0-9]/g, "_");
  const lines = ["flowchart LR"];
  for (const c of components) lines.push(`  ${id(c.type)}["${c.type}<br/>${c.name}"]`);
  for (const [k, labels] of [...edges].sort()) {
    const [from, to] = k.split("|");
    lines.push(`  ${id(from)} -->|${[...labels].sort().join(", ")}| ${id(to)}`);
  }
  return lines.join("\n");
}

function writeDiagram(diagram: string): void {
  const block = `\`\`\`mermaid\n${diagram}\n\`\`\``;
  fs.mkdirSync(path.join(ROOT, "docs"), { recursive: true });
  fs.writeFileSync(
    path.join(ROOT, "docs", "architecture.md"),
    `# Components and data flow\n\nGenerated by \`npm run plan\` from the program under mocks: an arrow\nmeans the target component's resources consume ARNs or ids of the source's.\n\n${block}\n`,
  );
  const readme = path.join(ROOT, "README.md");
  if (fs.existsSync(readme)) {
    const text = fs.readFileSync(readme, "utf8");
    const re = /(<!-- plan:diagram:start -->\n)[\s\S]*?(\n<!-- plan:diagram:end -->)/;
    if (re.test(text)) fs.writeFileSync(readme, text.replace(re, `$1${block}$2`));
  }
}

async function main() {
  const stack = process.argv[2] ?? "dev";
  if (!STACKS.includes(stack))
    throw new Error(`Unknown stack '${stack}'; one of ${STACKS.join(", ")}`);
  const all = new Map<string, Map<string, Recorded>>();
  for (const s of [...STACKS.filter((x) => x !== stack), stack]) {
    const { resources } = await run(s);
    all.set(s, new Map(resources.map((r) => [key(r), r])));
  }
  // The chosen stack ran last: its component objects are the live ones.
  const { platform } = await run(stack);
  const resources = [...recorded];
  const roots = Object.values(platform).map((r) => tree(r as pulumi.Resource));
  const byKey = new Map(resources.map((r) => [key(r), r]));
  const differs = (n: Node) => {
    const r = byKey.get(key(n));
    return r ? differing(r, all).length > 0 : false;
  };

  console.log(`HOTH plan for stack '${stack}' (offline, under Pulumi mocks)\n`);
  for (const root of roots) printTree(root, differs);
  const custom = roots.reduce((a, r) => a + count(r, true), 0);
  const components = roots.reduce((a, r) => a + count(r, false), 0);
  console.log(
    `\n${custom + components} resources: ${custom} custom (incl. providers), ${components} components`,
  );
  console.log(
    `per stack: ${STACKS.map((s) => `${s} ${all.get(s)?.size ?? 0}`).join(", ")} (custom resources and components)`,
  );

  // What differs between the stacks, setting by setting (names with the stack aside).
  const rows: string[][] = [];
  const keys = new Set(STACKS.flatMap((s) => [...(all.get(s)?.keys() ?? [])]));
  for (const k of [...keys].sort()) {
    const twins = STACKS.map((s) => all.get(s)?.get(k));
    const present = twins.find((t): t is Recorded => t !== undefined) as Recorded;
    const name = `${present.type.split(":").slice(1).join(":").split(":")[0]} ${present.name.replace(/^hoth-(dev|test|prod)$/, "hoth-<stack>")}`;
    if (twins.some((t) => !t)) {
      rows.push([name, "(resource)", ...twins.map((t) => (t ? "yes" : "no"))]);
      continue;
    }
    for (const setting of differing(present, all)) {
      rows.push([
        name,
        setting,
        ...twins.map((t, i) =>
          cell(
            leaves((t as Recorded).inputs)[setting]?.replaceAll(
              `hoth-${STACKS[i]}`,
              "hoth-<stack>",
            ),
          ),
        ),
      ]);
    }
  }
  console.log(`\nSettings that differ between stacks (${rows.length}):\n`);
  printTable(["resource", "setting", ...STACKS], rows);
  writeDiagram(
    mermaid(
      roots.filter((r) => !r.custom),
      resources,
    ),
  );
  console.log(
    "Wrote docs/architecture.md and README.md (Mermaid diagram of components and data flow)",
  );
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
