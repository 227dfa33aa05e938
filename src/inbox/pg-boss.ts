import { createHash } from 'node:crypto';
import type PgBoss from 'pg-boss';
import * as pgBossModule from 'pg-boss';
import type { DedupStore } from '../dedup/dedup-store.js';
import { safeLogger } from '../pipeline/safe-logger.js';
import type { InboxMessaging } from '../pipeline/telemetry.js';
import type { Logger } from '../pipeline/types.js';
import { createPostgresDedupStore } from '../stores/postgres.js';
import { withTimeout } from '../stores/with-timeout.js';
import { describeError, field, positive, settleWithin } from '../util/values.js';
import { INBOX_DEFAULTS } from './defaults.js';
import {
  createJobRunner,
  isInboxJob,
  isRunnableJob,
  JobDeferred,
  type DeadLetter,
  type DeferReason,
  type FailedInboxJob,
  type Inbox,
  type InboxJob,
  type InboxWorker,
  type InboxWorkerOptions,
  type JobRunner,
} from './inbox.js';
import { createPersistence } from './until-it-sticks.js';
import type { InboxStats } from './inbox-stats.js';
import { pgBossStats } from './pg-boss-stats.js';
import { pgBossLanes } from './pg-boss-lanes.js';
import { postgresMarks } from './freshness.js';
import { turnRecheckMs } from './lane-rules.js';
import { orderKeyOf } from './order-keys.js';
import { createBacklogWatch } from './backlog-watch.js';
import { createWriteGate } from './write-gate.js';

/** Options for {@link createPgBossInbox}. */
export interface PgBossInboxOptions {
  /**
   * pg-boss's own: a connection string, or its constructor options (`{ connectionString, schema, ... }`).
   * The retention below is merged under them as defaults: your own `archiveCompletedAfterSeconds` /
   * `archiveFailedAfterSeconds` win.
   */
  connection: string | PgBoss.ConstructorOptions;
  /** The queue's name; default `'hookguard'`. */
  queueName?: string;
  /**
   * Runs per event before it is kept as failed (dead letter); default 15. After failed run n pg-boss 10
   * waits `retryDelay × 2^(min(n, 16) − 1) × (1 + random())` seconds (its `retryBackoff`: doubling, capped
   * at 2^15 × retryDelay, jittered upwards by up to 100 %). So 15 runs from 1 s retry for
   * 1 + 2 + … + 8192 = 16 383 s ≈ 4.6 h at least and 32 766 s ≈ 9.1 h at most (≈ 6.8 h on average), plus up
   * to one polling interval per retry. Each job carries it (and `backoffMs`, `expireInSeconds`), so the
   * web side's settings apply whatever the queue was created with.
   */
  attempts?: number;
  /** Wait before the first retry in ms (whole seconds, at least 1), doubled for each next one; default 1000. */
  backoffMs?: number;
  /**
   * Longest the web side waits for PostgreSQL to take an event; default 2000 ms, then INBOX_UNAVAILABLE. A
   * write that timed out may still land: the provider's retry is then answered `duplicate`.
   */
  enqueueTimeoutMs?: number;
  /**
   * The web side warns when the oldest waiting event has waited longer than this: nothing takes jobs (no
   * worker runs, or the queue is paused). It looks after an enqueue, at most once per period; default
   * 60,000 ms, 0 turns it off.
   */
  backlogWarnMs?: number;
  /** Writes PostgreSQL has not confirmed yet (timed-out ones included) before the next is refused at once; default 1000. */
  maxPendingWrites?: number;
  /** Their bodies' bytes; default 16 MiB. Bounds the web process's memory while PostgreSQL stalls. */
  maxPendingBytes?: number;
  /**
   * How long completed jobs stay in `job` (a copy meanwhile answers `duplicate`); default 3 days. pg-boss
   * 10's `archiveCompletedAfterSeconds`: its maintenance archives for every queue of the schema with the
   * settings of whichever instance runs it, so give the inbox a schema of its own, or the same retention to
   * every pg-boss instance on it. From pg-boss 11 on, each job's own `deleteAfterSeconds`.
   */
  keepCompletedMs?: number;
  /**
   * How long failed jobs (the dead letter) stay unless retried; default 30 days (pg-boss 10's
   * `archiveFailedAfterSeconds`; from pg-boss 11 on, each job's own `deleteAfterSeconds`).
   */
  keepFailedMs?: number;
  /**
   * A running job whose worker died is handed out again after this (checked by pg-boss's maintenance);
   * default 900 s (pg-boss's 15 minutes), at most 24 h. A run that outlives it gives its worker slot up (an
   * error is logged) and its job is handed out again: the claim keeps it from running twice while the
   * worker's `leaseMs` lasts. Keep both above your slowest handler.
   */
  expireInSeconds?: number;
  /** Warnings (PostgreSQL not durable) and errors; default the console, `false` silences. */
  logger?: Logger | false;
  /**
   * Events with the same ordering key (the endpoint's `orderKey`: by default a Chatwoot conversation, a
   * Stripe object) run one at a time across every worker, in the order the web side accepted them; other
   * keys are not held up. A failing event holds its key through its retries; once it is dead-lettered the
   * key moves on (`holdOrderOnFailure` keeps it held until the job is retried or removed). Default false.
   */
  ordered?: boolean;
  /** With `ordered`: a dead-lettered event keeps holding its key. Default false. */
  holdOrderOnFailure?: boolean;
}

