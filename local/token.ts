import { fetchToken, LOCAL_CLIENTS } from "./okta";

/** `npm run token -- --scopes "system/Patient.cruds" --org acme`: prints a local access token. */
function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : undefined;
}

async function main() {
  const org = arg("org") ?? "acme";
  const client = LOCAL_CLIENTS.find((c) => c.org === org);
  if (!client) {
    console.error(
      `No local client for org '${org}'; one of ${LOCAL_CLIENTS.map((c) => c.org).join(", ")}`,
    );
    process.exit(1);
  }
  const tokenUrl = `http://127.0.0.1:${process.env.HOTH_OKTA_PORT ?? 4567}/token`;
  try {
    console.log(
      await fetchToken(tokenUrl, client, arg("scopes") ?? "system/Patient.cruds system/Task.cruds"),
    );
  } catch (e) {
    console.error(
      `Could not get a token from ${tokenUrl} (${(e as Error).message}); is npm start running?`,
    );
    process.exit(1);
  }
}

main();
