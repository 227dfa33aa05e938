import { LANE_WRITE_GRACE_MS } from './lane-rules.js';

// Ordering for the pg-boss inbox (`ordered: true`): one row per waiting job in `hookguard_lane`, in
// pg-boss's schema, numbered by a sequence when the web side accepts the event. A job runs only if it is
// the lowest of its key's rows; the others are given back (no attempt used) and the job that leaves the
// lane makes the next one due at once. Same rules as the BullMQ lanes (bullmq-lanes.ts).

type Sql = (
  text: string,
  values: unknown[],
) => Promise<{ rows: Record<string, unknown>[]; rowCount: number }>;

export type LaneVerdict = 'run' | 'wait';

/** The lanes of one queue in `schema`. `start` resolves once pg-boss (and its schema) is up. */
export function pgBossLanes(sql: Sql, schema: string, queue: string, start: () => Promise<unknown>) {
  const table = `${schema}.hookguard_lane`;
  let made: Promise<void> | undefined;
  const ready = () =>
    (made ??= start()
      .then(() => createTable(sql, table))
      .catch((err: unknown) => {
        made = undefined;
        throw err;
      }));

  /**
   * Web side, before the job is sent: the job takes its place in its key's lane (once). True when no other
   * job of its key waits: a job behind others is then sent parked (due later), as on BullMQ.
   */
  async function join(orderKey: string, jobId: string): Promise<boolean> {
    await ready();
    const { rows } = await sql(
      `WITH joined AS (INSERT INTO ${table} (queue, order_key, job_id) VALUES ($1, $2, $3::uuid)
         ON CONFLICT DO NOTHING)
       SELECT NOT EXISTS (SELECT 1 FROM ${table} WHERE queue = $1 AND order_key = $2 AND job_id <> $3::uuid)
         AS alone`,
      [queue, orderKey, jobId],
    );
    return rows[0]?.alone === true;
  }

  /** Web side, after a parked job was sent: the jobs ahead may have left before it existed. */
  async function heads(orderKey: string, jobId: string): Promise<boolean> {
    const { rows } = await sql(
      `SELECT job_id::text AS id FROM ${table} WHERE queue = $1 AND order_key = $2 ORDER BY seq LIMIT 1`,
      [queue, orderKey],
    );
    return rows[0]?.id === jobId;
  }

  /** Worker side, before a run: 'run' when the job heads its lane or is in none (see bullmq-lanes.ts). */
  async function check(orderKey: string, jobId: string, hold: boolean): Promise<LaneVerdict> {
    await ready();
    for (;;) {
      const { rows } = await sql(
        `WITH head AS (
           SELECT job_id, seq, accepted_at < now() - $4::float8 * interval '1 millisecond' AS old
           FROM ${table} WHERE queue = $1 AND order_key = $2 ORDER BY seq LIMIT 1)
         SELECT EXISTS (SELECT 1 FROM ${table} WHERE queue = $1 AND job_id = $3::uuid) AS member,
           head.job_id::text AS head, head.seq::text AS seq, head.old, j.state::text AS state
         FROM (SELECT 1) AS one LEFT JOIN head ON true
           LEFT JOIN ${schema}.job AS j ON j.name = $1 AND j.id = head.job_id`,
        [queue, orderKey, jobId, LANE_WRITE_GRACE_MS],
      );
      const row = rows[0] ?? {};
      if (row.member !== true || row.head === jobId || row.head === null) return 'run';
      const state = row.state as string | null;
      const dead =
        state === null
          ? row.old === true
          : state === 'completed' || state === 'cancelled' || (state === 'failed' && !hold);
      if (!dead) return 'wait';
      await sql(`DELETE FROM ${table} WHERE queue = $1 AND job_id = $2::uuid AND seq = $3::bigint`, [
        queue,
        row.head,
        row.seq,
      ]);
    }
  }

  /** After the job's last run: leaves the lane and makes the next job of its key due now (one statement). */
  async function leave(orderKey: string, jobId: string): Promise<void> {
    await sql(leaving(`DELETE FROM ${table} WHERE queue = $1 AND job_id = $3::uuid`), [
      queue,
      orderKey,
      jobId,
    ]);
  }

  /**
   * `first` (a data-modifying statement on $1 queue, $2 order key, $3 job id), the job's leaving of its
   * lane and the promotion of the next, as one statement: one commit (the completion and the leaving of a
   * successful run go together this way).
   */
  function leaving(first: string): string {
    return `WITH done AS (${first}),
         gone AS (DELETE FROM ${table} WHERE queue = $1 AND job_id = $3::uuid),
         next AS (SELECT job_id FROM ${table} WHERE queue = $1 AND order_key = $2 AND job_id <> $3::uuid
           ORDER BY seq LIMIT 1)
       UPDATE ${schema}.job SET start_after = now()
       WHERE name = $1 AND id = (SELECT job_id FROM next) AND state IN ('created', 'retry') AND start_after > now()`;
  }

  /** A job given back to wait for its turn is due now (its next fetch takes it). */
  async function promote(jobId: string): Promise<void> {
    await sql(
      `UPDATE ${schema}.job SET start_after = now()
       WHERE name = $1 AND id = $2::uuid AND state IN ('created', 'retry') AND start_after > now()`,
      [queue, jobId],
    );
  }

  return { join, heads, check, leave, leaving, promote };
}

async function createTable(sql: Sql, table: string): Promise<void> {
  const statement = `CREATE TABLE IF NOT EXISTS ${table} (
    queue text NOT NULL,
    order_key text NOT NULL,
    job_id uuid NOT NULL,
    seq bigserial NOT NULL,
    accepted_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (queue, job_id));
  CREATE INDEX IF NOT EXISTS hookguard_lane_order ON ${table} (queue, order_key, seq);`;
  try {
    await sql(statement, []);
  } catch (err) {
    // Two processes creating it at once: PostgreSQL's IF NOT EXISTS is not atomic, the loser gets a
    // unique violation on the catalog, and the table exists.
    const code = (err as { code?: unknown }).code;
    if (code !== '23505' && code !== '42P07') throw err;
  }
}
