import { randomUUID } from 'node:crypto';
import type { ClaimResult, DedupStore } from '../dedup/dedup-store.js';
import { StoreCalls, withTimeout } from './with-timeout.js';

/** What the loser of two sessions creating the schema at once gets (see ensureSchema). */
const RACE_CODES = new Set<unknown>(['23505', '42P07', '42710']);

/**
 * The part of a `pg` Pool the store uses.
 */
export interface PgPoolLike {
  query(text: string, values?: unknown[]): Promise<PgResultLike>;
  /** When present (a `pg` Pool has it), a claim and its undo share one connection, so they run in order. */
  connect?(): Promise<PgClientLike>;
}

/**
 * A checked-out `pg` client.
 */
export interface PgClientLike {
  query(text: string, values?: unknown[]): Promise<PgResultLike>;
  /** Gives the client back; with an error (or `true`) the pool discards it instead of reusing it. */
  release(err?: Error | boolean): void;
  /** A `pg` Client has it: the store listens for 'error' for as long as it holds the client. */
  on?(event: 'error', listener: (err: Error) => void): unknown;
  /** Removes the store's listener when it gives the client back. */
  removeListener?(event: 'error', listener: (err: Error) => void): unknown;
}

/**
 * What a query answers.
 */
export interface PgResultLike {
  rows: unknown[];
  rowCount?: number | null;
}

/**
 * Options for {@link createPostgresDedupStore}.
 */
export interface PostgresDedupStoreOptions {
  /** A `pg` Pool (or anything with the same `query`); you own it (the store never ends it). */
  pool: PgPoolLike;
  /** Table name, optionally schema-qualified. Default `'hookguard_dedup'`. */
  table?: string;
  /** Longest a call may take before it counts as a store failure (503 to Stripe, 500 to Chatwoot). Default 2000 ms. */
  timeoutMs?: number;
}

/**
 * A PostgreSQL-backed {@link DedupStore} with its maintenance calls.
 */
