import "./node22";
import * as fs from "node:fs";
import { parseArgs } from "node:util";
import {
  GetObjectCommand,
  ListObjectsV2Command,
  NoSuchKey,
  PutObjectCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import { parseStackConfig } from "../contracts/config";
import { stackConfigFile } from "./stackConfig";

/**
 * `npm run lake -- put FILE KEY | get KEY | ls [PREFIX]` [--stack dev]: the
 * running local stack's data-lake bucket (moto on HOTH_AWS_PORT, default 4568).
 */

const USAGE = `usage: npm run lake -- put FILE KEY | get KEY | ls [PREFIX]  [--stack dev|test|prod]

Reads and writes the data-lake bucket of a running \`npm start\`
(moto on HOTH_AWS_PORT, default 4568).

  put FILE KEY   upload a local file to KEY
  get KEY        print an object
  ls [PREFIX]    list objects (size and key)
  --stack        the stack whose bucket to use (default: dev)
  --help         this text`;

// `npm run lake -- ls | head` closes the pipe early: that is not an error.
process.stdout.on("error", (e: NodeJS.ErrnoException) => {
  if (e.code === "EPIPE") process.exit(0);
  throw e;
});

function options() {
  try {
    return parseArgs({
      options: {
        stack: { type: "string", default: "dev" },
        help: { type: "boolean", default: false },
      },
      strict: true,
      allowPositionals: true,
    });
  } catch (e) {
    console.error(`hoth lake: ${(e as Error).message}\n\n${USAGE}`);
    process.exit(2);
  }
}

async function main() {
  const { values, positionals } = options();
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const [command, a, b] = positionals;
  const stack = values.stack as string;
  const Bucket = `${parseStackConfig(stack, stackConfigFile(stack)).prefix}-lake`;
  const endpoint = `http://127.0.0.1:${process.env.HOTH_AWS_PORT ?? 4568}`;
  const s3 = new S3Client({
    endpoint,
    forcePathStyle: true,
    region: "us-east-1",
    credentials: { accessKeyId: "testing", secretAccessKey: "testing" },
  });
  try {
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
        for (const o of page.Contents ?? [])
          console.log(`${String(o.Size).padStart(10)}  ${o.Key}`);
        ContinuationToken = page.NextContinuationToken;
      } while (ContinuationToken);
    } else {
      console.error(USAGE);
      process.exit(2);
    }
  } catch (e) {
    if (e instanceof NoSuchKey) {
      console.error(`hoth lake: no object s3://${Bucket}/${a}`);
      process.exit(1);
    }
    const err = e as Error & { code?: string };
    const down = err.code === "ECONNREFUSED" || err.name === "ECONNREFUSED";
    console.error(
      down
        ? `hoth lake: nothing answers on ${endpoint}; is npm start running (HOTH_AWS_PORT)?`
        : `hoth lake: ${err.name}: ${err.message}`,
    );
    process.exit(1);
  }
}

main();
