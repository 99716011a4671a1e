import * as fs from "node:fs";
import * as path from "node:path";
import { bundleHandler, HANDLERS, type HandlerName } from "../contracts/bundle";

/** Writes the same bundles Pulumi ships to dist/<function>/index.js. */
const names = (
  process.argv.slice(2).length ? process.argv.slice(2) : Object.keys(HANDLERS)
) as HandlerName[];
for (const name of names) {
  if (!(name in HANDLERS))
    throw new Error(`Unknown function '${name}'; one of ${Object.keys(HANDLERS).join(", ")}`);
  const { code, sourceMap } = bundleHandler(name);
  const dir = path.join(__dirname, "..", "dist", name);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, "index.js"), code);
  fs.writeFileSync(path.join(dir, "index.js.map"), sourceMap);
  console.log(`dist/${name}/index.js  ${code.length} bytes`);
}
