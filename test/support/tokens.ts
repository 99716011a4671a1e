import * as fc from "fast-check";

/**
 * Hostile variations of a valid JWT for property-based tests: each segment
 * replaced, emptied, oversized, re-encoded from non-JSON or from JSON with
 * claims of the wrong type, padded, given unicode or control characters;
 * segments added or removed.
 */

const b64u = (v: string | Buffer) => Buffer.from(v).toString("base64url");
const json = (v: unknown) => b64u(JSON.stringify(v));

/** Claim values of the wrong type or range: strings, huge and negative numbers, unicode. */
const hostileValue = fc.oneof(
  fc.string({ unit: "binary", maxLength: 40 }),
  fc.constantFrom(
    "9999999999",
    "",
    1e308,
    -1e308,
    -1,
    0,
    2 ** 53 + 1,
    1.5,
    Number.MAX_SAFE_INTEGER,
    null,
    true,
    [],
    {},
    ["system/*.*"],
    "system/*.*",
    "\u0000\r\n",
    "\u202e\ud83d\ude00",
  ),
  fc.double(),
  fc.integer(),
  fc.jsonValue({ maxDepth: 2 }),
);

const CLAIMS = ["exp", "nbf", "iat", "iss", "aud", "cid", "sub", "scp", "scope", "org", "jti"];
const HEADER_KEYS = ["alg", "kid", "typ", "crit", "jku", "x5u"];

/** One segment's replacement, given the original decoded header and payload. */
function segmentReplacement(header: Record<string, unknown>, payload: Record<string, unknown>) {
  return fc.oneof(
    fc.constant(""),
    fc.integer({ min: 1, max: 12_000 }).map((n) => "A".repeat(n)),
    fc.string({ unit: "binary", maxLength: 64 }),
    fc.string({ maxLength: 64 }).map(b64u),
    fc.jsonValue({ maxDepth: 3 }).map(json),
    fc
      .tuple(fc.constantFrom(...HEADER_KEYS), hostileValue)
      .map(([k, v]) => json({ ...header, [k]: v })),
    fc
      .tuple(fc.constantFrom(...CLAIMS), hostileValue)
      .map(([k, v]) => json({ ...payload, [k]: v })),
    fc.constantFrom(...CLAIMS).map((k) => json({ ...payload, [k]: undefined })),
    fc
      .constantFrom("none", "HS256", "RS512", "ES256", "rs256", "")
      .map((alg) => json({ ...header, alg })),
    fc.constant(json({ ...payload, exp: 1e300, scp: ["system/*.*"] })),
    // Well-typed but altered claims: these reach the signature check.
    fc
      .record({
        exp: fc.integer({ min: 0, max: 253_402_300_799 }),
        scp: fc.array(fc.constantFrom("system/*.*", "system/Patient.cruds", "openid")),
        cid: fc.string({ maxLength: 20 }),
        org: fc.string({ maxLength: 20 }),
      })
      .map((claims) => json({ ...payload, ...claims })),
  );
}

/** Edits of the token string itself (padding, unicode, whitespace, a flipped character). */
function textEdit(token: string) {
  return fc.oneof(
    fc
      .constantFrom("=", "==", " ", "\t", "\u0000", "\r\n", "é", "\ud83d\ude00", ".", "..")
      .chain((s) =>
        fc.nat({ max: token.length }).map((i) => token.slice(0, i) + s + token.slice(i)),
      ),
    fc
      .tuple(fc.nat({ max: token.length - 1 }), fc.constantFrom(..."AZaz09-_+/=."))
      .map(([i, c]) => token.slice(0, i) + c + token.slice(i + 1)),
    fc.nat({ max: token.length - 1 }).map((i) => token.slice(0, i)),
    fc.nat({ max: token.length - 1 }).map((i) => token.slice(i)),
  );
}

export function tokenMutation(token: string): fc.Arbitrary<string> {
  const segments = token.split(".");
  const header = JSON.parse(Buffer.from(segments[0], "base64url").toString()) as Record<
    string,
    unknown
  >;
  const payload = JSON.parse(Buffer.from(segments[1], "base64url").toString()) as Record<
    string,
    unknown
  >;
  const replaceOne = fc
    .tuple(fc.nat({ max: 2 }), segmentReplacement(header, payload))
    .map(([i, s]) => segments.map((old, j) => (j === i ? s : old)).join("."));
  const extraSegments = fc
    .array(
      fc.oneof(fc.constant(""), fc.string({ maxLength: 20 }).map(b64u), fc.constant(segments[2])),
      {
        minLength: 1,
        maxLength: 3,
      },
    )
    .map((extra) => [...segments, ...extra].join("."));
  const fewerSegments = fc.constantFrom(
    segments.slice(0, 2).join("."),
    `${segments.slice(0, 2).join(".")}.`,
    segments[0],
    `${segments[0]}..${segments[2]}`,
  );
  return fc.oneof(
    { weight: 6, arbitrary: replaceOne },
    { weight: 2, arbitrary: textEdit(token) },
    { weight: 1, arbitrary: extraSegments },
    { weight: 1, arbitrary: fewerSegments },
    // Two segments replaced at once (e.g. a forged payload with an empty signature).
    {
      weight: 2,
      arbitrary: fc
        .tuple(segmentReplacement(header, payload), segmentReplacement(header, payload))
        .map(([p, s]) => [segments[0], p, s].join(".")),
    },
  );
}

/** Records uncaught exceptions and unhandled rejections until stopped. */
export function watchProcessFaults() {
  const faults: string[] = [];
  const onError = (e: unknown) => faults.push(`uncaught: ${(e as Error)?.name}`);
  const onRejection = (e: unknown) => faults.push(`unhandled rejection: ${(e as Error)?.name}`);
  process.prependListener("uncaughtException", onError);
  process.on("unhandledRejection", onRejection);
  return {
    faults,
    stop() {
      process.off("uncaughtException", onError);
      process.off("unhandledRejection", onRejection);
    },
  };
}
