import type { InboxJob } from '../pipeline/enqueue-stage.js';
import { LANE_WRITE_GRACE_MS, type LaneVerdict } from './lane-rules.js';

// Ordering for the pg-boss inbox (`ordered: true`): one row per waiting job in `hookguard_lane`, in
// pg-boss's schema, numbered by a sequence when the web side accepts the event. A job runs only if it is
// the lowest of its key's rows; the others are given back (no attempt used) and the job that leaves the
// lane makes the next one due at once. Same rules as the BullMQ lanes (bullmq-lanes.ts).

/**
 * What a promotion sets: the job is due now, and fetched before jobs that are merely due. pg-boss fetches
 * by priority, then creation time; without the bump a promoted head waited behind every older job whose
 * park had run out (a backlog's worth, each taken only to be given back): 1.7-3.6 s hand-overs, seen with
 * 4 workers meeting a 1,000-job backlog. hookguard sets no other priority; the job keeps it for its retries
 * (it heads its key until it leaves).
 */
const DUE_NOW = 'start_after = now(), priority = GREATEST(priority, 1)';

export type Sql = (
  text: string,
  values: unknown[],
) => Promise<{ rows: Record<string, unknown>[]; rowCount: number }>;

/** The lanes of one queue in `schema`. `start` resolves once pg-boss (and its schema) is up. */
export function pgBossLanes(sql: Sql, schema: string, queue: string, start: () => Promise<unknown>) {
  const table = `${schema}.hookguard_lane`;
  const statement = laneStatements(schema, table);
  const leaveStatement = leavingStatement(schema, table, statement.leave);
  let made: Promise<void> | undefined;
  const ready = () =>
    (made ??= start()
      .then(() => createTable(sql, table))
      .catch((err: unknown) => {
        made = undefined;
        throw err;
      }));

  /**
   * Web side, before the job is sent: the job takes its place in its key's lane (once). `alone`: no other
   * job of its key waits (a job behind others is sent parked, due later, as on BullMQ). `added`: this call
   * put it in the lane (a copy of a job that already finished must then take it out again).
   */
  async function join(orderKey: string, jobId: string) {
    await ready();
    const { rows } = await sql(statement.join, [queue, orderKey, jobId]);
    return { alone: rows[0]?.alone === true, added: Number(rows[0]?.added) === 1 };
  }

  /** Web side, after a parked job was sent: the jobs ahead may have left before it existed. */
  async function heads(orderKey: string, jobId: string): Promise<boolean> {
    const { rows } = await sql(statement.head, [queue, orderKey]);
    return rows[0]?.id === jobId;
  }

  /** Worker side, before a run: 'run' when the job heads its lane or is in none (see bullmq-lanes.ts). */
  async function check(orderKey: string, jobId: string, hold: boolean): Promise<LaneVerdict> {
    await ready();
    for (;;) {
      const { rows } = await sql(statement.turn, [queue, orderKey, jobId, LANE_WRITE_GRACE_MS]);
      const row = rows[0] ?? {};
      if (row.member !== true || row.head === jobId || row.head === null) return 'run';
      if (!isDead(row.state as string | null, row.old === true, hold)) return 'wait';
      await sql(statement.drop, [queue, row.head, row.seq]);
    }
  }

  /** After the job's last run: leaves the lane and makes the next job of its key due now (one statement). */
  async function leave(orderKey: string, jobId: string): Promise<void> {
    await left(orderKey, (await sql(leaveStatement, [queue, orderKey, jobId])).rowCount);
  }

  /**
   * After a leaving statement that promoted `promoted` jobs: when none, the lane's head is made due again.
   * One statement sees one snapshot: a job that joined the lane while it ran (not yet committed) was not
   * promoted by it, and that job's own check after its write may have run before the leave committed.
   */
  async function left(orderKey: string, promoted: number): Promise<void> {
    if (promoted === 0) await sql(statement.promoteHead, [queue, orderKey]).catch(() => undefined);
  }

  const leaving = (first: string) => leavingStatement(schema, table, first);

  /** A job given back to wait for its turn is due now (its next fetch takes it). */
  async function promote(jobId: string): Promise<void> {
    await sql(statement.promote, [queue, jobId]);
  }

  /** For coalescing (bursts.ts): the lane's first `limit` members, when each was accepted, their jobs. */
  async function view(
    orderKey: string,
    limit: number,
    withJobs: boolean,
    parse: (data: unknown) => InboxJob | undefined,
  ) {
    await ready();
    const { rows } = await sql(withJobs ? statement.viewJobs : statement.view, [queue, orderKey, limit]);
    return membersOf(rows, withJobs ? parse : () => undefined);
  }

  return { join, heads, check, leave, leaving, left, promote, view };
}

/**
 * `first` (a data-modifying statement on $1 queue, $2 order key, $3 job id), the job's leaving of its lane
 * and the promotion of the next, as one statement: one commit (the completion and the leaving of a
 * successful run go together this way).
 */
function leavingStatement(schema: string, table: string, first: string): string {
  return `WITH done AS (${first}),
       gone AS (DELETE FROM ${table} WHERE queue = $1 AND job_id = $3::uuid),
       next AS (SELECT job_id FROM ${table} WHERE queue = $1 AND order_key = $2 AND job_id <> $3::uuid
         ORDER BY seq LIMIT 1)
     UPDATE ${schema}.job SET ${DUE_NOW}
     WHERE name = $1 AND id = (SELECT job_id FROM next) AND state IN ('created', 'retry') AND start_after > now()`;
}

