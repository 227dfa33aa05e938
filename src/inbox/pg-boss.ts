import { createHash } from 'node:crypto';
import PgBoss from 'pg-boss';
import { createPostgresDedupStore } from '../stores/postgres.js';
import { withTimeout } from '../stores/with-timeout.js';
import { positive, settleWithin } from '../util/values.js';
import {
  createJobRunner,
  type DeadLetter,
  type FailedInboxJob,
  type Inbox,
  type InboxJob,
  type InboxWorker,
  type InboxWorkerOptions,
} from './inbox.js';

/** Options for {@link createPgBossInbox}. */
export interface PgBossInboxOptions {
  /** pg-boss's own: a connection string, or its constructor options (`{ connectionString, schema, ... }`). */
  connection: string | PgBoss.ConstructorOptions;
  /** The queue's name; default `'hookguard'`. */
  queueName?: string;
  /** Runs per event before it is kept as failed (dead letter); default 8. */
  attempts?: number;
  /** Wait before the first retry in ms (whole seconds, at least 1), doubled for each next one; default 1000. */
  backoffMs?: number;
  /** Longest the web side waits for PostgreSQL to take an event; default 2000 ms, then INBOX_UNAVAILABLE. */
  enqueueTimeoutMs?: number;
  /** A running job whose worker died is retried after this; default 900 s (pg-boss's 15 minutes). */
  expireInSeconds?: number;
}

/** Options for {@link PgBossInbox.worker}. */
export interface PgBossWorkerOptions extends InboxWorkerOptions {
  /** Jobs run at once in this worker; default 1. */
  concurrency?: number;
  /** How long an idle worker waits before it looks for jobs again; default 2 s, at least 0.5 s. */
  pollingIntervalSeconds?: number;
}

/** The durable inbox on pg-boss, for the web side (`inbox` option) and for workers. */
export interface PgBossInbox extends Inbox, DeadLetter {
  /** The pg-boss instance (its tables in the `pgboss` schema are the dashboard). */
  readonly boss: PgBoss;
  readonly queueName: string;
  worker(options: PgBossWorkerOptions): InboxWorker;
}

