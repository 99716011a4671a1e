import "./node22";
import * as fs from "node:fs";
import {
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import { parseStackConfig } from "../components/config";
import { stackConfigFile } from "./stackConfig";

/**
 * `npm run lake -- put FILE KEY | get KEY | ls [PREFIX]` [--stack dev]: the
 * running local stack's data-lake bucket (moto on HOTH_AWS_PORT, default 4568).
 */
function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

async function main() {
  const [command, a, b] = process.argv
    .slice(2)
    .filter((x, i, all) => !x.startsWith("--") && all[i - 1] !== "--stack");
  const stack = arg("stack", "dev");
  const Bucket = `${parseStackConfig(stack, stackConfigFile(stack)).prefix}-lake`;
  const endpoint = `http://127.0.0.1:${process.env.HOTH_AWS_PORT ?? 4568}`;
  const s3 = new S3Client({
    endpoint,
    forcePathStyle: true,
    region: "us-east-1",
    credentials: { accessKeyId: "testing", secretAccessKey: "testing" },
  });
  if (command === "put" && a && b) {
    await s3.send(new PutObjectCommand({ Bucket, Key: b, Body: fs.readFileSync(a) }));
    console.log(`s3://${Bucket}/${b}`);
  } else if (command === "get" && a) {
    const out = await s3.send(new GetObjectCommand({ Bucket, Key: a }));
    process.stdout.write(
      await (out.Body as { transformToString(): Promise<string> }).transformToString(),
    );
  } else if (command === "ls") {
    let ContinuationToken: string | undefined;
    do {
      const page = await s3.send(
        new ListObjectsV2Command({ Bucket, Prefix: a ?? "", ContinuationToken }),
      );
      for (const o of page.Contents ?? []) console.log(`${String(o.Size).padStart(10)}  ${o.Key}`);
      ContinuationToken = page.NextContinuationToken;
    } while (ContinuationToken);
  } else {
    console.error(
      "usage: npm run lake -- put FILE KEY | get KEY | ls [PREFIX]  [--stack dev|test|prod]",
    );
    process.exit(2);
  }
}

main().catch((e: Error) => {
  console.error(`hoth: ${e.name}: ${e.message} (is npm start running on HOTH_AWS_PORT?)`);
  process.exit(1);
});
