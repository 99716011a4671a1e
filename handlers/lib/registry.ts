import { createHash } from "node:crypto";
import {
  type AttributeValue,
  BatchGetItemCommand,
  ConditionalCheckFailedException,
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  type TransactWriteItem,
  TransactWriteItemsCommand,
} from "@aws-sdk/client-dynamodb";
import type { Deadline } from "./deadline";
import { ServiceUnavailableError } from "./errors";

/**
 * The member registry on DynamoDB (one table, components/memberRegistry.ts).
 *
 * Items (partition key `pk`, sort key `sk`, both strings):
 * - head     `H#<org>`               `<Type>/<id>`   the latest version: `v`, `body`, `lu`,
 *                                                    `ids`, `txn` (its transaction) and `tn`
 *                                                    (how many heads that transaction wrote)
 * - txn      `T#<org>`               `<txn id>`      the heads a transaction of more than one
 *                                                    wrote (`heads`: `<Type>/<id>@<v>`), for
 *                                                    consistent exports; expiring (`exp`, TTL)
 * - version  `V#<org>#<Type>/<id>`   `<v, 10 digits>` every version, for vread and history
 * - owner    `I#<org>`               `<sha256 of system|value>`  which Patient holds a member
 *                                                    identifier (`owner`)
 * - key      `K#<org>`               `<sha256 of the Idempotency-Key>[#<entry>]`  the answer
 *                                                    given (`rh`, `resp`), expiring (`exp`, TTL)
 *
 * Heads of one organisation share a partition key, so an export reads them with
 * one strongly consistent Query. Identifiers are hashed: item keys appear in
 * CloudTrail data events, and they are patient identifiers.
 * Every write of a request is one TransactWriteItems with conditions
 * (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html).
 */

export type Json = Record<string, unknown>;

/** DynamoDB's limit on the actions of one TransactWriteItems (and items of one BatchGetItem). */
export const MAX_TRANSACTION_ACTIONS = 100;
const BATCH_GET_KEYS = 100;

/** Days an idempotency record is kept (the table's TTL attribute `exp`). */
export const IDEMPOTENCY_TTL_DAYS = 7;
/**
 * Days a transaction record is kept: an export needs it only while the
 * transaction may be half seen by its Query (during the export's run).
 */
export const TXN_RECORD_TTL_DAYS = 2;

export interface Head {
  type: string;
  id: string;
  version: number;
  lastUpdated: string;
  body: Json;
  /** Hashes of the member identifiers this version holds (Patient). */
  identifiers: string[];
}

export interface IdempotencyRecord {
  requestHash: string;
  response: { statusCode: number; headers?: Record<string, string>; body: string };
}

export const headSk = (type: string, id: string) => `${type}/${id}`;
const pad = (v: number) => String(v).padStart(10, "0");
const S = (s: string): AttributeValue => ({ S: s });
const N = (n: number): AttributeValue => ({ N: String(n) });

/** A member identifier's hash: `system|value` within an organisation. */
export function identifierHash(system: string | undefined, value: string): string {
  return createHash("sha256")
    .update(`${system ?? ""}|${value}`)
    .digest("hex");
}

/** Every `system|value` a Patient carries, hashed (identifiers without a value hold nothing). */
export function identifierHashes(patient: Json): string[] {
  const list = Array.isArray(patient.identifier) ? (patient.identifier as Json[]) : [];
  const out = new Set<string>();
  for (const i of list) {
    if (i && typeof i.value === "string" && i.value !== "") {
      out.add(identifierHash(typeof i.system === "string" ? i.system : undefined, i.value));
    }
  }
  return [...out];
}

/** A write the route plans; turned into transaction actions by `writeActions`. */
export interface PlannedWrite {
  type: string;
  id: string;
  /** The version written; 1 creates. */
  version: number;
  body: Json;
  lastUpdated: string;
  /** Identifier hashes this version holds, and those its previous version held. */
  identifiers: string[];
  previousIdentifiers: string[];
}