/** A UUID derived from the dedup key: pg-boss inserts with ON CONFLICT DO NOTHING on it. */
function jobIdOf(key: string): string {
  const h = createHash('sha256').update(key).digest('hex');
  const variant = ((Number.parseInt(h[16]!, 16) & 0x3) | 0x8).toString(16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/**
 * A durable inbox on pg-boss (PostgreSQL; pg-boss 10 runs on Node 20). Same contract as
 * `hookguard/bullmq`: the web side answers only once the job row is committed, the job id is derived from
 * the dedup key (copies answer `duplicate`), workers retry with exponential backoff and keep a job that
 * failed its last attempt as failed.
 *
 * @example
 * ```ts
 * import { createPgBossInbox } from 'hookguard/pg-boss';
 * import { stripeWebhook } from 'hookguard/express';
 * const inbox = createPgBossInbox({ connection: process.env.DATABASE_URL! });
 * const payments = { secret: process.env.STRIPE_WEBHOOK_SECRET, inbox, on: { 'invoice.paid': onPaid } };
 * app.post('/stripe', stripeWebhook(payments));
 * inbox.worker({ stripe: payments, concurrency: 2 });
 * ```
 */
export function createPgBossInbox(options: PgBossInboxOptions): PgBossInbox {
  const queue = options.queueName ?? 'hookguard';
  const { connection } = options;
  const boss = typeof connection === 'string' ? new PgBoss(connection) : new PgBoss(connection);
  // Connection errors are reported per request (INBOX_UNAVAILABLE); they must not crash the process.
  boss.on('error', () => undefined);
  const schema =
    typeof options.connection === 'object' && typeof options.connection.schema === 'string'
      ? options.connection.schema
      : 'pgboss';
  const attempts = Math.max(1, Math.floor(positive(options.attempts, 8)));
  const retryDelay = Math.max(1, Math.round(positive(options.backoffMs, 1000) / 1000));
  const enqueueTimeoutMs = positive(options.enqueueTimeoutMs, 2000);
  let ready: Promise<void> | undefined;
  // Started on first use; a failed start is tried again on the next call.
  const start = (): Promise<void> =>
    (ready ??= (async () => {
      await boss.start();
      await boss.createQueue(queue, {
        name: queue,
        retryLimit: attempts - 1,
        retryDelay,
        retryBackoff: true,
        expireInSeconds: positive(options.expireInSeconds, 900),
      });
    })().catch((err: unknown) => {
      ready = undefined;
      throw err;
    }));
  const sql = (text: string, values: unknown[]) => boss.getDb().executeSql(text, values);

  return {
    boss,
    queueName: queue,
    enqueue: (job) =>
      withTimeout('pg-boss enqueue', enqueueTimeoutMs, async () => {
        await start();
        const id = await boss.send(
          queue,
          job as unknown as object,
          job.key === undefined ? {} : { id: jobIdOf(job.key) },
        );
        return id === null ? 'duplicate' : 'queued';
      }),
    worker: (workerOptions) => startWorker(boss, start, queue, workerOptions, schema),
    async failed(limit = 100) {
      await start();
      const { rows } = await sql(
        `SELECT id, data, retry_count, output, completed_on FROM ${schema}.job
         WHERE name = $1 AND state = 'failed' ORDER BY completed_on DESC LIMIT $2`,
        [queue, Math.max(1, limit)],
      );
      return rows.map(describeFailed);
    },
    async retry(id) {
      await start();
      const result = (await boss.retry(queue, id)) as unknown as { affected?: number };
      return (result.affected ?? 0) > 0;
    },
    async retryAll() {
      await start();
      const { rows } = await sql(`SELECT id FROM ${schema}.job WHERE name = $1 AND state = 'failed'`, [
        queue,
      ]);
      if (rows.length === 0) return 0;
      const result = (await boss.retry(
        queue,
        rows.map((row: { id: string }) => row.id),
      )) as unknown as { affected?: number };
      return result.affected ?? 0;
    },
    close: () => boss.stop({ graceful: true, wait: true, timeout: 30_000 }),
  };
}

function describeFailed(row: {
  id: string;
  data: InboxJob;
  retry_count: number;
  output: unknown;
  completed_on: Date | null;
}): FailedInboxJob {
  const output = row.output as { message?: unknown } | null;
  return {
    id: row.id,
    provider: String(row.data.provider),
    event: row.data.name,
    key: row.data.key,
    attempts: row.retry_count + 1,
    error: typeof output?.message === 'string' ? output.message : 'failed',
    failedAt: row.completed_on === null ? undefined : new Date(row.completed_on).toISOString(),
  };
}

function startWorker(
  boss: PgBoss,
  start: () => Promise<void>,
  queue: string,
  options: PgBossWorkerOptions,
  schema: string,
): InboxWorker {
  const runner = createJobRunner(options, () => {
    // The dedup store on pg-boss's own database, in its schema: every worker of the inbox shares it.
    const store = createPostgresDedupStore({
      pool: { query: (text, values) => boss.getDb().executeSql(text, values ?? []) },
      table: `${schema}.hookguard_dedup`,
    });
    let made: Promise<void> | undefined;
    const ready = () => (made ??= start().then(() => store.ensureSchema())).catch((err: unknown) => {
      made = undefined;
      throw err;
    });
    return {
      claim: async (key, leaseMs) => (await ready(), store.claim(key, leaseMs)),
      complete: async (key, token, ttlMs) => (await ready(), store.complete(key, token, ttlMs)),
      release: async (key, token) => (await ready(), store.release(key, token)),
    };
  });
  const concurrency = Math.max(1, Math.floor(positive(options.concurrency, 1)));
  const idleMs = Math.max(500, positive(options.pollingIntervalSeconds, 2) * 1000);
  let stopping = false;
  let wake: (() => void) | undefined;
  const idle = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  // One job, settled in pg-boss by its own outcome: complete, or fail (pg-boss then retries it with
  // backoff, or keeps it as failed after its last attempt).
  const settle = async (job: PgBoss.JobWithMetadata<InboxJob>): Promise<void> => {
    try {
      await runner.run(job.data, job.retryCount + 1, job.retryCount + 1 >= job.retryLimit + 1);
      await boss.complete(queue, job.id);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      await boss.fail(queue, job.id, { message }).catch(() => undefined);
    }
  };
  // Our own loop rather than boss.work(): it fetches up to `concurrency` jobs, settles each by its own
  // outcome, and fetches again at once while there is work (boss.work waits a polling interval per batch).
  const loop = (async () => {
    while (!stopping) {
      let jobs: PgBoss.JobWithMetadata<InboxJob>[];
      try {
        await start();
        jobs = await boss.fetch<InboxJob>(queue, { batchSize: concurrency, includeMetadata: true });
      } catch {
        jobs = []; // the database is away: look again after the idle wait
      }
      if (jobs.length === 0) await idle(idleMs);
      else await Promise.all(jobs.map(settle));
    }
  })();
  return {
    stats: () => ({ ...runner.counts }),
    async close(timeoutMs = 30_000) {
      stopping = true;
      wake?.();
      await settleWithin(loop, timeoutMs);
    },
  };
}

export type {
  DeadLetter,
  FailedInboxJob,
  Inbox,
  InboxContext,
  InboxHandlers,
  InboxJob,
  InboxWorker,
  InboxWorkerOptions,
} from './inbox.js';
