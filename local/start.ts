import { spawnSync } from "node:child_process";
import { LOCAL_CLIENTS } from "./okta";
import { startStack } from "./stack";

/**
 * `npm start [-- --stack dev|test|prod]`: the platform on this machine.
 * Ports: HOTH_API_PORT (default 4566) and HOTH_OKTA_PORT (default 4567),
 * matching postman/environments/local.postman_environment.json.
 */

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

function requireTool(cmd: string, args: string[], hint: string) {
  const run = spawnSync(cmd, args, { encoding: "utf8" });
  if (run.error || run.status !== 0) {
    console.error(`hoth: ${cmd} is required: ${hint}`);
    process.exit(1);
  }
}

async function main() {
  const started = Date.now();
  requireTool("java", ["-version"], "install Java 17 (local Spark for the Glue jobs)");
  requireTool(
    ".venv/bin/python",
    ["--version"],
    "run npm run setup to create the Python environment",
  );
  const apiPort = Number(process.env.HOTH_API_PORT ?? 4566);
  const oktaPort = Number(process.env.HOTH_OKTA_PORT ?? 4567);
  let stack: Awaited<ReturnType<typeof startStack>>;
  try {
    stack = await startStack({
      stack: arg("stack", "dev"),
      apiPort,
      oktaPort,
      log: (l) => console.log(`hoth: ${l}`),
    });
  } catch (error) {
    const e = error as NodeJS.ErrnoException;
    if (e.code === "EADDRINUSE") {
      console.error(
        `hoth: port ${apiPort} or ${oktaPort} is taken; set HOTH_API_PORT / HOTH_OKTA_PORT`,
      );
    } else {
      console.error(`hoth: the local stack did not start: ${e.message}`);
    }
    process.exit(1);
  }
  const client = LOCAL_CLIENTS[0];
  console.log(`
HOTH local stack ready in ${((Date.now() - started) / 1000).toFixed(1)} s
  API            ${stack.apiUrl}         (POST /health, /members, /migrations ...)
  Okta (local)   ${stack.issuer}          token endpoint ${stack.tokenUrl}
  AWS (moto)     ${stack.motoUrl}          lake bucket ${stack.lakeBucket}

Get a token:     npm run token -- --scopes "system/Patient.cruds system/Task.cruds" --org ${client.org}
Call the API:    curl -X POST ${stack.apiUrl}/health -H "Authorization: Bearer $TOKEN" -H "X-Client-Id: ${client.clientId}"
Postman:         import postman/environments/local.postman_environment.json and set clientSecret
                 to the local-only secret of ${client.clientId}: ${client.secret}
Ctrl-C stops everything.`);
  const stop = async () => {
    console.log("\nhoth: stopping");
    await stack.stop();
    process.exit(0);
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}

main();
