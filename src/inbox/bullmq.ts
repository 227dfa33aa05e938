import { createHash } from 'node:crypto';
import { DelayedError, Queue, Worker, type ConnectionOptions, type Job } from 'bullmq';
import { withTimeout } from '../stores/with-timeout.js';
import { positive, settleWithin } from '../util/values.js';
import {
  createJobRunner,
  InFlightElsewhere,
  type Inbox,
  type DeadLetter,
  type FailedInboxJob,
  type InboxJob,
  type InboxWorker,
  type InboxWorkerOptions,
} from './inbox.js';

/** Options for {@link createBullMQInbox}. */
export interface BullMQInboxOptions {
  /** BullMQ's own connection option: ioredis options (`{ host, port }`) or an ioredis instance. */
  connection: ConnectionOptions;
  /** The queue's name; default `'hookguard'`. */
  queueName?: string;
  /** Runs per event before it is kept as failed (dead letter); default 8. */
  attempts?: number;
  /** Wait before the first retry, doubled for each next one; default 1000 ms. */
  backoffMs?: number;
  /** Longest the web side waits for Redis to take an event; default 2000 ms, then INBOX_UNAVAILABLE. */
  enqueueTimeoutMs?: number;
  /** How long completed jobs stay (a redelivery meanwhile answers `duplicate` at once); default 3 days. */
  keepCompletedMs?: number;
}

/** Options for {@link BullMQInbox.worker}. */
export interface BullMQWorkerOptions extends InboxWorkerOptions {
  /** Jobs run at once in this worker; default 1. */
  concurrency?: number;
  /** BullMQ's lock on a running job; a worker that dies releases it after this. Default 30 000 ms. */
  lockDurationMs?: number;
  /** When a key is held by another worker, retry the job after this long (no attempt is used); default 5000 ms. */
  inFlightDelayMs?: number;
}

/** The durable inbox on BullMQ, for the web side (`inbox` option) and for workers. */
export interface BullMQInbox extends Inbox, DeadLetter {
  /** The BullMQ queue itself (for bull-board, Taskforce.sh or your own tooling). */
  readonly queue: Queue;
  /** Starts a worker that runs the handlers of `options.chatwoot` / `options.stripe` for every job. */
  worker(options: BullMQWorkerOptions): InboxWorker;
}

/** The job id for a key: BullMQ refuses ":" and integer-like ids, and keys can be long. */
const jobIdOf = (key: string) => `hg-${createHash('sha256').update(key).digest('base64url')}`;

/**
 * A durable inbox on BullMQ (Redis). The web side writes each verified event as a job whose id is derived
 * from the dedup key, and answers only once Redis acknowledged it; workers run your handlers with retries
 * and exponential backoff, and keep a job that failed its last attempt as failed (dead letter).
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
  const queueName = options.queueName ?? 'hookguard';
  const attempts = Math.max(1, Math.floor(positive(options.attempts, 8)));
  const backoffMs = positive(options.backoffMs, 1000);
  const enqueueTimeoutMs = positive(options.enqueueTimeoutMs, 2000);
  const keepCompletedMs = positive(options.keepCompletedMs, 3 * 24 * 60 * 60 * 1000);
  const queue = new Queue(queueName, { connection: options.connection });
  // A Redis outage is reported per request (INBOX_UNAVAILABLE); the queue must not crash the process.
  queue.on('error', () => undefined);

  const add = async (job: InboxJob): Promise<'queued' | 'duplicate'> => {
    const jobId = job.key === undefined ? undefined : jobIdOf(job.key);
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
        removeOnFail: false,
      }),
    ]);
    return before === 'unknown' ? 'queued' : 'duplicate';
  };

  return {
    queue,
    enqueue: (job) => withTimeout('BullMQ enqueue', enqueueTimeoutMs, () => add(job)),
    worker: (workerOptions) => startWorker(queueName, options.connection, workerOptions),
    async failed(limit = 100) {
      const jobs = (await queue.getFailed(0, Math.max(0, limit - 1))) as Job<InboxJob>[];
      return jobs.map(describeFailed);
    },
    async retry(id) {
      const job = (await queue.getJob(id)) as Job<InboxJob> | undefined;
      if (job === undefined || (await job.getState()) !== 'failed') return false;
      await job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
      return true;
    },
    async retryAll() {
      // Job by job rather than queue.retryJobs(): each gets its attempts back, as retry(id) gives them.
      let count = 0;
      for (;;) {
        const jobs = (await queue.getFailed(0, 99)) as Job<InboxJob>[];
        if (jobs.length === 0) return count;
        for (const job of jobs) {
          await job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
          count++;
        }
      }
    },
    close: () => queue.close(),
  };
}

function describeFailed(job: Job<InboxJob>): FailedInboxJob {
  return {
    id: String(job.id),
    provider: String(job.data.provider),
    event: job.data.name,
    key: job.data.key,
    attempts: job.attemptsMade,
    error: job.failedReason,
    failedAt: job.finishedOn === undefined ? undefined : new Date(job.finishedOn).toISOString(),
  };
}

function startWorker(
  queueName: string,
  connection: ConnectionOptions,
  options: BullMQWorkerOptions,
): InboxWorker {
  const runner = createJobRunner(options);
  const inFlightDelayMs = positive(options.inFlightDelayMs, 5000);
  const worker = new Worker<InboxJob>(
    queueName,
    async (job, token) => {
      try {
        return await runner.run(job.data, job.attemptsMade + 1);
      } catch (err) {
        if (!(err instanceof InFlightElsewhere) || token === undefined) throw err;
        // Another worker holds the key (the engine handed the job out twice): look again later, without
        // spending one of the job's attempts.
        await job.moveToDelayed(Date.now() + inFlightDelayMs, token);
        throw new DelayedError();
      }
    },
    {
      connection,
      concurrency: Math.max(1, Math.floor(positive(options.concurrency, 1))),
      lockDuration: positive(options.lockDurationMs, 30_000),
      // How often stalled jobs (their worker died) are looked for: as often as a lock lasts.
      stalledInterval: positive(options.lockDurationMs, 30_000),
    },
  );
  worker.on('error', () => undefined); // connection errors: BullMQ reconnects by itself
  return {
    stats: () => ({ ...runner.counts }),
    async close(timeoutMs = 30_000) {
      if ((await settleWithin(worker.close(), timeoutMs)) === 'late') await worker.close(true);
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