export interface Commit {
  org: string;
  txn: string;
  writes: PlannedWrite[];
  /** Patients that must exist (references to registered members outside the transaction). */
  mustExist: string[];
  idempotency?: { sk: string; record: IdempotencyRecord; expiresAt: number };
}

/** What a cancelled transaction says about one of its actions. */
export type ActionRole =
  | { kind: "head"; write: number }
  | { kind: "version"; write: number }
  | { kind: "claim"; write: number; hash: string }
  | { kind: "release"; write: number; hash: string }
  | { kind: "exists"; patient: string }
  | { kind: "txn" }
  | { kind: "idempotency" };

export class TransactionRefused extends Error {
  constructor(readonly failed: ActionRole[]) {
    super("A condition of the registration transaction failed");
    this.name = "TransactionRefused";
  }
}

export class MemberRegistry {
  constructor(
    private readonly db: DynamoDBClient,
    private readonly table: string,
  ) {}

  private async send<T>(deadline: Deadline, run: (signal: AbortSignal) => Promise<T>): Promise<T> {
    try {
      return await run(deadline.signal());
    } catch (error) {
      if (error instanceof TransactionRefused) throw error;
      throw new ServiceUnavailableError(
        "The member registry is unavailable; nothing was registered, retry later",
        { cause: error },
      );
    }
  }

  /**
   * One batched, strongly consistent read of what a registration depends on:
   * heads, identifier owners and an idempotency record (BatchGetItem, 100 keys
   * a call, chunks in parallel, unprocessed keys retried within the budget).
   */
  async read(
    org: string,
    want: { heads?: { type: string; id: string }[]; owners?: string[]; idempotency?: string },
    deadline: Deadline,
  ) {
    const keys = new Map<string, Record<string, AttributeValue>>();
    for (const h of want.heads ?? []) {
      const sk = headSk(h.type, h.id);
      keys.set(`H|${sk}`, { pk: S(`H#${org}`), sk: S(sk) });
    }
    for (const hash of want.owners ?? []) keys.set(`I|${hash}`, { pk: S(`I#${org}`), sk: S(hash) });
    if (want.idempotency)
      keys.set(`K|${want.idempotency}`, { pk: S(`K#${org}`), sk: S(want.idempotency) });
    const heads = new Map<string, Head>();
    const owners = new Map<string, string>();
    let idempotency: IdempotencyRecord | undefined;
    for (const item of await this.batchGet([...keys.values()], deadline)) {
      const pk = item.pk?.S ?? "";
      if (pk.startsWith("H#")) {
        const head = toHead(item);
        heads.set(headSk(head.type, head.id), head);
      } else if (pk.startsWith("I#") && item.owner?.S) {
        owners.set(item.sk?.S ?? "", item.owner.S);
      } else if (pk.startsWith("K#") && item.rh?.S && item.resp?.S) {
        idempotency = { requestHash: item.rh.S, response: JSON.parse(item.resp.S) };
      }
    }
    return { heads, owners, idempotency };
  }

  async head(org: string, type: string, id: string, deadline: Deadline): Promise<Head | undefined> {
    const item = await this.getItem(`H#${org}`, headSk(type, id), deadline);
    return item ? toHead(item) : undefined;
  }

  async version(org: string, type: string, id: string, version: number, deadline: Deadline) {
    const item = await this.getItem(`V#${org}#${headSk(type, id)}`, pad(version), deadline);
    return item?.body?.S ? (JSON.parse(item.body.S) as Json) : undefined;
  }