export interface PostgresDedupStore extends DedupStore {
  /** Creates the table and its index if missing (idempotent). */
  ensureSchema(): Promise<void>;
  /** Deletes expired rows, at most `limit` (default 10 000); returns how many. */
  prune(limit?: number): Promise<number>;
  /** Refuses new calls and waits for those in flight. The pool stays open: it is yours to end. */
  close(): Promise<void>;
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

function quoteTable(table: string): string {
  const parts = table.split('.');
  if (parts.length > 2 || !parts.every((part) => IDENTIFIER.test(part))) {
    throw new TypeError(
      `Invalid table name ${JSON.stringify(table)}: use letters, digits and _, optionally schema.table.`,
    );
  }
  return parts.map((part) => `"${part}"`).join('.');
}

/**
 * The SQL that creates the dedup table, for users who run migrations themselves.
 *
 * @example
 * ```ts
 * import { postgresDedupSchema } from 'hookguard/postgres';
 * console.log(postgresDedupSchema('webhook_dedup')); // paste into a migration
 * ```
 */
export function postgresDedupSchema(table = 'hookguard_dedup'): string {
  const name = quoteTable(table);
  const index = `"${table.replaceAll('.', '_')}_expires_at_idx"`;
  // token is the live claim's owner, NULL once completed; expires_at ends the lease or the TTL.
  return `CREATE TABLE IF NOT EXISTS ${name} (
  key text PRIMARY KEY,
  token text,
  expires_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS ${index} ON ${name} (expires_at);`;
}

// Every claim has a 1-in-PRUNE_EVERY chance to delete a bounded batch of expired rows, so the table does not
// grow forever even if nobody calls prune().
const PRUNE_EVERY = 100;
const PRUNE_BATCH = 100;

/**
 * A {@link DedupStore} on PostgreSQL, shared by every instance of your app, with the `pg` Pool you pass in.
 * A claim is one statement (`INSERT … ON CONFLICT … DO UPDATE … WHERE expired … RETURNING`), so two racing
 * claims cannot both win. Times come from the database clock, so app servers' clocks do not matter.
 *
 * @example
 * ```ts
 * import pg from 'pg';
 * import { createPostgresDedupStore } from 'hookguard/postgres';
 * const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL });
 * // An idle client's dropped connection is reported here; without a listener it ends the process.
 * pool.on('error', (err) => console.warn(`PostgreSQL client lost: ${err.message}`));
 * const store = createPostgresDedupStore({ pool });
 * await store.ensureSchema();
 * ```
 */
export function createPostgresDedupStore(options: PostgresDedupStoreOptions): PostgresDedupStore {
  const { pool } = options;
  const sql = statements(quoteTable(options.table ?? 'hookguard_dedup'));
  const timeoutMs = options.timeoutMs ?? 2000;
  const calls = new StoreCalls('PostgreSQL');
  const query = (label: string, text: string, values: unknown[]) =>
    calls.run(`PostgreSQL ${label}`, timeoutMs, () => pool.query(text, values));
  const prune = async (limit = 10_000): Promise<number> =>
    (await query('prune', sql.prune, [limit])).rowCount ?? 0;

  return {
    async ensureSchema() {
      const ddl = postgresDedupSchema(options.table ?? 'hookguard_dedup');
      // Workers starting at once on a fresh database: PostgreSQL's IF NOT EXISTS is not atomic, and the
      // loser of the race gets a unique violation on the catalog (23505), "relation already exists"
      // (42P07) or, for the table's row type, "type already exists" (42710), for the table and then again
      // for its index: run it again until it goes through (the race ends as soon as the other session
      // commits).
      const once = async (tries: number): Promise<unknown> =>
        pool.query(ddl).catch(async (err: unknown) => {
          const code = (err as { code?: unknown }).code;
          if (!RACE_CODES.has(code) || tries >= 10) throw err;
          await new Promise((resolve) => setTimeout(resolve, 10 + Math.random() * 40));
          return once(tries + 1);
        });
      await withTimeout('PostgreSQL ensureSchema', Math.max(timeoutMs, 10_000), () => once(1));
    },
    prune,
    async claim(key: string, leaseMs: number): Promise<ClaimResult> {
      const token = randomUUID();
      const rows = await calls.track('PostgreSQL claim', () =>
        claimRows(pool, sql, timeoutMs, [key, token, Math.max(1, Math.ceil(leaseMs))]),
      );
      if (Math.random() * PRUNE_EVERY < 1) prune(PRUNE_BATCH).catch(() => undefined);
      const row = rows[0] as { claimed: string | null; completed: boolean | null } | undefined;
      if (row?.claimed === token) return { status: 'claimed', token };
      return row?.completed === true ? { status: 'duplicate' } : { status: 'in-flight' };
    },
    async complete(key: string, token: string, ttlMs: number) {
      await query('complete', sql.complete, [key, token, Math.max(1, Math.ceil(ttlMs))]);
    },
    async release(key: string, token: string) {
      await query('release', sql.release, [key, token]);
    },
    close: () => calls.close(),
  };
}

interface Statements {
  readonly claim: string;
  readonly complete: string;
  readonly release: string;
  readonly prune: string;
}

function statements(table: string): Statements {
  return {
    // The CTE's outer SELECT reads the snapshot from before the INSERT, so when the claim loses it still
    // sees the row that beat it: token NULL = completed (duplicate), token set = leased (in-flight). A row
    // that a concurrent claim inserted is not visible at all: that is in-flight too.
    claim: `WITH claimed AS (
  INSERT INTO ${table} AS d (key, token, expires_at)
  VALUES ($1, $2, now() + $3 * interval '1 millisecond')
  ON CONFLICT (key) DO UPDATE SET token = EXCLUDED.token, expires_at = EXCLUDED.expires_at
  WHERE d.expires_at <= now()
  RETURNING d.token
)
SELECT (SELECT token FROM claimed) AS claimed,
       (SELECT token IS NULL FROM ${table} WHERE key = $1 AND expires_at > now()) AS completed`,
    // The holder's work finished: it completes the key unless another claim holds a live lease on it.
    // The row may be gone (pruned after the lease ran out) or hold an expired lease: both are completed.
    complete: `INSERT INTO ${table} AS d (key, token, expires_at)
  VALUES ($1, NULL, now() + $3 * interval '1 millisecond')
  ON CONFLICT (key) DO UPDATE SET token = NULL, expires_at = EXCLUDED.expires_at
  WHERE d.token = $2 OR d.expires_at <= now()`,
    release: `DELETE FROM ${table} WHERE key = $1 AND token = $2`,
    prune: `DELETE FROM ${table} WHERE key IN (SELECT key FROM ${table} WHERE expires_at <= now() LIMIT $1)`,
  };
}

/**
 * Runs the claim. If it fails or times out it may still commit later and hold the key for the whole
 * lease, so a release of our token is queued behind it on the same connection (the undo runs after the
 * claim, whenever that is). Without `connect` the undo is best effort on any connection.
 */
async function claimRows(
  pool: PgPoolLike,
  sql: Statements,
  timeoutMs: number,
  values: [string, string, number],
): Promise<unknown[]> {
  const [key, token] = values;
  const connect = pool.connect?.bind(pool);
  if (connect === undefined) {
    try {
      return (await withTimeout('PostgreSQL claim', timeoutMs, () => pool.query(sql.claim, values))).rows;
    } catch (err) {
      pool.query(sql.release, [key, token]).catch(() => undefined);
      throw err;
    }
  }
  const attempt = (async () => {
    const client = await checkOut(connect);
    try {
      return { client, result: await client.query(sql.claim, values) };
    } catch (err) {
      client.release(err); // a broken connection is not reused
      throw err;
    }
  })();
  try {
    const { client, result } = await withTimeout('PostgreSQL claim', timeoutMs, () => attempt);
    client.release();
    return result.rows;
  } catch (err) {
    attempt.then(
      async ({ client }) => {
        try {
          await client.query(sql.release, [key, token]);
          client.release();
        } catch (undoError) {
          client.release(undoError);
        }
      },
      () => undefined,
    );
    throw err;
  }
}

/** A client the store holds, from {@link checkOut} until `release`. */
interface HeldClient {
  query(text: string, values: unknown[]): Promise<PgResultLike>;
  /** With `err` (or after the connection broke) the pool discards the client instead of reusing it. */
  release(err?: unknown): void;
}

/**
 * Checks a client out and listens for its 'error' until it goes back. pg-pool takes its own listener off
 * a client it hands out and puts it back on release (`_acquireClient` / `_release` in pg-pool's index.js),
 * and a `pg` Client whose connection drops while checked out (PostgreSQL restarted, failed over, or ended
 * the backend) emits 'error' at once (`_handleErrorEvent` in pg's client.js); an 'error' event that nobody
 * listens to ends the process. The query fails too, so the claim answers STORE_UNAVAILABLE; the listener
 * only keeps the error, so the client goes back broken and the pool replaces it.
 */
async function checkOut(connect: () => Promise<PgClientLike>): Promise<HeldClient> {
  const client = await connect();
  let broken: Error | undefined;
  const onError = (err: Error) => void (broken ??= err);
  client.on?.('error', onError);
  return {
    query: (text, values) => client.query(text, values),
    release(err) {
      client.removeListener?.('error', onError);
      client.release(broken ?? (err === undefined ? undefined : err instanceof Error ? err : true));
    },
  };
}
