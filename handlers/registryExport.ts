import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import type { Context } from "aws-lambda";
import { clientOptions } from "./lib/aws";
import { Deadline } from "./lib/deadline";
import { requireEnv } from "./lib/env";
import { createLogger } from "./lib/logger";
import { MemberRegistry } from "./lib/registry";

/**
 * The registry export, a task of the migration state machine: writes the
 * committed members of one organisation (the latest version of every
 * Patient and Coverage, as one consistent cut: handlers/lib/registry.ts
 * `exportHeads`) as FHIR NDJSON under `landing/<org>/registry/<runId>/`,
 * where `ingest_fhir` reads them. A registration that was refused, failed or
 * timed out never committed, so it is not in the table and not exported.
 * Parts of at most PART_LINES lines keep memory flat however large the registry.
 */

export const PART_LINES = 1000;
const ORG = /^[a-z0-9-]{1,64}$/;
const RUN = /^[A-Za-z0-9_-]{1,80}$/;

const logger = createLogger("hoth-registry-export");
const settings = {
  table: requireEnv("REGISTRY_TABLE"),
  lakeBucket: requireEnv("LAKE_BUCKET"),
};
const registry = new MemberRegistry(new DynamoDBClient(clientOptions()), settings.table);
const s3 = new S3Client({
  ...clientOptions(),
  forcePathStyle: process.env.AWS_ENDPOINT_URL !== undefined,
});

export interface ExportInput {
  org: string;
  runId: string;
}

export interface ExportOutput {
  /** `s3://<lake>/landing/<org>/registry/<runId>/` */
  prefix: string;
  counts: Record<string, number>;
  parts: number;
}

export class InvalidExportInput extends Error {
  constructor(message: string) {
    super(message);
    this.name = "InvalidExportInput";
  }
}

export const handler = async (event: ExportInput, context?: Context): Promise<ExportOutput> => {
  if (!event || typeof event.org !== "string" || !ORG.test(event.org)) {
    throw new InvalidExportInput("org must be an organisation id (a-z, 0-9, -)");
  }
  if (typeof event.runId !== "string" || !RUN.test(event.runId)) {
    throw new InvalidExportInput("runId must be 1-80 characters of A-Z, a-z, 0-9, _ and -");
  }
  const deadline = Deadline.forInvocation(context, 15 * 60 * 1000, 5000);
  const key = `landing/${event.org}/registry/${event.runId}/`;
  const counts: Record<string, number> = {};
  let parts = 0;
  for await (const heads of registry.exportHeads(event.org, deadline)) {
    for (let i = 0; i < heads.length; i += PART_LINES) {
      const slice = heads.slice(i, i + PART_LINES);
      for (const h of slice) counts[h.type] = (counts[h.type] ?? 0) + 1;
      parts += 1;
      await s3.send(
        new PutObjectCommand({
          Bucket: settings.lakeBucket,
          Key: `${key}part-${String(parts).padStart(5, "0")}.ndjson`,
          Body: `${slice.map((h) => JSON.stringify(h.body)).join("\n")}\n`,
          ContentType: "application/fhir+ndjson",
        }),
        { abortSignal: deadline.signal() },
      );
    }
  }
  logger.info("registry exported", { runId: event.runId, counts, parts });
  return { prefix: `s3://${settings.lakeBucket}/${key}`, counts, parts };
};
