import { parseArgs } from "node:util";
import { fetchToken, LOCAL_CLIENTS } from "./okta";

/** `npm run token -- [--scopes "..."] [--org acme]`: prints an access token from the local Okta. */

export const DEFAULT_SCOPES =
  "system/Patient.cruds system/Coverage.cruds system/Task.cruds system/Binary.c";

const USAGE = `usage: npm run token -- [--scopes "<scope> ..."] [--org <org>]

Prints an access token from the local Okta of a running \`npm start\`
(client credentials of the organisation's local client).

  --scopes  space-separated SMART scopes to ask for
            (default: "${DEFAULT_SCOPES}")
  --org     organisation of the token: ${LOCAL_CLIENTS.map((c) => c.org).join(" or ")} (default: acme)
  --help    this text

The local Okta listens on HOTH_OKTA_PORT (default 4567).`;

function options() {
  try {
    return parseArgs({
      options: {
        scopes: { type: "string", default: DEFAULT_SCOPES },
        org: { type: "string", default: "acme" },
        help: { type: "boolean", default: false },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (e) {
    console.error(`hoth token: ${(e as Error).message}\n\n${USAGE}`);
    process.exit(2);
  }
}

async function main() {
  const { scopes, org, help } = options();
  if (help) {
    console.log(USAGE);
    return;
  }
  const client = LOCAL_CLIENTS.find((c) => c.org === org);
  if (!client) {
    console.error(
      `hoth token: no local client for org '${org}'; one of ${LOCAL_CLIENTS.map((c) => c.org).join(", ")}`,
    );
    process.exit(2);
  }
  const tokenUrl = `http://127.0.0.1:${process.env.HOTH_OKTA_PORT ?? 4567}/token`;
  try {
    console.log(await fetchToken(tokenUrl, client, scopes as string));
  } catch (e) {
    console.error(
      `hoth token: no token from ${tokenUrl} (${(e as Error).message}); is npm start running?`,
    );
    process.exit(1);
  }
}

if (require.main === module) main();
