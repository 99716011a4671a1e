import { randomBytes } from "node:crypto";
import type { S3Client } from "@aws-sdk/client-s3";
import { createPresignedPost } from "@aws-sdk/s3-presigned-post";
import * as z from "zod/mini";
import { BadRequestError, ServiceUnavailableError, UnsupportedMediaTypeError } from "../lib/errors";
import { jsonResponse, type RouteImpl } from "../lib/http";
import { jsonBody, mediaType, requireAccess, tenant } from "../lib/request";

export interface UploadSettings {
  lakeBucket: string;
  /** The stack key: every upload is SSE-KMS with it. */
  uploadKeyArn: string;
  /** The largest file a form admits (bytes). */
  uploadMaxBytes: number;
  /** How long a form is valid (s), at most 900. */
  uploadExpiresSeconds: number;
}

/** AWS allows a POST policy any expiry; this API hands out none longer than 15 minutes. */
export const MAX_UPLOAD_EXPIRES_SECONDS = 900;

/** `u-` and 32 hex digits: unguessable, and a valid migration inputPrefix segment. */
export const UPLOAD_ID = /^u-[0-9a-f]{32}$/;

/**
 * The object name an upload gets: the last segment of what the client called
 * the file, with every character outside `A-Za-z0-9._-` replaced by `_`, at
 * most 128 characters, never `.`/`..` or hidden. Undefined when nothing usable
 * is left.
 */
export function sanitiseFileName(fileName: string): string | undefined {
  const last = fileName.split(/[/\\]/).pop() ?? "";
  const name = last
    .normalize("NFKC")
    .replace(/[^A-Za-z0-9._-]/g, "_")
    .replace(/^[.]+/, "")
    .slice(-128);
  return /[A-Za-z0-9]/.test(name) ? name : undefined;
}

const MEDIA_TYPE = /^[a-z]+\/[a-z0-9][a-z0-9.+-]{0,126}$/;

const body = (maxBytes: number) =>
  z.strictObject(
    {
      fileName: z
        .string({ error: "fileName must be a string" })
        .check(
          z.minLength(1, "fileName must not be empty"),
          z.maxLength(255, "fileName must be at most 255 characters"),
        ),
      contentType: z
        .string({ error: "contentType must be a string" })
        .check(z.regex(MEDIA_TYPE, "contentType must be a media type such as text/csv")),
      size: z
        .number({ error: "size must be a number of bytes" })
        .check(
          z.int("size must be a whole number of bytes"),
          z.minimum(1, "size must be at least 1 byte"),
          z.maximum(maxBytes, `size must be at most ${maxBytes} bytes`),
        ),
    },
    // Never the unknown keys themselves: a diagnostic repeats no value from the request.
    {
      error: (issue) =>
        issue.code === "unrecognized_keys"
          ? "The body may hold only fileName, contentType and size"
          : "The body must be an object with fileName, contentType and size",
    },
  );

/**
 * The POST policy conditions of one upload (besides bucket, key and the
 * signature fields, which createPresignedPost adds): the exact length the
 * caller declared (so a truncated or padded file is refused by S3), the
 * content type, and SSE-KMS with the stack key. Semantics:
 * https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-HTTPPOSTConstructPolicy.html
 */
export function uploadFields(settings: UploadSettings, contentType: string) {
  return {
    "Content-Type": contentType,
    "x-amz-server-side-encryption": "aws:kms",
    "x-amz-server-side-encryption-aws-kms-key-id": settings.uploadKeyArn,
  };
}

/**
 * POST /uploads: a pre-signed S3 POST for one extract. The organisation and
 * the bucket come from the token and the stack, never from the body; the key
 * is `landing/<org>/uploads/<upload id>/<sanitised name>`, fixed by the
 * policy. Migrate it with `{"source":"legacy"|"fhir","inputPrefix":"uploads/<id>/"}`.
 */
export const createUpload =
  (settings: UploadSettings, s3: S3Client): RouteImpl =>
  async ({ event }) => {
    const org = tenant(event);
    requireAccess(event, "Binary", "create");
    if (mediaType(event) !== "application/json") {
      throw new UnsupportedMediaTypeError("POST /uploads takes Content-Type: application/json");
    }
    const parsed = body(settings.uploadMaxBytes).safeParse(jsonBody(event));
    if (!parsed.success) {
      throw new BadRequestError(parsed.error.issues.map((i) => i.message).join("; "));
    }
    const { fileName, contentType, size } = parsed.data;
    const name = sanitiseFileName(fileName);
    if (!name) {
      throw new BadRequestError(
        "fileName must contain a letter or digit (it becomes the object's name)",
      );
    }
    const id = `u-${randomBytes(16).toString("hex")}`;
    const key = `landing/${org}/uploads/${id}/${name}`;
    const expires = Math.min(settings.uploadExpiresSeconds, MAX_UPLOAD_EXPIRES_SECONDS);
    const fields = uploadFields(settings, contentType);
    let form: { url: string; fields: Record<string, string> };
    try {
      form = await createPresignedPost(s3, {
        Bucket: settings.lakeBucket,
        Key: key,
        Fields: fields,
        Conditions: [
          ["content-length-range", size, size],
          ...Object.entries(fields).map(([k, v]) => ({ [k]: v })),
        ],
        Expires: expires,
      });
    } catch (error) {
      // Only credentials can fail here (the signature is computed locally).
      throw new ServiceUnavailableError("Uploads are unavailable; retry later", { cause: error });
    }
    return jsonResponse(201, {
      id,
      url: form.url,
      fields: form.fields,
      key,
      size,
      inputPrefix: `uploads/${id}/`,
      expiresAt: new Date(Date.now() + expires * 1000).toISOString(),
    });
  };
