import * as assert from "node:assert/strict";

/**
 * "No echoes": an answer (status, headers, body) and the log lines written
 * while producing it must not repeat any string the request carried. The
 * needles are the strings a test sent (path segments, header values, body
 * keys and values, the raw body), looked for as sent, JSON-escaped,
 * percent-encoded, and split at control characters and whitespace.
 */

export interface Answer {
  status: number;
  headers: Record<string, string | number | boolean | undefined>;
  body: string;
  /** What the code under test logged while answering. */
  logs?: string;
}

/** Shorter strings (e.g. "a/") are too common to attribute to the request. */
const MIN_NEEDLE = 4;

/** Every string in a JSON value: keys and string values, recursively. */
export function stringsIn(value: unknown): string[] {
  if (typeof value === "string") return [value];
  if (Array.isArray(value)) return value.flatMap(stringsIn);
  if (value && typeof value === "object") {
    return Object.entries(value).flatMap(([k, v]) => [k, ...stringsIn(v)]);
  }
  return [];
}

/**
 * The forms in which a sent string could come back; `vocabulary` holds the
 * API's own words (route paths, methods, enum values), which a request may
 * use and an answer may too.
 */
export function needles(
  sent: readonly string[],
  vocabulary: ReadonlySet<string> = new Set(),
): string[] {
  const found = new Set<string>();
  for (const s of sent) {
    const forms = [
      s,
      JSON.stringify(s).slice(1, -1),
      encodeURIComponent(s),
      ...s.split(/[\s\p{Cc}]+/u),
    ];
    for (const f of forms) if (f.length >= MIN_NEEDLE && !vocabulary.has(f)) found.add(f);
  }
  return [...found];
}

/** Asserts that nothing the request sent appears in the answer or the logs. */
export function assertNoEcho(
  what: string,
  sent: readonly string[],
  answer: Answer,
  vocabulary: ReadonlySet<string> = new Set(),
): void {
  const haystacks: [string, string][] = [
    ["body", answer.body],
    ...Object.entries(answer.headers).map(([k, v]): [string, string] => [
      `header ${k}`,
      `${k}: ${String(v)}`,
    ]),
    ["logs", answer.logs ?? ""],
  ];
  for (const needle of needles(sent, vocabulary)) {
    for (const [where, text] of haystacks) {
      assert.ok(
        !text.includes(needle),
        `${what}: the ${where} repeats ${JSON.stringify(needle.slice(0, 40))}`,
      );
    }
  }
}

/** Collects answers across a suite for one final assertion over all of them. */
export class EchoLedger {
  readonly entries: { what: string; sent: readonly string[]; answer: Answer }[] = [];

  record(what: string, sent: readonly string[], answer: Answer): Answer {
    this.entries.push({ what, sent, answer });
    return answer;
  }

  /** Every recorded error answer (status >= 400) against every string the whole suite sent. */
  assertNoneEchoes(vocabulary: ReadonlySet<string> = new Set()): number {
    const all = this.entries.flatMap((e) => e.sent);
    const errors = this.entries.filter((e) => e.answer.status >= 400);
    for (const e of errors) assertNoEcho(e.what, all, e.answer, vocabulary);
    return errors.length;
  }
}
