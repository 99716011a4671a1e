import * as path from "node:path";
import * as esbuild from "esbuild";

/** Lambda entry points, bundled one per function. */
export const HANDLERS = {
  app: "handlers/app.ts",
  authorizer: "handlers/authorizer.ts",
  registryExport: "handlers/registryExport.ts",
  bulk: "handlers/bulk.ts",
} as const;
export type HandlerName = keyof typeof HANDLERS;

export interface Bundle {
  code: string;
  sourceMap: string;
}

const ROOT = path.join(__dirname, "..");
const built = new Map<string, Bundle>();

/**
 * Bundles one handler for the `nodejs22.x` runtime: a single minified
 * CommonJS file with everything it imports (the AWS SDK included, so the
 * deployed code is exactly what was tested) and an external source map,
 * used with NODE_OPTIONS=--enable-source-maps.
 */
export function bundleHandler(
  name: HandlerName,
  version = process.env.HOTH_VERSION ?? "dev",
): Bundle {
  const key = `${name}@${version}`;
  const cached = built.get(key);
  if (cached) return cached;
  const result = esbuild.buildSync({
    entryPoints: [path.join(ROOT, HANDLERS[name])],
    absWorkingDir: ROOT,
    bundle: true,
    platform: "node",
    target: "node22",
    format: "cjs",
    minify: true,
    sourcemap: "external",
    sourcesContent: false,
    legalComments: "none",
    outfile: "index.js",
    write: false,
    define: { "process.env.HOTH_VERSION": JSON.stringify(version) },
    logLevel: "silent",
  });
  const file = (suffix: string) => {
    const f = result.outputFiles.find((o) => o.path.endsWith(suffix));
    if (!f) throw new Error(`esbuild produced no ${suffix} for ${name}`);
    return f.text;
  };
  const bundle = { code: file("index.js"), sourceMap: file("index.js.map") };
  built.set(key, bundle);
  return bundle;
}
