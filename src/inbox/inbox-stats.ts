// What an operator asks of a durable inbox first: is anything stuck, and is anything taking jobs? Both
// engines answer with the same shape (`inbox.stats()`, and `hookguard inbox stats`).

/**
 * How many jobs a queue holds in each state, and how long the job that has waited longest has waited.
 *
 * @example
 * ```ts
 * import { createBullMQInbox, type InboxStats } from 'hookguard/bullmq';
 * const inbox = createBullMQInbox({ connection: { host: '127.0.0.1', port: 6379 } });
 * const stats: InboxStats = await inbox.stats();
 * if ((stats.oldestWaitingMs ?? 0) > 60_000) console.warn('nothing is taking jobs: is a worker running?');
 * ```
 */
export interface InboxStats {
  /** The queue these counts are of. */
  queueName: string;
  /** Ready to run now, waiting for a worker to take them. */
  waiting: number;
  /** Taken by a worker, running now (or held by a worker that died, until its lock or expiry runs out). */
  active: number;
  /** Due later: waiting out a retry's backoff, or given back to run again after another worker's claim. */
  delayed: number;
  /** Failed their last attempt: the dead letter (`failed()`, `retry()`). */
  failed: number;
  /** Completed and still kept (`keepCompletedMs`, the window in which a copy answers `duplicate`). */
  completed: number;
  /**
   * How long the waiting job that has waited longest has been ready to run, in ms; undefined when none
   * waits. pg-boss records when a job became ready (its `start_after`). BullMQ records when a job was added
   * and when it last started, not when it became ready: a job retried after a failure counts from its last
   * start plus the shortest backoff its strategy gives (`fixed` or `exponential`; from the start itself
   * under a custom strategy), and one retried from the dead letter from when it was first added. So on
   * BullMQ the figure can be longer than the wait, never shorter than the time since it could have run.
   */
  oldestWaitingMs: number | undefined;
  /** BullMQ's `queue.pause()`: waiting jobs run only once it is resumed. Always false on pg-boss. */
  paused: boolean;
}

/** Another queue of the same server, as `hookguard inbox` names it when the asked-for one is empty. */
export interface OtherQueue {
  name: string;
  /** Jobs it holds, in any state. */
  jobs: number;
  failed: number;
}

/** The other queues with jobs, at most `limit`; `more` when there are (or may be) others beyond them. */
export interface OtherQueues {
  queues: OtherQueue[];
  more: boolean;
}

/** Every job of the queue, whatever its state. */
export const totalJobs = (stats: InboxStats): number =>
  stats.waiting + stats.active + stats.delayed + stats.failed + stats.completed;
