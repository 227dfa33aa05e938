// What both inbox engines start with, in one place (README, "Slow handlers: the durable inbox").
export const INBOX_DEFAULTS = {
  queueName: 'hookguard',
  /**
   * Runs per event before it is dead-lettered. With exponential backoff from 1 s, 15 runs span about 4.6 h
   * (1 + 2 + … + 8192 s; pg-boss's jitter stretches it to at most 9.1 h): an outage of a dependency (an LLM API, a database) that lasts hours is retried
   * through, not dead-lettered in two minutes as 8 runs were.
   */
  attempts: 15,
  backoffMs: 1000,
  /** Longest a request waits for the engine to confirm a write. */
  enqueueTimeoutMs: 2000,
  /** Writes the engine has not confirmed (timed-out ones included), and their bytes, before refusing. */
  maxPendingWrites: 1000,
  maxPendingBytes: 16 * 1024 * 1024,
  /** Completed jobs are kept as long as keys are remembered: a copy meanwhile answers `duplicate`. */
  keepCompletedMs: 3 * 24 * 60 * 60 * 1000,
  /** Failed jobs (the dead letter) are kept until an operator acts, or this long. */
  keepFailedMs: 30 * 24 * 60 * 60 * 1000,
  /** A job whose key another worker holds, or that reached a worker without its handlers, comes back after this. */
  deferMs: 5000,
  closeTimeoutMs: 30_000,
  /** The web side warns when the oldest waiting event has waited longer: no worker takes them. */
  backlogWarnMs: 60_000,
} as const;