/** A lane view's rows as bursts.ts reads them; a job that does not parse is undefined (the batch stops). */
function membersOf(rows: Record<string, unknown>[], parse: (data: unknown) => InboxJob | undefined) {
  const members = rows.map((row) => {
    let job: InboxJob | undefined;
    try {
      job = parse(row.data);
    } catch {
      job = undefined;
    }
    return { acceptedAt: Number(row.accepted), job };
  });
  return { now: rows.length === 0 ? Date.now() : Number(rows[0]!.now), members };
}

/** A head that can no longer run (see bullmq-lanes.ts): its job finished, or never got written. */
function isDead(state: string | null, old: boolean, hold: boolean): boolean {
  if (state === null) return old;
  return state === 'completed' || state === 'cancelled' || (state === 'failed' && !hold);
}

/** The lane SQL of one schema: $1 is always the queue. */
function laneStatements(schema: string, table: string) {
  return {
    // $2 order key, $3 job id: joins once; whether no other job of the key waits.
    join: `WITH joined AS (INSERT INTO ${table} (queue, order_key, job_id) VALUES ($1, $2, $3::uuid)
        ON CONFLICT DO NOTHING RETURNING 1)
      SELECT NOT EXISTS (SELECT 1 FROM ${table} WHERE queue = $1 AND order_key = $2 AND job_id <> $3::uuid)
        AS alone, (SELECT count(*) FROM joined) AS added`,
    // $2 order key: the lane's head.
    head: `SELECT job_id::text AS id FROM ${table} WHERE queue = $1 AND order_key = $2 ORDER BY seq LIMIT 1`,
    // $2 order key, $3 job id, $4 the write grace in ms: is the job in the lane, and who heads it, how.
    turn: `WITH head AS (
        SELECT job_id, seq, accepted_at < now() - $4::float8 * interval '1 millisecond' AS old
        FROM ${table} WHERE queue = $1 AND order_key = $2 ORDER BY seq LIMIT 1)
      SELECT EXISTS (SELECT 1 FROM ${table} WHERE queue = $1 AND job_id = $3::uuid) AS member,
        head.job_id::text AS head, head.seq::text AS seq, head.old, j.state::text AS state
      FROM (SELECT 1) AS one LEFT JOIN head ON true
        LEFT JOIN ${schema}.job AS j ON j.name = $1 AND j.id = head.job_id`,
    // $2 job id, $3 its seq: a dead head, only if it is still the one seen.
    drop: `DELETE FROM ${table} WHERE queue = $1 AND job_id = $2::uuid AND seq = $3::bigint`,
    // $3 job id (for leaving()).
    leave: `DELETE FROM ${table} WHERE queue = $1 AND job_id = $3::uuid`,
    // $2 order key, $3 how many: the lane's first members, when each was accepted (ms), the clock now.
    view: `SELECT extract(epoch FROM accepted_at) * 1000 AS accepted, extract(epoch FROM now()) * 1000 AS now
      FROM ${table} WHERE queue = $1 AND order_key = $2 ORDER BY seq LIMIT $3`,
    // The same, with each member's job data.
    viewJobs: `SELECT extract(epoch FROM l.accepted_at) * 1000 AS accepted, extract(epoch FROM now()) * 1000 AS now,
        j.data FROM ${table} AS l LEFT JOIN ${schema}.job AS j ON j.name = $1 AND j.id = l.job_id
      WHERE l.queue = $1 AND l.order_key = $2 ORDER BY l.seq LIMIT $3`,
    // $2 job id: a parked or given-back job is due now.
    promote: `UPDATE ${schema}.job SET ${DUE_NOW}
      WHERE name = $1 AND id = $2::uuid AND state IN ('created', 'retry') AND start_after > now()`,
    // $2 order key: the lane's head, if parked or given back, is due now.
    promoteHead: `UPDATE ${schema}.job SET ${DUE_NOW}
      WHERE name = $1 AND state IN ('created', 'retry') AND start_after > now()
        AND id = (SELECT job_id FROM ${table} WHERE queue = $1 AND order_key = $2 ORDER BY seq LIMIT 1)`,
  };
}

async function createTable(sql: Sql, table: string): Promise<void> {
  await createTolerantly(
    sql,
    `CREATE TABLE IF NOT EXISTS ${table} (
    queue text NOT NULL,
    order_key text NOT NULL,
    job_id uuid NOT NULL,
    seq bigserial NOT NULL,
    accepted_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (queue, job_id));
  CREATE INDEX IF NOT EXISTS hookguard_lane_order ON ${table} (queue, order_key, seq);`,
  );
}

/** Runs `ddl` (CREATE … IF NOT EXISTS), taking a concurrent creation by another process for success. */
export async function createTolerantly(sql: Sql, ddl: string): Promise<void> {
  try {
    await sql(ddl, []);
  } catch (err) {
    // Two processes creating it at once: PostgreSQL's IF NOT EXISTS is not atomic, the loser gets a
    // unique violation on the catalog, and the table exists.
    const code = (err as { code?: unknown }).code;
    if (code !== '23505' && code !== '42P07') throw err;
  }
}
