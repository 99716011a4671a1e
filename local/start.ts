import { spawnSync } from "node:child_process";
import * as net from "node:net";
import * as path from "node:path";
import { ROUTES } from "../contracts/routes";
import { LOCAL_CLIENTS } from "./okta";
import { PYTHON } from "./python";
import { type LocalStack, startStack } from "./stack";

/**
 * `npm start [-- --stack dev|test|prod]`: the platform on this machine.
 * Ports: HOTH_API_PORT (default 4566) and HOTH_OKTA_PORT (default 4567),
 * matching postman/environments/local.postman_environment.json, and
 * HOTH_AWS_PORT (default 4568) for the AWS emulator (`npm run lake`), and
 * HOTH_BULK_PORT (default 4569) for the local Bulk Data source (the dev
 * stack's source `local`).
 */

const ROOT = path.join(__dirname, "..");

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

function fail(message: string): never {
  console.error(`hoth: ${message}`);
  process.exit(1);
}

function requireTool(cmd: string, args: string[], hint: string) {
  const run = spawnSync(cmd, args, { encoding: "utf8" });
  if (run.error || run.status !== 0) fail(`${cmd} is required: ${hint}`);
}

/** Refuses a taken port up front, naming it and the variable that moves it. */
function checkPort(port: number, variable: string): Promise<void> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once("error", () =>
      fail(`port ${port} is taken (another npm start?); free it or set ${variable}=<port>`),
    );
    s.listen(port, "127.0.0.1", () => s.close(() => resolve()));
  });
}

/** One progress line that keeps time while something slow starts. */
function progress(started: number) {
  const tty = process.stdout.isTTY;
  let current = "";
  const timer = setInterval(() => {
    if (tty) process.stdout.write(`\rhoth: ${current} (${elapsed(started)})   `);
  }, 250);
  return {
    step(line: string) {
      if (tty && current) process.stdout.write("\n");
      current = line;
      if (!tty) console.log(`hoth: ${line} (${elapsed(started)})`);
    },
    done() {
      clearInterval(timer);
      if (tty) process.stdout.write("\n");
    },
  };
}

const elapsed = (started: number) => `${((Date.now() - started) / 1000).toFixed(1)} s`;

async function main() {
  const started = Date.now();
  requireTool("java", ["-version"], "install Java 17 (local Spark runs the Glue jobs)");
  requireTool(PYTHON, ["--version"], "run npm run setup to create the Python environment");
  const apiPort = Number(process.env.HOTH_API_PORT ?? 4566);
  const oktaPort = Number(process.env.HOTH_OKTA_PORT ?? 4567);
  const awsPort = Number(process.env.HOTH_AWS_PORT ?? 4568);
  const bulkPort = Number(process.env.HOTH_BULK_PORT ?? 4569);
  await checkPort(apiPort, "HOTH_API_PORT");
  await checkPort(oktaPort, "HOTH_OKTA_PORT");
  await checkPort(awsPort, "HOTH_AWS_PORT");
  await checkPort(bulkPort, "HOTH_BULK_PORT");

  const show = progress(started);
  let stack: LocalStack | undefined;
  let stopping = false;
  const stop = async (code: number) => {
    if (stopping) return;
    stopping = true;
    show.done();
    console.log("\nhoth: stopping");
    await stack?.stop();
    process.exit(code);
  };
  process.once("SIGINT", () => stop(0));
  process.once("SIGTERM", () => stop(0));
  try {
    stack = await startStack({
      stack: arg("stack", "dev"),
      apiPort,
      oktaPort,
      awsPort,
      bulkPort,
      log: (l) => show.step(l),
      onMigrationEvent: (l) => console.log(`hoth: ${l}`),
    });
    show.step("waiting for Spark to warm up");
    await stack.sparkReady;
  } catch (error) {
    show.done();
    console.error(`hoth: the local stack did not start: ${(error as Error).message}`);
    await stop(1);
    return;
  }
  show.done();
  const client = LOCAL_CLIENTS[0];
  const routes = ROUTES.map((r) => `${r.method} ${r.path}`);
  console.log(`
HOTH local stack ready in ${elapsed(started)} (stack ${stack.stack})
  API            ${stack.apiUrl}
                 ${routes.join(", ")}
  Okta (local)   ${stack.issuer}   token endpoint ${stack.tokenUrl}
  AWS (moto)     ${stack.motoUrl}   lake bucket s3://${stack.lakeBucket}
  Bulk source    ${stack.bulkSource.baseUrl}   (the stack's bulk source 'local'; HOTH's JWKS: ${stack.apiUrl}/.well-known/jwks.json)
  Glue log       ${path.relative(ROOT, stack.glueLog)}

Get a token:   TOKEN=$(npm run --silent token)   (npm run token -- --help for scopes and organisation)
Call the API:  curl -X POST ${stack.apiUrl}/health -H "Authorization: Bearer $TOKEN" -H "X-Client-Id: ${client.clientId}"
The lake:      npm run lake -- put <file> landing/${client.org}/extracts/members.csv   |   npm run lake -- ls curated/
Postman:       import postman/hoth.postman_collection.json and postman/environments/local.postman_environment.json;
               the local environment's clientSecret is its client's local-only secret:
${LOCAL_CLIENTS.map((c) => `                 ${c.clientId} (organisation ${c.org}): ${c.secret}`).join("\n")}
The authorizer warns "HTTPS check is disabled" on its first token: the local
Okta is plain http on loopback, allowed only here (OKTA_ALLOW_INSECURE_ISSUER,
which no deployed stack sets).
Ctrl-C stops everything.
`);
}

main();
