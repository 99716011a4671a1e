import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { parseStackConfig } from "../contracts/config";
import {
  ANSWER_MARGIN_MS,
  ATTEMPTS,
  CONNECTION_TIMEOUT_MS,
  clientOptions,
  MIN_LAMBDA_TIMEOUT_SECONDS,
  REQUEST_TIMEOUT_MS,
} from "../handlers/lib/aws";
import { stackConfig } from "./harness";

const HANDLERS = path.join(__dirname, "..", "handlers");

function sources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((d) => {
    const p = path.join(dir, d.name);
    if (d.isDirectory()) return d.name === "generated" ? [] : sources(p);
    return d.name.endsWith(".ts") ? [p] : [];
  });
}

describe("AWS SDK clients in the handlers", () => {
  it("are all created with clientOptions(): connection and request timeouts and a retry budget", () => {
    const offenders: string[] = [];
    let clients = 0;
    for (const file of sources(HANDLERS)) {
      const text = fs.readFileSync(file, "utf8");
      // The AWS SDK's clients this file imports (not the project's own *Client classes).
      const sdk = new Set(
        [...text.matchAll(/import \{([^}]*)\} from "@aws-sdk\/client-[\w-]+"/g)].flatMap((m) =>
          m[1].split(",").map((n) => n.replace(/^\s*type\s+/, "").trim()),
        ),
      );
      for (const m of text.matchAll(/new (\w+Client)\(([^)]*)/g)) {
        if (!sdk.has(m[1])) continue;
        clients += 1;
        if (!m[2].includes("clientOptions(")) {
          offenders.push(`${path.relative(HANDLERS, file)}: new ${m[1]}(${m[2]})`);
        }
      }
    }
    assert.ok(clients >= 5, `found ${clients} clients`);
    assert.deepEqual(offenders, []);
  });

  it("give up (throw) at their request timeout, and fit, with retries, in every stack's Lambda timeout", () => {
    const o = clientOptions();
    assert.deepEqual(
      [
        o.maxAttempts,
        o.requestHandler.connectionTimeout,
        o.requestHandler.requestTimeout,
        o.requestHandler.throwOnRequestTimeout,
      ],
      [ATTEMPTS, CONNECTION_TIMEOUT_MS, REQUEST_TIMEOUT_MS, true],
    );
    const worst = ATTEMPTS * (CONNECTION_TIMEOUT_MS + REQUEST_TIMEOUT_MS) + ANSWER_MARGIN_MS;
    assert.ok(MIN_LAMBDA_TIMEOUT_SECONDS * 1000 >= worst);
    for (const stack of ["dev", "test", "prod"]) {
      const { lambda } = parseStackConfig(stack, stackConfig(stack));
      assert.ok(lambda.timeoutSeconds * 1000 >= worst, stack);
      assert.ok(lambda.timeoutSeconds <= 29, `${stack}: API Gateway's integration timeout`);
    }
  });
});
