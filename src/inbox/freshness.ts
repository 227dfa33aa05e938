import type { InboxJob } from '../pipeline/enqueue-stage.js';
import type { Staleness } from '../pipeline/types.js';
import { field } from '../util/values.js';
import type { IoRedisLike } from '../stores/redis.js';
import { createTolerantly, type Sql } from './pg-boss-lanes.js';

// Stale Stripe events (`ctx.stale`): Stripe delivers without order, so an inbox worker remembers, per
// object (`data.object.id`), the newest event it processed (by the event's `created`, in seconds), and
// tells a handler whose event is older. The mark lives on the engine's own server, shared by every worker.

/** The newest processed event of one object. */
export interface Mark {
  created: number;
  id: string;
}

/** Where an inbox keeps its marks (the engine's Redis or PostgreSQL). */
export interface Marks {
  read(object: string): Promise<Mark | undefined>;
  /** Raises the object's mark to `mark` unless it holds one created at the same time or later. */
  raise(object: string, mark: Mark, ttlMs: number): Promise<void>;
}

/**
 * The object and mark of a Stripe job, when its signed body names them: an event id, a whole-second
 * `created` and an object id, each bounded. Keyed with the endpoint's namespace.
 */
export function markOf(job: InboxJob): { object: string; mark: Mark } | undefined {
  if (job.provider !== 'stripe') return undefined;
  const id = field(job.event, 'id');
  const created = field(job.event, 'created');
  const object = field(field(field(job.event, 'data'), 'object'), 'id');
  if (typeof id !== 'string' || id === '' || id.length > 255) return undefined;
  if (typeof created !== 'number' || !Number.isSafeInteger(created) || created < 0) return undefined;
  if (typeof object !== 'string' || object === '' || object.length > 255) return undefined;
  return { object: `${job.namespace ?? ''}:${object}`, mark: { created, id } };
}

/** How an event stands against the newest processed one of its object. */
export function stalenessOf(own: Mark, newest: Mark | undefined): Staleness {
  if (newest === undefined || newest.id === own.id || newest.created < own.created) return false;
  return newest.created > own.created ? 'newer-processed' : 'same-second';
}

// KEYS[1] the mark; ARGV[1] created, ARGV[2] event id, ARGV[3] ttl in ms. Value: "<created> <id>".
const RAISE = `local v = redis.call('GET', KEYS[1])
if v and tonumber(string.match(v, '^%d+')) >= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. ARGV[2], 'PX', ARGV[3])
return 1`;

/** Marks on Redis: one key per object under `prefix`, expiring with the dedup window. */
export function redisMarks(client: () => Promise<IoRedisLike>, prefix: string): Marks {
  return {
    async read(object) {
      const value = await (await client()).call('GET', prefix + object);
      if (typeof value !== 'string') return undefined;
      const space = value.indexOf(' ');
      return { created: Number(value.slice(0, space)), id: value.slice(space + 1) };
    },
    async raise(object, mark, ttlMs) {
      await (await client()).call('EVAL', RAISE, 1, prefix + object, mark.created, mark.id, Math.ceil(ttlMs));
    },
  };
}

/**
 * Marks on PostgreSQL: rows of `<schema>.hookguard_newest`, per queue and object. `ready` resolves once the
 * schema exists. Expired rows are swept now and then by the raise that finds them.
 */
export function postgresMarks(sql: Sql, schema: string, queue: string, ready: () => Promise<unknown>): Marks {
  const table = `${schema}.hookguard_newest`;
  let made: Promise<void> | undefined;
  const table$ = () =>
    (made ??= ready()
      .then(() => createMarkTable(sql, table))
      .catch((err: unknown) => {
        made = undefined;
        throw err;
      }));
  let raises = 0;
  return {
    async read(object) {
      await table$();
      const { rows } = await sql(
        `SELECT created::text AS created, event_id FROM ${table}
         WHERE queue = $1 AND object = $2 AND expires_at > now()`,
        [queue, object],
      );
      const row = rows[0];
      return row === undefined ? undefined : { created: Number(row.created), id: String(row.event_id) };
    },
    async raise(object, mark, ttlMs) {
      await table$();
      await sql(
        `INSERT INTO ${table} AS m (queue, object, created, event_id, expires_at)
         VALUES ($1, $2, $3, $4, now() + $5::float8 * interval '1 millisecond')
         ON CONFLICT (queue, object) DO UPDATE
           SET created = EXCLUDED.created, event_id = EXCLUDED.event_id, expires_at = EXCLUDED.expires_at
           WHERE m.created < EXCLUDED.created OR m.expires_at <= now()`,
        [queue, object, mark.created, mark.id, ttlMs],
      );
      if (++raises % 1000 === 0) {
        await sql(
          `DELETE FROM ${table} WHERE ctid IN (SELECT ctid FROM ${table} WHERE expires_at <= now() LIMIT 1000)`,
          [],
        );
      }
    },
  };
}

const createMarkTable = (sql: Sql, table: string) =>
  createTolerantly(
    sql,
    `CREATE TABLE IF NOT EXISTS ${table} (
      queue text NOT NULL,
      object text NOT NULL,
      created bigint NOT NULL,
      event_id text NOT NULL,
      expires_at timestamptz NOT NULL,
      PRIMARY KEY (queue, object))`,
  );
