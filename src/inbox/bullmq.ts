import { createHash } from 'node:crypto';
import { DelayedError, Queue, UnrecoverableError, Worker, type ConnectionOptions, type Job } from 'bullmq';
import type { DedupStore } from '../dedup/dedup-store.js';
import { safeLogger } from '../pipeline/safe-logger.js';
import type { InboxMessaging } from '../pipeline/telemetry.js';
import type { Logger } from '../pipeline/types.js';
import { createRedisDedupStore, type IoRedisLike } from '../stores/redis.js';
import { describeError, field, positive, settleWithin } from '../util/values.js';
import { INBOX_DEFAULTS } from './defaults.js';
import {
  createJobRunner,
  isInboxJob,
  isRunnableJob,
  JobDeferred,
  type DeadLetter,
  type FailedInboxJob,
  type Inbox,
  type InboxJob,
  type InboxWorker,
  type InboxWorkerOptions,
  type JobRunner,
} from './inbox.js';
import { connectionsOf, redisOf } from './bullmq-connections.js';
import { redisMarks } from './freshness.js';
import { turnRecheckMs } from './lane-rules.js';
import { bullMQStats } from './bullmq-stats.js';
import type { InboxStats } from './inbox-stats.js';
import { createBacklogWatch } from './backlog-watch.js';
import { lanesOf, promote } from './bullmq-lanes.js';
import { orderKeyOf } from './order-keys.js';
import { createWriteGate } from './write-gate.js';

