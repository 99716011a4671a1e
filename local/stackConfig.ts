import * as fs from "node:fs";
import * as path from "node:path";
import { parse } from "yaml";

/** A stack's Pulumi.<stack>.yaml, flattened the way Pulumi hands config to the program. */
export function stackConfigFile(stack: string): Record<string, string> {
  const file = path.join(__dirname, "..", `Pulumi.${stack}.yaml`);
  if (!fs.existsSync(file))
    throw new Error(`No stack '${stack}': ${file} does not exist (dev, test or prod)`);
  const doc = parse(fs.readFileSync(file, "utf8")) as { config: Record<string, unknown> };
  return Object.fromEntries(
    Object.entries(doc.config).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)]),
  );
}