/** Options for {@link PgBossInbox.worker}. */
export interface PgBossWorkerOptions extends InboxWorkerOptions {
  /** Jobs run at once in this worker; default 1. Each slot takes the next job as soon as it is free. */
  concurrency?: number;
  /** How long an idle worker waits before it looks for jobs again; default 2 s, at least 0.5 s. */
  pollingIntervalSeconds?: number;
  /** A job whose key another worker holds (or without handlers here) is looked at again after this (no attempt is used); default 5000 ms. */
  inFlightDelayMs?: number;
}

/** The durable inbox on pg-boss, for the web side (`inbox` option) and for workers. */
export interface PgBossInbox extends Inbox, DeadLetter {
  /** The pg-boss instance (its tables in the `pgboss` schema are the dashboard). */
  readonly boss: PgBoss;
  readonly queueName: string;
  /** The queue's jobs by state, and how long the longest-waiting one has waited (`hookguard inbox stats`). */
  stats(): Promise<InboxStats>;
  worker(options: PgBossWorkerOptions): InboxWorker;
  /**
   * Closes this inbox's workers (each waits for its running handlers at most `timeoutMs`, default 30 s,
   * then abandons them), then stops pg-boss and ends its connections (at most a second more).
   */
  close(timeoutMs?: number): Promise<void>;
}

