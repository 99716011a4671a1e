import * as net from "node:net";
import { type PyProcess, spawnPython } from "./python";

/**
 * A real moto server (the project's .venv) on loopback, started once per
 * process and shared; each test creates its own uniquely named resources.
 */

let server: PyProcess | undefined;
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

/** Starts moto (once, on `port` or a free one) and points the AWS SDK at it; returns its URL. */
export function startMoto(port?: number): Promise<string> {
  if (!starting) {
    starting = (async () => {
      port ??= await freePort();
      server = spawnPython("moto", "moto_server.py", [String(port)]);
      await server.waitFor("listening", 30_000);
      const url = `http://127.0.0.1:${port}`;
      Object.assign(process.env, {
        AWS_ENDPOINT_URL: url,
        AWS_ACCESS_KEY_ID: "testing",
        AWS_SECRET_ACCESS_KEY: "testing",
        AWS_REGION: "us-east-1",
        AWS_DEFAULT_REGION: "us-east-1",
      });
      return url;
    })();
    starting.catch(() => {
      starting = undefined;
    });
  }
  return starting;
}

export async function stopMoto(): Promise<void> {
  const s = server;
  server = undefined;
  starting = undefined;
  await s?.stop();
}
