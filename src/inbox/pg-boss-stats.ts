import type PgBoss from 'pg-boss';
import type { InboxStats, OtherQueue, OtherQueues } from './inbox-stats.js';

// pg-boss's counts for `inbox.stats()`, and a look at the other queues of the same schema for
// `hookguard inbox`. pg-boss 10 has no call that splits ready jobs from delayed ones or counts failed
// and completed ones (its getQueueSize counts everything before a state), so this reads its job table,
// through columns that pg-boss 10 to 12 all have: name, state, start_after.

/** Runs one statement on pg-boss's pool. */
export type PgBossSql = (text: string, values: unknown[]) => Promise<{ rows: Record<string, unknown>[] }>;

// `created` and `retry` jobs run once their start_after has come: before it they are delayed (a retry's
// backoff, a deferral), after it they wait for a worker.
const READY = `state IN ('created', 'retry') AND start_after <= now()`;

/** The statement behind {@link pgBossStats}, for pg-boss's schema. */
const statsStatement = (schema: string) => `
  SELECT count(*) FILTER (WHERE ${READY}) AS waiting,
    count(*) FILTER (WHERE state IN ('created', 'retry') AND start_after > now()) AS delayed,
    count(*) FILTER (WHERE state = 'active') AS active,
    count(*) FILTER (WHERE state = 'failed') AS failed,
    count(*) FILTER (WHERE state = 'completed') AS completed,
    (extract(epoch FROM now() - min(start_after) FILTER (WHERE ${READY})) * 1000)::float8 AS oldest_ms
  FROM ${schema}.job WHERE name = $1`;

/** A queue's counts by state, and how long its longest-waiting ready job has been ready (by the database's clock). */
export async function pgBossStats(sql: PgBossSql, schema: string, queueName: string): Promise<InboxStats> {
  const [row] = (await sql(statsStatement(schema), [queueName])).rows;
  const count = (column: string) => Number(row?.[column] ?? 0) || 0;
  const oldest = row?.oldest_ms;
  return {
    queueName,
    waiting: count('waiting'),
    active: count('active'),
    delayed: count('delayed'),
    failed: count('failed'),
    completed: count('completed'),
    oldestWaitingMs:
      oldest === null || oldest === undefined ? undefined : Math.max(0, Math.round(Number(oldest))),
    paused: false,
  };
}

/** Queues counted at most: the rest are reported as `more`. */
const MAX_CANDIDATES = 50;

/**
 * The other pg-boss queues of the schema that hold jobs, by name, at most `limit`: the names from pg-boss's
 * own `getQueues()`, the counts from its job table.
 */
export async function otherPgBossQueues(
  boss: PgBoss,
  schema: string,
  exclude: string,
  limit: number,
): Promise<OtherQueues> {
  const names = (await boss.getQueues())
    .map((queue) => queue.name)
    .filter((name) => name !== exclude)
    .sort();
  const candidates = names.slice(0, MAX_CANDIDATES);
  if (candidates.length === 0) return { queues: [], more: false };
  const result = (await boss.getDb().executeSql(
    `SELECT name, count(*) AS jobs, count(*) FILTER (WHERE state = 'failed') AS failed
       FROM ${schema}.job WHERE name = ANY($1::text[]) GROUP BY name`,
    [candidates],
  )) as { rows: Record<string, unknown>[] } | undefined;
  if (result === undefined) throw new Error('pg-boss is stopped: its connections are closed');
  const counted = new Map(result.rows.map((row) => [String(row.name), row]));
  const busy: OtherQueue[] = candidates.flatMap((name) => {
    const row = counted.get(name);
    const jobs = Number(row?.jobs ?? 0) || 0;
    return jobs === 0 ? [] : [{ name, jobs, failed: Number(row?.failed ?? 0) || 0 }];
  });
  return { queues: busy.slice(0, limit), more: busy.length > limit || names.length > candidates.length };
}
