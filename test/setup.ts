import "../local/node22";
import * as fs from "node:fs";
import * as path from "node:path";
import { stopLocalStack } from "./support/localStack";
import { stopMoto } from "./support/moto";

// Mocks and config are installed per test by test/harness.ts#useStack; this
// file holds what the whole run shares.
process.env.AWS_REGION ??= "us-east-1";
process.env.POWERTOOLS_DEV = "false";

// The handlers' structured logs (Powertools JSON lines, also those of the
// local stack's Lambda workers) go to reports/handler-logs.jsonl, not into the
// test output; tests that assert on logs capture them first (captureOutput).
const HANDLER_LOGS = path.join(__dirname, "..", "reports", "handler-logs.jsonl");
fs.mkdirSync(path.dirname(HANDLER_LOGS), { recursive: true });
for (const stream of [process.stdout, process.stderr]) {
  const write = stream.write.bind(stream) as (...args: unknown[]) => boolean;
  stream.write = ((chunk: unknown, ...rest: unknown[]) => {
    const text = typeof chunk === "string" ? chunk : Buffer.isBuffer(chunk) ? chunk.toString() : "";
    // @okta/jwt-verifier's warning for the local stack's plain-http issuer on
    // loopback (OKTA_ALLOW_INSECURE_ISSUER, set only by the local stack): expected.
    if (text.startsWith("Warning: HTTPS check is disabled.")) return true;
    if (text.startsWith('{"level":"')) {
      fs.appendFileSync(HANDLER_LOGS, text.endsWith("\n") ? text : `${text}\n`);
      return true;
    }
    return write(chunk, ...rest);
  }) as typeof stream.write;
}

export const mochaHooks = {
  async afterAll() {
    await stopLocalStack();
    await stopMoto();
  },
};