  /** The newest `limit` versions, newest first. */
  async history(org: string, type: string, id: string, limit: number, deadline: Deadline) {
    const out = await this.send(deadline, (abortSignal) =>
      this.db.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: "pk = :pk",
          ExpressionAttributeValues: { ":pk": S(`V#${org}#${headSk(type, id)}`) },
          ScanIndexForward: false,
          ConsistentRead: true,
          Limit: limit,
        }),
        { abortSignal },
      ),
    );
    return (out.Items ?? []).map((i) => JSON.parse(i.body?.S ?? "{}") as Json);
  }

  /** The Patient id holding a member identifier, if any. */
  async owner(org: string, hash: string, deadline: Deadline): Promise<string | undefined> {
    return (await this.getItem(`I#${org}`, hash, deadline))?.owner?.S;
  }

  /**
   * Stores a batch's final answer under its Idempotency-Key. A record already
   * there (a concurrent twin finished first) is left as it is.
   */
  async remember(
    org: string,
    sk: string,
    record: IdempotencyRecord,
    expiresAt: number,
    deadline: Deadline,
  ): Promise<void> {
    try {
      await this.send(deadline, (abortSignal) =>
        this.db.send(
          new PutItemCommand({
            TableName: this.table,
            Item: {
              pk: S(`K#${org}`),
              sk: S(sk),
              rh: S(record.requestHash),
              resp: S(JSON.stringify(record.response)),
              exp: N(expiresAt),
            },
            ConditionExpression: "attribute_not_exists(pk)",
          }),
          { abortSignal },
        ),
      );
    } catch (error) {
      if ((error as Error).cause instanceof ConditionalCheckFailedException) return;
      throw error;
    }
  }

  /** The transaction's actions, and what each one stands for (for reading cancellation reasons). */
  actions(c: Commit): { items: TransactWriteItem[]; roles: ActionRole[] } {
    const items: TransactWriteItem[] = [];
    const roles: ActionRole[] = [];
    const TableName = this.table;
    const many = c.writes.length > 1;
    c.writes.forEach((w, write) => {
      const sk = headSk(w.type, w.id);
      const body = S(JSON.stringify(w.body));
      const head: Record<string, AttributeValue> = {
        pk: S(`H#${c.org}`),
        sk: S(sk),
        type: S(w.type),
        id: S(w.id),
        v: N(w.version),
        lu: S(w.lastUpdated),
        body,
        txn: S(c.txn),
        ...(many ? { tn: N(c.writes.length) } : {}),
        ...(w.identifiers.length ? { ids: { SS: w.identifiers } } : {}),
      };
      // A create needs the id free; an update needs the version it was planned on.
      items.push({
        Put:
          w.version === 1
            ? { TableName, Item: head, ConditionExpression: "attribute_not_exists(pk)" }
            : {
                TableName,
                Item: head,
                ConditionExpression: "v = :prev",
                ExpressionAttributeValues: { ":prev": N(w.version - 1) },
              },
      });
      roles.push({ kind: "head", write });
      items.push({
        Put: {
          TableName,
          Item: {
            pk: S(`V#${c.org}#${sk}`),
            sk: S(pad(w.version)),
            v: N(w.version),
            lu: S(w.lastUpdated),
            body,
            txn: S(c.txn),
          },
          ConditionExpression: "attribute_not_exists(pk)",
        },
      });
      roles.push({ kind: "version", write });
      const held = new Set(w.previousIdentifiers);
      for (const hash of w.identifiers) {
        if (held.has(hash)) continue;
        items.push({
          Put: {
            TableName,
            Item: { pk: S(`I#${c.org}`), sk: S(hash), owner: S(w.id) },
            ConditionExpression: "attribute_not_exists(pk) OR #o = :id",
            ExpressionAttributeNames: { "#o": "owner" },
            ExpressionAttributeValues: { ":id": S(w.id) },
          },
        });
        roles.push({ kind: "claim", write, hash });
      }
      const now = new Set(w.identifiers);
      for (const hash of w.previousIdentifiers) {
        if (now.has(hash)) continue;
        items.push({
          Delete: {
            TableName,
            Key: { pk: S(`I#${c.org}`), sk: S(hash) },
            ConditionExpression: "#o = :id",
            ExpressionAttributeNames: { "#o": "owner" },
            ExpressionAttributeValues: { ":id": S(w.id) },
          },
        });
        roles.push({ kind: "release", write, hash });
      }
    });
    for (const patient of c.mustExist) {
      items.push({
        ConditionCheck: {
          TableName,
          Key: { pk: S(`H#${c.org}`), sk: S(headSk("Patient", patient)) },
          ConditionExpression: "attribute_exists(pk)",
        },
      });
      roles.push({ kind: "exists", patient });
    }
    if (many) {
      items.push({
        Put: {
          TableName,
          Item: {
            pk: S(`T#${c.org}`),
            sk: S(c.txn),
            heads: { SS: c.writes.map((w) => `${headSk(w.type, w.id)}@${w.version}`) },
            exp: N(Math.floor(Date.now() / 1000) + TXN_RECORD_TTL_DAYS * 86400),
          },
          ConditionExpression: "attribute_not_exists(pk)",
        },
      });
      roles.push({ kind: "txn" });
    }
    if (c.idempotency) {
      items.push({
        Put: {
          TableName,
          Item: {
            pk: S(`K#${c.org}`),
            sk: S(c.idempotency.sk),
            rh: S(c.idempotency.record.requestHash),
            resp: S(JSON.stringify(c.idempotency.record.response)),
            exp: N(c.idempotency.expiresAt),
          },
          ConditionExpression: "attribute_not_exists(pk)",
        },
      });
      roles.push({ kind: "idempotency" });
    }
    return { items, roles };
  }

  /**
   * Commits one request's writes as one transaction. A failed condition throws
   * TransactionRefused naming the actions at fault; a conflict with another
   * transaction in flight is retried here; anything else is a 503.
   */
  async commit(c: Commit, deadline: Deadline): Promise<void> {
    const { items, roles } = this.actions(c);
    if (items.length > MAX_TRANSACTION_ACTIONS) {
      throw new Error(`A transaction of ${items.length} actions exceeds DynamoDB's limit`);
    }
    for (let attempt = 0; ; attempt++) {
      try {
        await this.send(deadline, (abortSignal) =>
          this.db.send(
            new TransactWriteItemsCommand({ TransactItems: items, ClientRequestToken: c.txn }),
            { abortSignal },
          ),
        );
        return;
      } catch (error) {
        const reasons = (error as { cause?: { CancellationReasons?: { Code?: string }[] } }).cause
          ?.CancellationReasons;
        if (!reasons) throw error;
        const failed = reasons
          .map((r, i) => (r.Code === "ConditionalCheckFailed" ? roles[i] : undefined))
          .filter((r): r is ActionRole => r !== undefined);
        if (failed.length) throw new TransactionRefused(failed);
        // TransactionConflict and the like: another transaction held an item.
        if (attempt >= 4) throw error;
        await deadline.sleep(Math.random() * 40 * 2 ** attempt);
      }
    }
  }

  /**
   * Every head of an organisation as of one consistent cut: a strongly
   * consistent Query of the heads (read-committed: a transaction committing
   * while it runs may be seen in part), then, for every head written by a
   * transaction of several heads, that transaction's record; a head the
   * Query saw older than that transaction wrote it is read again with
   * GetItem (serializable with transactions), until every transaction in the
   * result is whole.
   */
  async *exportHeads(org: string, deadline: Deadline): AsyncGenerator<Head[]> {
    const seen = new Map<string, { head: Head; txn?: string }>();
    let start: Record<string, AttributeValue> | undefined;
    do {
      const page = await this.send(deadline, (abortSignal) =>
        this.db.send(
          new QueryCommand({
            TableName: this.table,
            KeyConditionExpression: "pk = :pk",
            ExpressionAttributeValues: { ":pk": S(`H#${org}`) },
            ConsistentRead: true,
            ExclusiveStartKey: start,
          }),
          { abortSignal },
        ),
      );
      for (const item of page.Items ?? []) {
        const head = toHead(item);
        seen.set(headSk(head.type, head.id), { head, txn: multiTxn(item) });
      }
      start = page.LastEvaluatedKey;
    } while (start);
    const checked = new Set<string>();
    for (;;) {
      const pending = [
        ...new Set([...seen.values()].map((s) => s.txn).filter((t): t is string => !!t)),
      ].filter((t) => !checked.has(t));
      if (!pending.length) break;
      for (const t of pending) checked.add(t);
      const records = await this.txnRecords(org, pending, deadline);
      for (const heads of records) {
        for (const entry of heads) {
          const at = entry.lastIndexOf("@");
          const sk = entry.slice(0, at);
          const version = Number(entry.slice(at + 1));
          const current = seen.get(sk);
          if (current && current.head.version >= version) continue;
          const item = await this.getItem(`H#${org}`, sk, deadline);
          if (item) seen.set(sk, { head: toHead(item), txn: multiTxn(item) });
        }
      }
    }
    const all = [...seen.values()].map((s) => s.head);
    for (let i = 0; i < all.length; i += 1000) yield all.slice(i, i + 1000);
  }

  /** The heads each of these transactions wrote (records expired long after they committed are absent). */
  private async txnRecords(org: string, txns: string[], deadline: Deadline): Promise<string[][]> {
    const items = await this.batchGet(
      txns.map((t) => ({ pk: S(`T#${org}`), sk: S(t) })),
      deadline,
    );
    return items.map((item) => item.heads?.SS ?? []);
  }

  /** One item, strongly consistent (serializable with transactions). */
  private async getItem(pk: string, sk: string, deadline: Deadline) {
    const out = await this.send(deadline, (abortSignal) =>
      this.db.send(
        new GetItemCommand({
          TableName: this.table,
          Key: { pk: S(pk), sk: S(sk) },
          ConsistentRead: true,
        }),
        { abortSignal },
      ),
    );
    return out.Item;
  }

  /**
   * Strongly consistent BatchGetItem of any number of keys: 100 a call, the
   * calls in parallel, unprocessed keys retried with backoff within the budget.
   */
  private async batchGet(
    keys: Record<string, AttributeValue>[],
    deadline: Deadline,
  ): Promise<Record<string, AttributeValue>[]> {
    const chunks: Record<string, AttributeValue>[][] = [];
    for (let i = 0; i < keys.length; i += BATCH_GET_KEYS)
      chunks.push(keys.slice(i, i + BATCH_GET_KEYS));
    const found: Record<string, AttributeValue>[] = [];
    await Promise.all(
      chunks.map(async (chunk) => {
        let pending = chunk;
        for (let attempt = 0; pending.length; attempt++) {
          if (attempt > 0) await deadline.sleep(Math.min(50 * 2 ** attempt, 400));
          const result = await this.send(deadline, (abortSignal) =>
            this.db.send(
              new BatchGetItemCommand({
                RequestItems: { [this.table]: { Keys: pending, ConsistentRead: true } },
              }),
              { abortSignal },
            ),
          );
          found.push(...(result.Responses?.[this.table] ?? []));
          pending = (result.UnprocessedKeys?.[this.table]?.Keys ?? []) as typeof pending;
        }
      }),
    );
    return found;
  }
}

/** The transaction of a head when it wrote several heads (only those can be seen in part). */
function multiTxn(item: Record<string, AttributeValue>): string | undefined {
  return Number(item.tn?.N ?? 1) > 1 ? item.txn?.S : undefined;
}

function toHead(item: Record<string, AttributeValue>): Head {
  return {
    type: item.type?.S ?? "",
    id: item.id?.S ?? "",
    version: Number(item.v?.N ?? 0),
    lastUpdated: item.lu?.S ?? "",
    body: JSON.parse(item.body?.S ?? "{}") as Json,
    identifiers: item.ids?.SS ?? [],
  };
}