/** Options for {@link createBullMQInbox}. */
export interface BullMQInboxOptions {
  /**
   * BullMQ's own connection option: ioredis options (`{ host, port, password, db, tls }`) or an ioredis
   * instance. From options, the web side's connection gets `enableOfflineQueue: false` unless you set it:
   * while Redis is away a write is refused at once instead of waiting in the client.
   */
  connection: ConnectionOptions;
  /** The queue's name; default `'hookguard'`. */
  queueName?: string;
  /** Runs per event before it is kept as failed (dead letter); default 15 (waits of 1 + 2 + … + 8192 s between them: about 4.6 h). */
  attempts?: number;
  /** Wait before the first retry, doubled for each next one; default 1000 ms. */
  backoffMs?: number;
  /**
   * Longest the web side waits for Redis to confirm a write; default 2000 ms, then INBOX_UNAVAILABLE. A
   * write that timed out may still land: the provider's retry is then answered `duplicate`.
   */
  enqueueTimeoutMs?: number;
  /**
   * The web side warns when the oldest waiting event has waited longer than this: nothing takes jobs (no
   * worker runs, or the queue is paused). It looks after an enqueue, at most once per period; default
   * 60,000 ms, 0 turns it off.
   */
  backlogWarnMs?: number;
  /** Writes Redis has not confirmed yet (timed-out ones included) before the next is refused at once; default 1000. */
  maxPendingWrites?: number;
  /** Their bodies' bytes; default 16 MiB. Bounds the web process's memory while Redis stalls. */
  maxPendingBytes?: number;
  /** How long completed jobs stay (a redelivery meanwhile answers `duplicate` at once); default 3 days. */
  keepCompletedMs?: number;
  /** How long failed jobs (the dead letter) stay unless retried; default 30 days. */
  keepFailedMs?: number;
  /** Warnings (Redis not durable) and errors; default the console, `false` silences. */
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

/** Options for {@link BullMQInbox.worker}. */
export interface BullMQWorkerOptions extends InboxWorkerOptions {
  /** Jobs run at once in this worker; default 1. */
  concurrency?: number;
  /** BullMQ's lock on a running job; a worker that dies releases it after this. Default 30 000 ms. */
  lockDurationMs?: number;
  /** A job whose key another worker holds (or without handlers here) is looked at again after this (no attempt is used); default 5000 ms. */
  inFlightDelayMs?: number;
}

/** The durable inbox on BullMQ, for the web side (`inbox` option) and for workers. */
export interface BullMQInbox extends Inbox, DeadLetter {
  /** The BullMQ queue itself (for bull-board, Taskforce.sh or your own tooling). */
  readonly queue: Queue;
  /** The queue's jobs by state, and how long the longest-waiting one has waited (`hookguard inbox stats`). */
  stats(): Promise<InboxStats>;
  /** Starts a worker that runs the handlers of `options.chatwoot` / `options.stripe` for every job. */
  worker(options: BullMQWorkerOptions): InboxWorker;
}

/** The job id for a key: BullMQ refuses ":" and integer-like ids, and keys can be long. */
const jobIdOf = (key: string) => `hg-${createHash('sha256').update(key).digest('base64url')}`;

const isClient = (connection: ConnectionOptions) => typeof field(connection, 'options') === 'object';

/**
 * A durable inbox on BullMQ (Redis). The web side writes each verified event as a job whose id is derived
 * from the dedup key, and answers only once Redis acknowledged it; workers run your handlers with retries
 * and exponential backoff, and keep a job that failed its last attempt as failed (dead letter). Redis must
 * keep what it acknowledged: `appendonly yes` and `maxmemory-policy noeviction` (warned about at start).
 *
 * @example
 * ```ts
 * import { createBullMQInbox } from 'hookguard/bullmq';
 * import { chatwootWebhook } from 'hookguard/express';
 * const inbox = createBullMQInbox({ connection: { host: '127.0.0.1', port: 6379 } });
 * const cw = { secret: process.env.CW_HMAC_SECRET, inbox, on: { message_created: reply } };
 * app.post('/cw', chatwootWebhook(cw)); // web process: answers 200 once queued
 * inbox.worker({ chatwoot: cw, concurrency: 4 }); // worker process: runs reply, with retries
 * ```
 */
export function createBullMQInbox(options: BullMQInboxOptions): BullMQInbox {
  const queueName = options.queueName ?? INBOX_DEFAULTS.queueName;
  const attempts = Math.max(1, Math.floor(positive(options.attempts, INBOX_DEFAULTS.attempts)));
  const backoffMs = positive(options.backoffMs, INBOX_DEFAULTS.backoffMs);
  const keepCompletedMs = positive(options.keepCompletedMs, INBOX_DEFAULTS.keepCompletedMs);
  const keepFailedMs = positive(options.keepFailedMs, INBOX_DEFAULTS.keepFailedMs);
  const log = safeLogger(options.logger, { queue: queueName });
  const connection = isClient(options.connection)
    ? options.connection
    : { enableOfflineQueue: false, ...options.connection };
  const queue = new Queue(queueName, { connection });
  // A Redis outage is reported per request (INBOX_UNAVAILABLE); the queue must not crash the process.
  queue.on('error', () => undefined);
  void redisOf(queue).then(
    (client) => warnIfNotDurable(client, log),
    () => undefined,
  );
  const gate = createWriteGate('BullMQ enqueue', options);
  const backlog = createBacklogWatch(() => bullMQStats(queue), options.backlogWarnMs, log);
  const workers = new Set<InboxWorker>();

  const lanes = options.ordered === true ? lanesOf(queueName) : undefined;
  const add = async (job: InboxJob): Promise<'queued' | 'duplicate'> => {
    const jobId = job.key === undefined ? undefined : jobIdOf(job.key);
    // Its place in its key's lane first: a job never runs before the ones accepted ahead of it.
    const lane =
      lanes === undefined || jobId === undefined ? undefined : await joinLane(lanes, queue, job, jobId);
    // Both go out at once on the queue's one connection (one round trip), the state read first: it sees
    // the job only if it existed before this add, which is then a no-op. Were the read ever to run
    // second, a new event would be reported as a duplicate: still a 2xx sent after the job exists.
    const [before] = await Promise.all([
      jobId === undefined ? 'unknown' : queue.getJobState(jobId),
      queue.add(`${job.provider} ${job.name ?? '(unnamed)'}`, job, {
        ...(jobId === undefined ? {} : { jobId }),
        attempts,
        backoff: { type: 'exponential', delay: backoffMs },
        removeOnComplete: { age: Math.ceil(keepCompletedMs / 1000) },
        removeOnFail: { age: Math.ceil(keepFailedMs / 1000) },
        ...(lane?.parked === true ? { delay: INBOX_DEFAULTS.deferMs } : {}),
      }),
    ]);
    await lane?.settle(before);
    backlog.enqueued();
    return before === 'unknown' ? 'queued' : 'duplicate';
  };

  const messaging: InboxMessaging = { system: 'bullmq', destination: queueName, messageId: jobIdOf };
  return {
    queue,
    enqueue: (job, size = 0) => gate.write(size, () => add(job)),
    messaging,
    worker(workerOptions) {
      const order = lanes === undefined ? undefined : { lanes, hold: options.holdOrderOnFailure === true };
      const worker = startWorker(messaging, options.connection, workerOptions, order);
      workers.add(worker);
      return worker;
    },
    async failed(limit = 100) {
      const jobs = (await queue.getFailed(0, Math.max(0, limit - 1))) as Job<unknown>[];
      return jobs.map(describeFailed);
    },
    async retry(id) {
      const job = (await queue.getJob(id)) as Job<InboxJob> | undefined;
      if (job === undefined || (await job.getState()) !== 'failed') return false;
      await job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
      return true;
    },
    retryAll: () => retryAllFailed(queue),
    stats: () => bullMQStats(queue),
    async close(timeoutMs) {
      await Promise.all([
        ...[...workers].map((worker) => worker.close(timeoutMs)),
        closeQueue(queue, !isClient(options.connection)),
      ]);
    },
  };
}

/**
 * Ordered inbox, web side: the job takes its place in its key's lane before it is added. A job behind
 * others is added parked (delayed), to be promoted by the one ahead as it leaves. Undefined: no key.
 */
async function joinLane(lanes: ReturnType<typeof lanesOf>, queue: Queue, job: InboxJob, jobId: string) {
  const orderKey = orderKeyOf(job);
  if (orderKey === undefined) return undefined;
  job.orderKey = orderKey; // what the worker orders it by
  const client = await redisOf(queue);
  const joined = await lanes.join(client, orderKey, jobId);
  return {
    parked: !joined.heads,
    /** After the add, given the job's state before it. */
    async settle(before: string): Promise<void> {
      // A copy of a job that had left its lane (it finished): the add was a no-op, and the lane must not
      // wait for it.
      if (joined.added && before !== 'unknown') await lanes.leave(queue, client, orderKey, jobId);
      // The one ahead left before this job existed: nobody promoted it.
      else if (!joined.heads && (await lanes.heads(client, orderKey, jobId))) await promote(queue, jobId);
    },
  };
}

/**
 * Retries the failed jobs as they are now, job by job (each gets its attempts back, as retry(id) gives
 * them): a retried job that fails again while this runs is not picked up a second time.
 */
async function retryAllFailed(queue: Queue): Promise<number> {
  const ids: string[] = [];
  for (let start = 0; ; start += 500) {
    const page = await queue.getJobs(['failed'], start, start + 499, true);
    ids.push(...page.map((job) => String(job.id)));
    if (page.length < 500) break;
  }
  let count = 0;
  for (const id of new Set(ids)) {
    const job = await queue.getJob(id);
    if (job === undefined || (await job.getState()) !== 'failed') continue;
    await job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
    count++;
  }
  return count;
}

/** A failed job as the dead letter lists it; a job of someone else's on the queue is listed, not trusted. */
function describeFailed(job: Job<unknown>): FailedInboxJob {
  const data = job.data;
  const text = (value: unknown) => (typeof value === 'string' ? value : undefined);
  return {
    id: String(job.id),
    provider: isInboxJob(data) ? data.provider : `(not a hookguard job: ${String(job.name)})`,
    event: text(field(data, 'name')),
    key: text(field(data, 'key')),
    attempts: job.attemptsMade,
    error: String(job.failedReason ?? ''),
    failedAt: job.finishedOn === undefined ? undefined : new Date(job.finishedOn).toISOString(),
  };
}

/**
 * Warns once when Redis would lose what it acknowledged: no AOF (a restart loses every queued event since
 * the last snapshot), or an eviction policy that may drop jobs under memory pressure. Servers that refuse
 * CONFIG (managed Redis) are not second-guessed.
 */
async function warnIfNotDurable(client: IoRedisLike, log: Required<Logger>): Promise<void> {
  let config: unknown;
  try {
    config = await client.call('CONFIG', 'GET', 'appendonly');
  } catch {
    return;
  }
  if (Array.isArray(config) && config[1] === 'no') {
    log.warn(
      {},
      'Redis has appendonly no: a Redis restart loses queued events that were already answered 200. Set appendonly yes (appendfsync everysec or always) for the inbox.',
    );
  }
}

/** How a worker of an ordered inbox keeps its keys' order. */
interface Ordering {
  lanes: ReturnType<typeof lanesOf>;
  hold: boolean;
}

function startWorker(
  messaging: InboxMessaging,
  connection: ConnectionOptions,
  options: BullMQWorkerOptions,
  order: Ordering | undefined,
): InboxWorker {
  const queueName = messaging.destination;
  const started: { worker?: Worker<unknown> } = {};
  const runner = createJobRunner(
    options,
    () =>
      // The default store lives on the queue's own Redis, through the worker's connection: every worker
      // of the inbox shares it, and it is exactly as durable as the jobs.
      lazyStore(async () =>
        createRedisDedupStore({
          client: await redisOf(started.worker!),
          prefix: `hookguard:inbox:${queueName}:`,
        }),
      ),
    redisMarks(() => redisOf(started.worker!), `hookguard:inbox:${queueName}:newest:`),
    order && {
      view: async (orderKey, limit, withJobs) =>
        order.lanes.view(started.worker!, await redisOf(started.worker!), orderKey, limit, withJobs),
    },
    messaging,
  );
  const abandoned = abandonment();
  let closing: Promise<void> | undefined;
  const worker = new Worker<unknown>(
    queueName,
    processor(
      runner,
      positive(options.inFlightDelayMs, INBOX_DEFAULTS.deferMs),
      abandoned.signal,
      order === undefined ? undefined : { ...order, worker: () => started.worker! },
    ),
    {
      connection,
      concurrency: Math.max(1, Math.floor(positive(options.concurrency, 1))),
      lockDuration: positive(options.lockDurationMs, 30_000),
      // How often stalled jobs (their worker died) are looked for: as often as a lock lasts.
      stalledInterval: positive(options.lockDurationMs, 30_000),
    },
  );
  started.worker = worker;
  worker.on('error', () => undefined); // connection errors: BullMQ reconnects by itself
  return {
    stats: () => ({ ...runner.counts }),
    // Once: a second call (inbox.close() after worker.close()) waits for the same shutdown.
    close: (timeoutMs) =>
      (closing ??= closeWorker(worker, runner, abandoned.abandon, timeoutMs, !isClient(connection))),
  };
}

/** What the worker does with each job: run it, or give it back without spending an attempt. */
function processor(
  runner: JobRunner,
  deferMs: number,
  abandoned: Promise<never>,
  order: (Ordering & { worker: () => Worker<unknown> }) | undefined,
) {
  return async (job: Job<unknown>, token?: string) => {
    if (!isRunnableJob(job.data)) {
      runner.log.error({ job: job.id }, 'a job that hookguard did not write is on the queue: failed at once');
      throw new UnrecoverableError('not a hookguard job');
    }
    const data = job.data;
    const final = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
    // attemptsMade counts failures only; a run cut off by a dead worker comes back as a stalled job.
    const attempt = job.attemptsMade + (job.stalledCounter ?? 0) + 1;
    const lane =
      order !== undefined && typeof data.orderKey === 'string' && job.id !== undefined
        ? { ...order, worker: order.worker(), orderKey: data.orderKey, jobId: job.id }
        : undefined;
    try {
      // attemptsStarted counts this start too: above 1, the job was looked at before (deferred or run).
      const inspect = (job.attemptsStarted ?? 2) > 1;
      // A job written without a delay headed its lane when it joined, and a lane's head stays its head
      // until it leaves: its first look needs no check.
      const headed = !inspect && !(Number(job.opts.delay) > 0);
      if (lane !== undefined && !headed && (await laneCheck(lane, inspect)) === 'wait') {
        throw new JobDeferred('ordered');
      }
      const result = await Promise.race([runner.run(data, attempt, final), abandoned]);
      if (lane !== undefined) await leaveLane(lane, runner);
      return result;
    } catch (err) {
      if (!(err instanceof JobDeferred) || token === undefined) {
        // Its last attempt failed: the job is dead-lettered, and its key moves on (unless held).
        const dead = final && !(err instanceof DelayedError) && !(err instanceof JobDeferred);
        if (lane !== undefined && dead && !lane.hold) await leaveLane(lane, runner);
        throw err;
      }
      // Another worker holds the key, an earlier event of its ordering key has not finished, or this
      // worker has no handlers for it: look again later, without spending one of the job's attempts.
      const now = Date.now();
      const waitMs = err.reason === 'ordered' ? turnRecheckMs(deferMs, now - job.timestamp) : deferMs;
      await job.moveToDelayed(now + waitMs, token);
      // The earlier event may have left its lane between the check and the move, promoting no one.
      if (lane !== undefined && err.reason === 'ordered' && (await laneCheck(lane, false)) === 'run') {
        await promote(lane.worker, lane.jobId);
      }
      runner.deferred(data, err.reason);
      throw new DelayedError();
    }
  };
}

interface Lane extends Ordering {
  worker: Worker<unknown>;
  orderKey: string;
  jobId: string;
}

async function laneCheck(lane: Lane, inspect: boolean) {
  const client = await redisOf(lane.worker);
  return lane.lanes.check(lane.worker, client, lane.orderKey, lane.jobId, lane.hold, inspect);
}

/** Leaves the lane; a failure is logged (the next check finds the finished job and drops it). */
async function leaveLane(lane: Lane, runner: JobRunner): Promise<void> {
  try {
    await lane.lanes.leave(lane.worker, await redisOf(lane.worker), lane.orderKey, lane.jobId);
  } catch (err) {
    runner.log.warn(
      { err: describeError(err) },
      'could not take a finished job out of its ordering lane: the next event of its key starts on its next look',
    );
  }
}

/**
 * Waits for running handlers at most `timeoutMs`; then gives up on them (their jobs stay active until the
 * lock runs out and another worker takes them) and disconnects: at most one second more in all.
 */
async function closeWorker(
  worker: Worker<unknown>,
  runner: JobRunner,
  abandon: () => void,
  timeoutMs: number | undefined,
  ownConnections: boolean,
): Promise<void> {
  const closing = worker.close();
  if ((await settleWithin(closing, timeoutMs ?? INBOX_DEFAULTS.closeTimeoutMs)) === 'late') {
    runner.log.warn(
      { timeoutMs },
      'close(): handlers still running at the deadline are abandoned; their jobs run again after the lock',
    );
    runner.abandon();
    abandon();
    await settleWithin(closing, 500);
  }
  // Connections BullMQ made from options: when Redis is frozen or gone its own close neither quits them
  // nor stops their reconnecting (and it removes its error listener), so cut both; a no-op once ended.
  if (!ownConnections) return;
  const blocking = connectionsOf(worker).blockingConnection;
  await settleWithin(Promise.allSettled([worker.disconnect(), blocking?.disconnect(false)]), 500);
}

/** Quits the queue's connection, or cuts it when Redis does not answer within a second. */
async function closeQueue(queue: Queue, ownConnection: boolean): Promise<void> {
  let quit = false;
  await settleWithin(
    queue.close().then(
      () => void (quit = true),
      () => undefined,
    ),
    1000,
  );
  if (!quit && ownConnection) await settleWithin(Promise.allSettled([queue.disconnect()]), 500);
}

/** A promise that rejects (with BullMQ's "leave the job as it is") once `abandon()` is called. */
function abandonment() {
  let abandon = () => {};
  const signal = new Promise<never>((_resolve, reject) => {
    abandon = () => reject(new DelayedError('abandoned at close'));
  });
  signal.catch(() => undefined);
  return { signal, abandon: () => abandon() };
}

/** A store made on first use (the worker's connection exists only once the worker does). */
function lazyStore(make: () => Promise<DedupStore>): DedupStore {
  let store: Promise<DedupStore> | undefined;
  const get = () =>
    (store ??= make().catch((err: unknown) => {
      store = undefined;
      throw err;
    }));
  return {
    claim: async (key, leaseMs) => (await get()).claim(key, leaseMs),
    complete: async (key, token, ttlMs) => (await get()).complete(key, token, ttlMs),
    release: async (key, token) => (await get()).release(key, token),
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
