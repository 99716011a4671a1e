import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as path from "node:path";
import { CreateBucketCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { DEFAULT_SCOPES } from "../local/token";
import { freePort, startMoto } from "./support/moto";

const ROOT = path.join(__dirname, "..");
const TSX = path.join(ROOT, "node_modules", ".bin", "tsx");

function run(script: string, args: string[], env: Record<string, string> = {}) {
  return spawnSync(TSX, [path.join(ROOT, "local", script), ...args], {
    encoding: "utf8",
    env: { ...process.env, ...env },
    timeout: 60_000,
  });
}

describe("the local command-line tools", () => {
  it("npm run token -- --help documents every flag and prints no token", () => {
    const out = run("token.ts", ["--help"], { HOTH_OKTA_PORT: "1" });
    assert.equal(out.status, 0);
    for (const flag of ["--scopes", "--org", "--help"]) assert.ok(out.stdout.includes(flag), flag);
    assert.ok(out.stdout.includes(DEFAULT_SCOPES));
    assert.ok(!/eyJ/.test(out.stdout), "no token");
  });

  it("npm run token refuses an unknown flag, naming it", () => {
    const out = run("token.ts", ["--scope", "system/Patient.r"]);
    assert.equal(out.status, 2);
    assert.match(out.stderr, /^hoth token: Unknown option '--scope'/);
  });

  it("npm run lake refuses an unknown flag and says when nothing answers", async () => {
    const unknown = run("lake.ts", ["ls", "--stak", "dev"]);
    assert.equal(unknown.status, 2);
    assert.match(unknown.stderr, /^hoth lake: Unknown option '--stak'/);
    const down = run("lake.ts", ["ls"], { HOTH_AWS_PORT: String(await freePort()) });
    assert.equal(down.status, 1);
    assert.match(
      down.stderr,
      /^hoth lake: nothing answers on http:\/\/127\.0\.0\.1:\d+; is npm start running/,
    );
  });

  it("npm run lake names a missing key, and ls ends quietly when its reader stops (| head)", async () => {
    const url = await startMoto();
    const port = new URL(url).port;
    const s3 = new S3Client({ forcePathStyle: true });
    await s3.send(new CreateBucketCommand({ Bucket: "hoth-dev-lake" })).catch(() => undefined);
    // More than one page (1,000 keys): the second page is written after head has gone.
    for (let i = 0; i < 1100; i += 50) {
      await Promise.all(
        Array.from({ length: 50 }, (_, j) =>
          s3.send(
            new PutObjectCommand({
              Bucket: "hoth-dev-lake",
              Key: `cli-test/${i + j}.txt`,
              Body: "x",
            }),
          ),
        ),
      );
    }
    const missing = run("lake.ts", ["get", "cli-test/none.txt"], { HOTH_AWS_PORT: port });
    assert.equal(missing.status, 1);
    assert.equal(
      missing.stderr.trim(),
      "hoth lake: no object s3://hoth-dev-lake/cli-test/none.txt",
    );
    const piped = spawnSync(
      "bash",
      [
        "-c",
        `"${TSX}" "${path.join(ROOT, "local", "lake.ts")}" ls cli-test/ | head -1; exit \${PIPESTATUS[0]}`,
      ],
      { encoding: "utf8", env: { ...process.env, HOTH_AWS_PORT: port }, timeout: 60_000 },
    );
    assert.equal(piped.status, 0, piped.stderr);
    assert.equal(piped.stderr, "");
    assert.match(piped.stdout, /^\s+1 {2}cli-test\/\d+\.txt\n$/);
  });
});
