import { type ChildProcess, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";

/**
 * A real moto server (the project's .venv) on loopback, started once per test
 * run and shared; each test creates its own uniquely named resources.
 */

const ROOT = path.join(__dirname, "..");
const MOTO = path.join(ROOT, ".venv", "bin", "moto_server");

let server: { url: string; proc: ChildProcess } | undefined;
let starting: Promise<string> | undefined;

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

async function waitForHttp(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const res = await fetch(`${url}/moto-api/data.json`);
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`moto server did not answer at ${url}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Starts moto (once) and points the AWS SDK at it; returns its URL. */
export function startMoto(): Promise<string> {
  if (!starting) {
    starting = (async () => {
      if (!fs.existsSync(MOTO)) {
        throw new Error(`${MOTO} is missing: run 'npm run setup' to create the Python environment`);
      }
      const port = await freePort();
      const url = `http://127.0.0.1:${port}`;
      const proc = spawn(MOTO, ["-H", "127.0.0.1", "-p", String(port)], { stdio: "ignore" });
      server = { url, proc };
      await waitForHttp(url, 20_000);
      Object.assign(process.env, {
        AWS_ENDPOINT_URL: url,
        AWS_ACCESS_KEY_ID: "testing",
        AWS_SECRET_ACCESS_KEY: "testing",
        AWS_REGION: "us-east-1",
        AWS_DEFAULT_REGION: "us-east-1",
      });
      return url;
    })();
  }
  return starting;
}

export function stopMoto(): void {
  server?.proc.kill("SIGTERM");
  server = undefined;
  starting = undefined;
}
