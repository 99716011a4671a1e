import { createHmac } from "node:crypto";

/**
 * What S3 does with a browser-based POST upload, written from AWS's
 * documentation, for the local emulator (moto) does none of it: moto 5.2's
 * `_bucket_response_post` stores the file under the form's `key` without
 * reading `Policy`, checking `X-Amz-Signature` or the expiration.
 * - Policy and conditions:
 *   https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-HTTPPOSTConstructPolicy.html
 *   (every form field except x-amz-signature, file, policy and x-ignore-*
 *   must be named by a condition; eq / starts-with / content-length-range;
 *   a request after `expiration` is refused).
 * - Signature: https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-post-example.html
 *   (HMAC-SHA256 of the base64 policy with the SigV4 signing key of the
 *   credential's date, region and service).
 */

export interface PostAttempt {
  /** The form's fields as sent (names as the client wrote them). */
  fields: Record<string, string>;
  /** The bucket the form is posted to. */
  bucket: string;
  /** Bytes of the file part. */
  fileSize: number;
  /** When S3 receives it. */
  now: Date;
  /** The signer's secret key (the local stack's is "testing"). */
  secretAccessKey: string;
}

export type Verdict = { ok: true } | { ok: false; reason: string };

type Condition = Record<string, string> | [string, string, string] | [string, number, number];

const hmac = (key: Buffer | string, data: string) =>
  createHmac("sha256", key).update(data).digest();

/** The SigV4 signature S3 expects for a base64 policy and an X-Amz-Credential. */
export function postSignature(policyB64: string, credential: string, secret: string): string {
  const [, date, region, service, terminal] = credential.split("/");
  const key = [date, region, service, terminal].reduce<Buffer | string>(
    (k, part) => hmac(k, part),
    `AWS4${secret}`,
  );
  return createHmac("sha256", key).update(policyB64).digest("hex");
}

export function decodePolicy(policyB64: string): { expiration: string; conditions: Condition[] } {
  return JSON.parse(Buffer.from(policyB64, "base64").toString("utf8"));
}

/** S3's decision on a POST upload, as AWS documents it. */
export function evaluatePost(a: PostAttempt): Verdict {
  const lower = Object.fromEntries(Object.entries(a.fields).map(([k, v]) => [k.toLowerCase(), v]));
  const policyB64 = lower.policy;
  if (!policyB64) return { ok: false, reason: "no policy" };
  const signature = postSignature(policyB64, lower["x-amz-credential"] ?? "", a.secretAccessKey);
  if (signature !== lower["x-amz-signature"]) return { ok: false, reason: "signature mismatch" };
  const policy = decodePolicy(policyB64);
  if (!(Date.parse(policy.expiration) > a.now.getTime())) {
    return { ok: false, reason: "policy expired" };
  }
  const values: Record<string, string> = { ...lower, bucket: a.bucket };
  const covered = new Set<string>(["bucket"]);
  for (const c of policy.conditions) {
    if (!Array.isArray(c)) {
      for (const [k, v] of Object.entries(c)) {
        const name = k.toLowerCase();
        covered.add(name);
        if (values[name] !== v) return { ok: false, reason: `condition failed: ${name}` };
      }
      continue;
    }
    const [op, x, y] = c;
    if (op === "content-length-range") {
      if (a.fileSize < (x as number) || a.fileSize > (y as number)) {
        return { ok: false, reason: "content-length-range" };
      }
      continue;
    }
    const name = String(x).replace(/^\$/, "").toLowerCase();
    covered.add(name);
    const value = values[name] ?? "";
    if (op === "eq" && value !== y) return { ok: false, reason: `condition failed: ${name}` };
    if (op === "starts-with" && !value.startsWith(String(y))) {
      return { ok: false, reason: `condition failed: ${name}` };
    }
  }
  for (const name of Object.keys(lower)) {
    if (["x-amz-signature", "file", "policy"].includes(name) || name.startsWith("x-ignore-")) {
      continue;
    }
    if (!covered.has(name)) return { ok: false, reason: `field not in policy: ${name}` };
  }
  return { ok: true };
}