/** A UUID derived from the dedup key: pg-boss inserts with ON CONFLICT DO NOTHING on it. */
function jobIdOf(key: string): string {
  const h = createHash('sha256').update(key).digest('hex');
  const variant = ((Number.parseInt(h[16]!, 16) & 0x3) | 0x8).toString(16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/**
 * A durable inbox on pg-boss (PostgreSQL; pg-boss 10 runs on Node 20, pg-boss 12 needs Node 22.12). Same
 * contract as `hookguard/bullmq`: the web side answers only once the job row is committed, the job id is
 * derived from the dedup key (copies answer `duplicate` for as long as the job is kept), workers retry with
 * exponential backoff and keep a job that failed its last attempt as failed.
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
  const engine = createEngine(options);
  const { queue } = engine;
  const gate = createWriteGate('pg-boss enqueue', options);
  const backlog = createBacklogWatch(
    () => engine.start().then(() => pgBossStats(engine.sql, engine.schema, queue)),
    options.backlogWarnMs,
    engine.log,
  );
  const workers = new Set<InboxWorker>();
  const lanes =
    options.ordered === true
      ? pgBossLanes(engine.sql, engine.schema, queue, () => engine.start())
      : undefined;
  const order = lanes === undefined ? undefined : { lanes, hold: options.holdOrderOnFailure === true };
  const add = async (job: InboxJob): Promise<'queued' | 'duplicate'> => {
    const boss = await engine.start();
    // Its place in its key's lane first: a job never runs before the ones accepted ahead of it. One behind
    // others is sent parked (due later), to be made due by the one ahead as it leaves.
    const orderKey = lanes === undefined || job.key === undefined ? undefined : orderKeyOf(job);
    if (orderKey !== undefined) job.orderKey = orderKey; // what the worker orders it by
    const laneId = orderKey === undefined ? undefined : jobIdOf(job.key!);
    const joined = laneId === undefined ? undefined : await lanes!.join(orderKey!, laneId);
    const parked = joined?.alone === false;
    const id = await boss.send(queue, dataOf(job), {
      ...engine.jobOptions,
      ...(job.key === undefined ? {} : { id: jobIdOf(job.key) }),
      ...(parked ? { startAfter: Math.ceil(INBOX_DEFAULTS.deferMs / 1000) } : {}),
    });
    if (joined?.added === true && id === null) {
      // A copy of a job that had left its lane (it finished): nothing was sent, and the lane must not
      // wait for it.
      await lanes!.leave(orderKey!, laneId!);
    } else if (parked && (await lanes!.heads(orderKey!, laneId!))) {
      await lanes!.promote(laneId!); // the one ahead left before this job existed: nobody promoted it
    }
    backlog.enqueued();
    return id === null ? 'duplicate' : 'queued';
  };

  return {
    get boss() {
      return engine.boss;
    },
    queueName: queue,
    enqueue: (job, size = 0) => gate.write(size, () => add(job)),
    messaging: engine.messaging,
    worker(workerOptions) {
      const worker = startWorker(engine, workerOptions, order);
      workers.add(worker);
      return worker;
    },
    async failed(limit = 100) {
      await engine.start();
      const { rows } = await engine.sql(engine.statements.failed, [queue, Math.max(1, Math.floor(limit))]);
      return rows.map(describeFailed);
    },
    async retry(id) {
      if (!UUID.test(id)) return false;
      await engine.start();
      return (await engine.sql(engine.statements.retry, [queue, id])).rowCount === 1;
    },
    // One statement: it retries exactly the jobs that were failed when it ran.
    async retryAll() {
      await engine.start();
      return (await engine.sql(engine.statements.retryAll, [queue])).rowCount;
    },
    async stats() {
      await engine.start();
      return pgBossStats(engine.sql, engine.schema, queue);
    },
    async close(timeoutMs = INBOX_DEFAULTS.closeTimeoutMs) {
      await Promise.all([...workers].map((worker) => worker.close(timeoutMs)));
      await engine.stop();
    },
  };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** What workers and the dead letter need of pg-boss: the started instance, our SQL, and its logger. */
interface Engine {
  readonly queue: string;
  /** The engine and queue, for the spans of the `telemetry` option. */
  readonly messaging: InboxMessaging;
  /** pg-boss's schema (`pgboss` unless the connection options name another). */
  readonly schema: string;
  /** The current instance (replaced after a start that failed half-way, see {@link createEngine}). */
  readonly boss: PgBoss;
  readonly statements: Statements;
  /**
   * Retries, backoff and expiry, sent with every job: a queue that already exists keeps the settings it was
   * created with (pg-boss's createQueue does nothing then), and jobs carry their own over the queue's.
   */
  readonly jobOptions: PgBoss.RetryOptions & PgBoss.ExpirationOptions & { deleteAfterSeconds?: number };
  readonly log: Required<Logger>;
  /** Starts pg-boss and the queue once (again after a failure); refuses once the inbox is closed. */
  start(): Promise<PgBoss>;
  /** A query on pg-boss's pool; fails (rather than answering nothing, as pg-boss does) once it is stopped. */
  sql(text: string, values: unknown[]): Promise<{ rows: Record<string, unknown>[]; rowCount: number }>;
  /** Stops pg-boss (at most a second) and refuses to start it again. */
  stop(): Promise<void>;
  readonly closed: boolean;
}

/**
 * pg-boss 11 replaced the archive (the archive*AfterSeconds options) with a deletion per job: each job's
 * deleteAfterSeconds (column deletion_seconds) counts from its completed_on, completed or failed alike. So
 * jobs go out with the failed retention, and the inbox's own completion sets the completed one.
 * getQueueStats() came in the same release: the feature check.
 */
const deletesEachJob = (boss: PgBoss) =>
  typeof (boss as { getQueueStats?: unknown }).getQueueStats === 'function';

/** Retries, backoff, expiry (and, from pg-boss 11 on, the deletion) every job is sent with. */
function jobOptionsOf(options: PgBossInboxOptions, deleteAfterSeconds: number | undefined) {
  return {
    retryLimit: Math.max(1, Math.floor(positive(options.attempts, INBOX_DEFAULTS.attempts))) - 1,
    retryDelay: Math.max(1, Math.round(positive(options.backoffMs, INBOX_DEFAULTS.backoffMs) / 1000)),
    retryBackoff: true,
    expireInSeconds: positive(options.expireInSeconds, 900),
    ...(deleteAfterSeconds === undefined ? {} : { deleteAfterSeconds }),
  };
}

/**
 * pg-boss with our defaults. `PgBoss.start()` that fails half-way (PostgreSQL down while it migrates)
 * leaves the instance marked as starting for good: later calls return at once without starting its
 * maintenance (expiry, archive), and `stop()` then does nothing. So a failed start retires the instance
 * and the next call starts a fresh one.
 */
function createEngine(options: PgBossInboxOptions): Engine {
  const queue = options.queueName ?? INBOX_DEFAULTS.queueName;
  const config = bossConfig(options);
  const schema = typeof config.schema === 'string' ? config.schema : 'pgboss';
  const log = safeLogger(options.logger, { queue });
  const make = () => newBoss(config);
  let boss = make();
  const keep = keepSeconds(options);
  const deletesPerJob = deletesEachJob(boss);
  const jobOptions = jobOptionsOf(options, deletesPerJob ? keep.failed : undefined);
  let ready: Promise<PgBoss> | undefined;
  let retryAt: number | undefined;
  let closed = false;
  let warned = false;
  const sql = async (text: string, values: unknown[]) => {
    const result = (await boss.getDb().executeSql(text, values)) as
      { rows: Record<string, unknown>[]; rowCount: number | null } | undefined;
    if (result === undefined) throw new Error('pg-boss is stopped: its connections are closed');
    return { rows: result.rows, rowCount: result.rowCount ?? 0 };
  };
  const begin = async (): Promise<PgBoss> => {
    const current = boss;
    try {
      await current.start();
    } catch (err) {
      boss = make();
      void retire(current);
      throw err;
    }
    await createQueueOnce(current, queue, jobOptions);
    if (!warned) {
      warned = true;
      void warnIfNotDurable(sql, log);
    }
    return current;
  };
  return {
    queue,
    messaging: { system: 'pg-boss', destination: queue, messageId: jobIdOf },
    schema,
    get boss() {
      return boss;
    },
    statements: statements(schema, deletesPerJob ? keep.completed : undefined),
    jobOptions,
    log,
    start() {
      if (closed) return Promise.reject(new Error('the pg-boss inbox was closed'));
      // A failed start answers every call for 250 ms, then the next call tries again: while PostgreSQL is
      // away, a burst of requests does not open a pool each.
      if (retryAt !== undefined && Date.now() >= retryAt) [ready, retryAt] = [undefined, undefined];
      return (ready ??= begin().catch((err: unknown) => {
        retryAt = Date.now() + 250;
        throw err;
      }));
    },
    sql,
    get closed() {
      return closed;
    },
    // At most a second: a start under way ends first (pg-boss's stop() does nothing before it has
    // started), and the stop goes on in the background if the server does not answer.
    async stop() {
      closed = true;
      const stopping = (async () => {
        await ready?.catch(() => undefined);
        await boss.stop({ graceful: true, wait: true, timeout: 1000 });
      })();
      await settleWithin(stopping, 1000);
    },
  };
}

/**
 * pg-boss's class: up to pg-boss 11 (CommonJS) the module itself, which ESM sees as its default export;
 * pg-boss 12 is ESM with a named `PgBoss` export and no default. The types stay pg-boss 10's: the calls
 * made here kept their shape.
 */
const PgBossClass: typeof PgBoss =
  (pgBossModule as { PgBoss?: typeof PgBoss }).PgBoss ??
  (pgBossModule as unknown as { default: typeof PgBoss }).default;

function newBoss(config: PgBoss.ConstructorOptions): PgBoss {
  const boss = new PgBossClass(config);
  // Connection errors are reported per call (INBOX_UNAVAILABLE, a retried completion): they must not
  // crash the process (pg-boss re-emits its pool's 'error' and its maintenance failures here).
  boss.on('error', () => undefined);
  return boss;
}

/** The user's connection options, over our retention defaults (keys the user left undefined do not count). */
function bossConfig(options: PgBossInboxOptions): PgBoss.ConstructorOptions {
  const keep = keepSeconds(options);
  const own =
    typeof options.connection === 'string'
      ? { connectionString: options.connection }
      : Object.fromEntries(Object.entries(options.connection).filter(([, value]) => value !== undefined));
  return {
    archiveCompletedAfterSeconds: keep.completed,
    archiveFailedAfterSeconds: keep.failed,
    ...own,
  };
}

/** How long completed and failed jobs stay, in whole seconds. */
function keepSeconds(options: PgBossInboxOptions): { completed: number; failed: number } {
  const seconds = (ms: number | undefined, fallback: number) =>
    Math.max(1, Math.ceil(positive(ms, fallback) / 1000));
  return {
    completed: seconds(options.keepCompletedMs, INBOX_DEFAULTS.keepCompletedMs),
    failed: seconds(options.keepFailedMs, INBOX_DEFAULTS.keepFailedMs),
  };
}

/**
 * Ends the pool of an instance whose start failed (only a pool pg-boss opened itself: pg-boss 10 marks it
 * `isOurs`, pg-boss 11 and later `_pgbdb`).
 */
async function retire(boss: PgBoss): Promise<void> {
  const db = boss.getDb() as {
    isOurs?: boolean;
    _pgbdb?: boolean;
    opened?: boolean;
    close?: () => Promise<void>;
  };
  if ((db.isOurs === true || db._pgbdb === true) && db.opened === true)
    await db.close?.().catch(() => undefined);
}

/**
 * Warns once when PostgreSQL may lose what it acknowledged: `fsync = off` (a crash can corrupt or lose
 * committed data) or `synchronous_commit = off` (a crash loses the last commits, answered 200 already).
 */
async function warnIfNotDurable(sql: Engine['sql'], log: Required<Logger>): Promise<void> {
  let row: Record<string, unknown> | undefined;
  try {
    [row] = (
      await sql(
        `SELECT current_setting('fsync') AS fsync, current_setting('synchronous_commit') AS synchronous_commit`,
        [],
      )
    ).rows;
  } catch {
    return;
  }
  const off = ['fsync', 'synchronous_commit'].filter((name) => row?.[name] === 'off');
  if (off.length > 0) {
    log.warn(
      { settings: off.map((name) => `${name}=off`).join(' ') },
      'PostgreSQL may lose commits in a crash: events already answered 200 could be lost. Set fsync = on and synchronous_commit = on (at least for the inbox).',
    );
  }
}

/** The SQL on pg-boss's tables that pg-boss 10 has no call for. */
interface Statements {
  readonly failed: string;
  readonly retry: string;
  readonly retryAll: string;
  readonly complete: string;
  /** `complete` on $1 queue and $3 job id, as the lanes' `leaving()` takes it ($2 is the order key). */
  readonly completeOrdered: string;
  readonly defer: string;
  readonly stillOurs: string;
  readonly refuse: string;
}

/** `deleteCompletedAfter`: pg-boss 11 and later, the completed retention that a completion sets (seconds). */
function statements(schema: string, deleteCompletedAfter?: number): Statements {
  const state = (name: string) => `'${name}'::${schema}.job_state`;
  // pg-boss's retry() leaves completed_on set, so its archive (completed_on older than the completed
  // retention, whatever the state) could take the retried job away before it runs; and keep_until (when an
  // unstarted job is archived, 14 days after it was sent) may have passed for an old failed job.
  const retry = `UPDATE ${schema}.job SET state = ${state('retry')}, retry_limit = retry_limit + 1,
      completed_on = NULL, start_after = now(), keep_until = GREATEST(keep_until, now() + interval '14 days')
    WHERE name = $1 AND state = ${state('failed')}`;
  // The run succeeded: the job is done even if pg-boss expired it meanwhile (its complete() only takes
  // an active job), or failed it by timeout on its last attempt. `id`: the job id's parameter.
  const complete = (id: string) =>
    `UPDATE ${schema}.job SET state = ${state('completed')}, completed_on = now(), output = NULL${
      deleteCompletedAfter === undefined ? '' : `, deletion_seconds = ${Math.floor(deleteCompletedAfter)}`
    }
      WHERE name = $1 AND id = ${id} AND state IN (${['created', 'retry', 'active', 'failed'].map(state).join(', ')})`;
  // Our run is this fetch of the job: still active since the start we fetched (ms precision in JS).
  const ours = `state = ${state('active')} AND abs(extract(epoch FROM started_on)::float8 * 1000 - $3::float8) < 2`;
  return {
    failed: `SELECT id, data, retry_count, output, completed_on FROM ${schema}.job
      WHERE name = $1 AND state = ${state('failed')} ORDER BY completed_on DESC LIMIT $2`,
    retry: `${retry} AND id = $2::uuid`,
    retryAll: retry,
    complete: complete('$2'),
    completeOrdered: complete('$3::uuid'),
    // Given back without using an attempt: pg-boss's fetch adds one to retry_count only when started_on
    // is set (fetchNextJob in its plans.js), and its fail() never does.
    defer: `UPDATE ${schema}.job SET started_on = NULL, start_after = now() + $4::float8 * interval '1 millisecond',
        state = CASE WHEN retry_count = 0 THEN ${state('created')} ELSE ${state('retry')} END
      WHERE name = $1 AND id = $2 AND ${ours}`,
    stillOurs: `SELECT 1 FROM ${schema}.job WHERE name = $1 AND id = $2 AND ${ours}`,
    refuse: `UPDATE ${schema}.job SET state = ${state('failed')}, completed_on = now(), output = $4::jsonb
      WHERE name = $1 AND id = $2 AND ${ours}`,
  };
}

/** A failed job as the dead letter lists it; a job of someone else's on the queue is listed, not trusted. */
function describeFailed(row: Record<string, unknown>): FailedInboxJob {
  const { data, output, completed_on: completedOn } = row;
  const text = (value: unknown) => (typeof value === 'string' ? value : undefined);
  return {
    id: String(row.id),
    provider: isInboxJob(data) ? data.provider : '(not a hookguard job)',
    event: text(field(data, 'name')),
    key: text(field(data, 'key')),
    attempts: Number(row.retry_count) + 1,
    // fail() stores { message }; pg-boss's expiry stores { value: { message } }.
    error: text(field(output, 'message')) ?? text(field(field(output, 'value'), 'message')) ?? 'failed',
    failedAt: completedOn instanceof Date ? completedOn.toISOString() : undefined,
  };
}

// A lone surrogate: JSON.stringify escapes it (\udXXX), which PostgreSQL's jsonb refuses, as it refuses \u0000.
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/**
 * The job as pg-boss stores it (jsonb). The event goes in as JSON text: a verified body may hold "\u0000"
 * or a lone surrogate, which jsonb refuses as values but keeps as escapes inside a string. The name is a
 * label (already on one line) and loses only lone surrogates; the key is URI-encoded or hashed.
 */
function dataOf(job: InboxJob): object {
  const { event, ...rest } = job;
  return {
    ...rest,
    ...(rest.name === undefined ? {} : { name: rest.name.replace(LONE_SURROGATE, '\ufffd') }),
    eventJson: JSON.stringify(event) ?? 'null',
  };
}

/** The job back from pg-boss's data; undefined when it is not ours. Jobs of earlier versions hold the event itself. */
function jobOf(data: unknown): InboxJob | undefined {
  if (!isInboxJob(data)) return undefined;
  const eventJson = field(data, 'eventJson');
  if (typeof eventJson !== 'string') return data;
  const { eventJson: _text, ...job } = data as InboxJob & { eventJson: string };
  return { ...job, event: JSON.parse(eventJson) as unknown };
}

/**
 * Creates the queue (nothing when it exists). Inboxes of one schema starting at once can deadlock in
 * pg-boss's queue creation; PostgreSQL fails one of them (40P01), which tries again.
 */
async function createQueueOnce(boss: PgBoss, queue: string, options: object): Promise<void> {
  for (let tries = 1; ; tries++) {
    try {
      await boss.createQueue(queue, { name: queue, ...options });
      return;
    } catch (err) {
      if ((err as { code?: unknown }).code !== '40P01' || tries >= 5) throw err;
      await new Promise((resolve) => setTimeout(resolve, 20 + Math.random() * 80 * tries));
    }
  }
}

/** A job as our fetch returns it (with its metadata). */
type FetchedJob = PgBoss.JobWithMetadata<unknown>;

/**
 * The default store: PostgreSQL's, in pg-boss's own database and schema, so every worker of the inbox
 * shares it and it is exactly as durable as the jobs. Keys carry the queue name (as BullMQ's do): two
 * inboxes on one schema that receive the same event each run it.
 */
function engineStore(engine: Engine): DedupStore {
  const store = createPostgresDedupStore({
    pool: { query: (text, values) => engine.sql(text, values ?? []) },
    table: `${engine.schema}.hookguard_dedup`,
  });
  let made: Promise<void> | undefined;
  const ready = () =>
    (made ??= engine.start().then(() => store.ensureSchema())).catch((err: unknown) => {
      made = undefined;
      throw err;
    });
  const own = (key: string) => `${engine.queue}:${key}`;
  return {
    claim: async (key, leaseMs) => (await ready(), store.claim(own(key), leaseMs)),
    complete: async (key, token, ttlMs) => (await ready(), store.complete(own(key), token, ttlMs)),
    release: async (key, token) => (await ready(), store.release(own(key), token)),
  };
}

/** A worker's free slots, and a wait that ends when one frees, when woken, or after `ms`. */
function createSlots(size: number) {
  let busy = 0;
  let waiter: (() => void) | undefined;
  const wake = () => {
    const resolve = waiter;
    waiter = undefined;
    resolve?.();
  };
  return {
    get free() {
      return size - busy;
    },
    /** Takes a slot; the function it returns frees it (once). */
    take(): () => void {
      busy++;
      let held = true;
      return () => {
        if (!held) return;
        held = false;
        busy--;
        wake();
      };
    },
    wait: (ms?: number) =>
      new Promise<void>((resolve) => {
        const timer = ms === undefined ? undefined : setTimeout(wake, ms);
        waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      }),
    wake,
  };
}

/** How a worker of an ordered inbox keeps its keys' order. */
interface Ordering {
  lanes: ReturnType<typeof pgBossLanes>;
  hold: boolean;
}

function startWorker(engine: Engine, options: PgBossWorkerOptions, order: Ordering | undefined): InboxWorker {
  const runner = createJobRunner(
    options,
    () => engineStore(engine),
    postgresMarks(engine.sql, engine.schema, engine.queue, engine.start),
    order && { view: (orderKey, limit, withJobs) => order.lanes.view(orderKey, limit, withJobs, jobOf) },
    engine.messaging,
  );
  const slots = createSlots(Math.max(1, Math.floor(positive(options.concurrency, 1))));
  const idleMs = Math.max(500, positive(options.pollingIntervalSeconds, 2) * 1000);
  const deferMs = positive(options.inFlightDelayMs, INBOX_DEFAULTS.deferMs);
  const outcomes = createOutcomes(engine, runner, deferMs, order);
  const running = new Set<Promise<void>>();
  const timers = new Set<ReturnType<typeof setTimeout>>();
  let stopping = false;

  const fetchJobs = async (count: number): Promise<FetchedJob[]> => {
    try {
      const boss = await engine.start();
      return await boss.fetch<unknown>(engine.queue, { batchSize: count, includeMetadata: true });
    } catch {
      return []; // PostgreSQL is away (pg-boss's fetch itself answers [] then): look again after the idle wait
    }
  };
  // Each job holds a slot until it settles, or until it outlives its expiry: pg-boss then hands it out
  // again (the claim in the store keeps it from running twice) and a hung handler must not hold the slot.
  const launch = (job: FetchedJob) => {
    const free = slots.take();
    const expireInSeconds = Number(job.expireInSeconds) || 900; // pg-boss sends it as numeric text
    const timer = setTimeout(() => {
      runner.log.error(
        { job: job.id, expireInSeconds },
        'a handler outlived its job’s expiry: its slot takes other jobs now; pg-boss hands the job out again (the claim keeps it from running twice while the lease lasts)',
      );
      free();
    }, expireInSeconds * 1000);
    timer.unref();
    timers.add(timer);
    const run = outcomes
      .settle(job)
      .catch(() => undefined)
      .finally(() => {
        clearTimeout(timer);
        timers.delete(timer);
        free();
        running.delete(run);
      });
    running.add(run);
  };
  const loop = (async () => {
    while (!stopping && !engine.closed) {
      if (slots.free === 0) {
        await slots.wait();
        continue;
      }
      const jobs = await fetchJobs(slots.free);
      if (stopping) return outcomes.giveBack(jobs);
      for (const job of jobs) launch(job);
      if (jobs.length === 0) await slots.wait(idleMs);
    }
  })();
  return {
    stats: () => ({ ...runner.counts }),
    async close(timeoutMs = INBOX_DEFAULTS.closeTimeoutMs) {
      stopping = true;
      slots.wake();
      if ((await settleWithin(Promise.all([loop, ...running]), timeoutMs)) === 'late') {
        runner.log.warn(
          { timeoutMs, running: running.size },
          'close(): handlers still running at the deadline are abandoned; pg-boss hands their jobs out again after they expire',
        );
        runner.abandon();
        outcomes.abandon();
      }
      for (const timer of timers) clearTimeout(timer);
    },
  };
}

/** Leaves the lane; a failure is logged (the next check finds the finished job and drops it). */
async function leaveLaneOf(order: Ordering, orderKey: string, job: FetchedJob, runner: JobRunner) {
  try {
    await order.lanes.leave(orderKey, job.id);
  } catch (err) {
    runner.log.warn(
      { job: job.id, err: describeError(err) },
      'could not take a finished job out of its ordering lane: the next event of its key starts on its next look',
    );
  }
}

/** An ordered job's completion, its leaving and the next's promotion in one statement (see `left`). */
async function completeInLane(
  order: Ordering,
  record: (write: () => Promise<unknown>) => Promise<void>,
  write: () => Promise<{ rowCount: number }>,
  orderKey: string,
): Promise<void> {
  let promoted = 1;
  await record(async () => {
    promoted = (await write()).rowCount;
  });
  await order.lanes.left(orderKey, promoted);
}

/** After an ordered deferral: the earlier event may have left its lane in between, promoting no one. */
async function recheckTurn(order: Ordering, orderKey: string, jobId: string): Promise<void> {
  const now = await order.lanes.check(orderKey, jobId, order.hold).catch(() => 'wait' as const);
  if (now === 'run') await order.lanes.promote(jobId).catch(() => undefined);
}

/** When a fetched job started (its run's identity in pg-boss's rows). */
const started = (job: FetchedJob) => new Date(job.startedOn).getTime();
const createdOn = (job: FetchedJob) => new Date(job.createdOn).getTime();

/** How a worker records each job's outcome in pg-boss: completed, given back, failed, or refused. */
function createOutcomes(engine: Engine, runner: JobRunner, deferMs: number, order: Ordering | undefined) {
  const { queue, statements: sql } = engine;
  const persistence = createPersistence();
  const record = async (what: string, job: FetchedJob, write: () => Promise<unknown>) => {
    // Each try bounded to 10 s: a frozen server must not hold a try for good.
    const result = await persistence.untilItSticks(() => withTimeout('pg-boss', 10_000, write));
    if (result.stuck && result.tries === 1) return;
    if (result.stuck)
      runner.log.warn({ job: job.id, tries: result.tries }, `${what} recorded in pg-boss after it came back`);
    else
      runner.log.error(
        { job: job.id, err: describeError(result.err) },
        `the worker stopped before pg-boss took this ${what}`,
      );
  };
  // An ordered job's completion also leaves its lane and promotes the next, in one statement.
  const completeAndLeave = order?.lanes.leaving(sql.completeOrdered);

  async function settle(job: FetchedJob): Promise<void> {
    let data: InboxJob | undefined;
    try {
      data = jobOf(job.data);
    } catch {
      data = undefined; // its event is not JSON: no run can succeed
    }
    if (!isRunnableJob(data)) return refuse(job);
    const final = job.retryCount >= job.retryLimit;
    const orderKey = order === undefined || typeof data.orderKey !== 'string' ? undefined : data.orderKey;
    try {
      if (orderKey !== undefined && (await order!.lanes.check(orderKey, job.id, order!.hold)) === 'wait') {
        throw new JobDeferred('ordered');
      }
      await runner.run(data, job.retryCount + 1, final);
    } catch (err) {
      if (err instanceof JobDeferred) return defer(job, data, err.reason, orderKey);
      await fail(job, err);
      // Its last attempt failed: the job is dead-lettered, and its key moves on (unless held).
      if (orderKey !== undefined && final && !order!.hold) await leaveLane(orderKey, job);
      return;
    }
    // The work is done: the completion must stick, or pg-boss would hand the job out again. An ordered job
    // leaves its lane in the same statement.
    if (orderKey === undefined) {
      await record('completion', job, () => engine.sql(sql.complete, [queue, job.id]));
    } else {
      const write = () => engine.sql(completeAndLeave!, [queue, orderKey, job.id]);
      await completeInLane(order!, (w) => record('completion', job, w), write, orderKey);
    }
  }
  const leaveLane = (orderKey: string, job: FetchedJob) => leaveLaneOf(order!, orderKey, job, runner);
  async function defer(job: FetchedJob, data: InboxJob, reason: DeferReason, orderKey?: string) {
    const waitMs = reason === 'ordered' ? turnRecheckMs(deferMs, Date.now() - createdOn(job)) : deferMs;
    await record('deferral', job, () => engine.sql(sql.defer, [queue, job.id, started(job), waitMs]));
    runner.deferred(data, reason);
    if (reason === 'ordered' && orderKey !== undefined) await recheckTurn(order!, orderKey, job.id);
  }
  // pg-boss's fail() retries the job with backoff (or keeps it as failed); only while this run still
  // holds it, not after it expired and another worker took it.
  async function fail(job: FetchedJob, err: unknown) {
    const message = err instanceof Error ? err.message : String(err);
    await record('failure', job, async () => {
      if ((await engine.sql(sql.stillOurs, [queue, job.id, started(job)])).rows.length === 0) return;
      await engine.boss.fail(queue, job.id, { message });
    });
  }
  async function refuse(job: FetchedJob) {
    runner.log.error({ job: job.id }, 'a job that hookguard did not write is on the queue: failed at once');
    const output = JSON.stringify({ message: 'not a hookguard job' });
    await record('failure', job, () => engine.sql(sql.refuse, [queue, job.id, started(job), output]));
  }
  return {
    settle,
    /** Jobs fetched as the worker stopped: back to the queue at once, no attempt used. */
    giveBack: async (jobs: FetchedJob[]) => {
      const back = (job: FetchedJob) => engine.sql(sql.defer, [queue, job.id, started(job), 0]);
      await Promise.allSettled(jobs.map(back));
    },
    abandon: persistence.abandon,
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
  InboxWorkerCounts,
  InboxWorkerOptions,
} from './inbox.js';
export type { InboxStats } from './inbox-stats.js';
export { coalesce } from './bursts.js';
export type { BurstContext, BurstHandler, CoalesceOptions } from './bursts.js';
