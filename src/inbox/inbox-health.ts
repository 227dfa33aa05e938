// Queue health: one answer for whoever watches an inbox (a cron job, a dashboard, `hookguard inbox stats`):
// does the engine answer, how deep is the queue, how old is its oldest job, how many are dead. It is not
// a readiness check on purpose: when workers lag, taking web instances out of rotation refuses deliveries
// the inbox could still take, so createHealthCheck stays about the engine answering.
import { errorCode } from '../shutdown/health-check.js';
import { within } from '../shutdown/within.js';
import type { InboxStats } from './inbox-stats.js';

/**
 * Why a queue is unhealthy. Stable: switch on it.
 * - `ENGINE_DOWN`: the engine did not answer `stats()` within the timeout, or its call failed.
 * - `PAUSED`: the queue is paused (BullMQ's `queue.pause()`): its jobs run only once it is resumed. Takes
 *   the place of `WAITING_TOO_LONG`, whose cause it is.
 * - `WAITING_TOO_LONG`: the oldest waiting job has waited past `maxOldestWaitingMs`: nothing takes jobs, or
 *   the workers do not keep up. (Not BullMQ's "stalled", which is a running job whose worker lost its lock.)
 * - `BACKLOG`: more jobs wait than `maxWaiting`.
 * - `DEAD_LETTERS`: more jobs failed their last attempt than `maxFailed`; they stay failed until retried.
 *
 * @example
 * ```ts
 * import type { InboxProblemCode } from 'hookguard/shutdown';
 * const paging: InboxProblemCode[] = ['ENGINE_DOWN', 'WAITING_TOO_LONG'];
 * ```
 */
export type InboxProblemCode = 'ENGINE_DOWN' | 'PAUSED' | 'WAITING_TOO_LONG' | 'BACKLOG' | 'DEAD_LETTERS';

/**
 * One thing wrong with a queue: a code for machines and a sentence for a person (counts and ages only,
 * never a job's content or an engine's error message).
 *
 * @example
 * ```ts
 * import type { InboxProblem } from 'hookguard/shutdown';
 * const problem: InboxProblem = { code: 'DEAD_LETTERS', message: '2 failed jobs (over 0) …' };
 * ```
 */
export interface InboxProblem {
  code: InboxProblemCode;
  message: string;
}

/**
 * The limits past which a queue is unhealthy. A limit that is not a number of 0 or more takes its default.
 *
 * @example
 * ```ts
 * import type { InboxHealthLimits } from 'hookguard/shutdown';
 * const limits: InboxHealthLimits = { maxOldestWaitingMs: 30_000, maxFailed: 5, maxWaiting: 1000 };
 * ```
 */
export interface InboxHealthLimits {
  /** `WAITING_TOO_LONG` once the oldest waiting job has waited longer, in ms; default 60 000 (60 s). */
  maxOldestWaitingMs?: number;
  /** `DEAD_LETTERS` once more jobs than this are failed; default 0 (any failed job). */
  maxFailed?: number;
  /** `BACKLOG` once more jobs than this wait; default none (the oldest job's age says more). */
  maxWaiting?: number;
}

/**
 * Options for {@link inboxHealth}: the limits, and how long the engine has to answer.
 *
 * @example
 * ```ts
 * import type { InboxHealthOptions } from 'hookguard/shutdown';
 * const options: InboxHealthOptions = { timeoutMs: 1000, maxFailed: 0 };
 * ```
 */
export interface InboxHealthOptions extends InboxHealthLimits {
  /** Longest `stats()` may take before the engine counts as down; default 2000 ms. */
  timeoutMs?: number;
}

/**
 * The engine answered: the queue's counts (as {@link InboxStats} has them) and what is wrong with them.
 *
 * @example
 * ```ts
 * import { judgeInbox, type InboxHealthUp } from 'hookguard/shutdown';
 * const health: InboxHealthUp = judgeInbox({ queueName: 'hookguard', waiting: 0, active: 0, delayed: 0,
 *   failed: 0, completed: 12, oldestWaitingMs: undefined, paused: false });
 * ```
 */
export interface InboxHealthUp {
  /** No problems. */
  ok: boolean;
  engine: 'up';
  queueName: string;
  waiting: number;
  active: number;
  delayed: number;
  /** The dead letter: jobs that failed their last attempt. */
  failed: number;
  /** How long the longest-waiting job has waited, in ms; undefined when none waits. */
  oldestWaitingMs: number | undefined;
  paused: boolean;
  /** Empty when `ok`; else one entry per cause, in the order `PAUSED`, `WAITING_TOO_LONG`, `BACKLOG`, `DEAD_LETTERS`. */
  problems: InboxProblem[];
}

/**
 * The engine did not answer: nothing is known of the queue.
 *
 * @example
 * ```ts
 * import type { InboxHealthDown } from 'hookguard/shutdown';
 * const down: InboxHealthDown = {
 *   ok: false,
 *   engine: 'down',
 *   error: 'ECONNREFUSED',
 *   problems: [{ code: 'ENGINE_DOWN', message: "the engine's stats() call failed (ECONNREFUSED)" }],
 * };
 * ```
 */
export interface InboxHealthDown {
  ok: false;
  engine: 'down';
  /**
   * The error's code (`ECONNREFUSED`, …) or name, or `timeout`; never its message, which can name hosts and
   * users (the same rule as `createHealthCheck`'s answer).
   */
  error: string;
  /** One `ENGINE_DOWN`. */
  problems: InboxProblem[];
}

/**
 * The health of one inbox's queue: {@link inboxHealth}'s answer, switched on `engine`.
 *
 * @example
 * ```ts
 * import { inboxHealth, type InboxHealth } from 'hookguard/shutdown';
 * import { createBullMQInbox } from 'hookguard/bullmq';
 * const inbox = createBullMQInbox({ connection: { host: '127.0.0.1', port: 6379 } });
 * const health: InboxHealth = await inboxHealth(inbox);
 * if (health.engine === 'up') console.log(`${health.waiting} waiting, ${health.failed} dead`);
 * ```
 */
export type InboxHealth = InboxHealthUp | InboxHealthDown;

const DEFAULT_MAX_OLDEST_WAITING_MS = 60_000;
const DEFAULT_TIMEOUT_MS = 2000;

/**
 * Judges counts already read (`inbox.stats()`) against the limits: the verdict `hookguard inbox stats`
 * prints. Pure: no call to the engine.
 *
 * @example
 * ```ts
 * import { createPgBossInbox } from 'hookguard/pg-boss';
 * import { judgeInbox } from 'hookguard/shutdown';
 * const inbox = createPgBossInbox({ connection: process.env.DATABASE_URL ?? '', queueName: 'payments' });
 * const { ok, problems } = judgeInbox(await inbox.stats(), { maxFailed: 5 });
 * if (!ok) for (const problem of problems) console.warn(`${problem.code}: ${problem.message}`);
 * ```
 */
export function judgeInbox(stats: InboxStats, limits: InboxHealthLimits = {}): InboxHealthUp {
  const { queueName, waiting, active, delayed, failed, oldestWaitingMs, paused } = stats;
  const maxOldestMs = limit(limits.maxOldestWaitingMs) ?? DEFAULT_MAX_OLDEST_WAITING_MS;
  const maxFailed = limit(limits.maxFailed) ?? 0;
  const maxWaiting = limit(limits.maxWaiting);
  const late = oldestWaitingMs !== undefined && oldestWaitingMs > maxOldestMs;
  // The wording `hookguard inbox stats` has warned with since it began: what is likely wrong, and the fix.
  const waited = late
    ? `the oldest waiting job has waited ${age(oldestWaitingMs)} (over ${maxOldestMs / 1000} s)`
    : '';
  const problems: InboxProblem[] = [];
  if (paused) {
    problems.push({
      code: 'PAUSED',
      message: `${late ? `${waited}: ` : ''}the queue is paused; its jobs run once it is resumed`,
    });
  } else if (late) {
    problems.push({
      code: 'WAITING_TOO_LONG',
      message:
        active === 0
          ? `${waited} and no job is running: nothing is taking jobs — is a worker running (inbox.worker(…))?`
          : `${waited} while ${active} run: the workers do not keep up, or their handlers hang — add workers or concurrency, or look at the running ones`,
    });
  }
  if (maxWaiting !== undefined && waiting > maxWaiting) {
    problems.push({
      code: 'BACKLOG',
      message: `${jobs(waiting)} waiting (over ${maxWaiting}): the workers do not keep up — add workers or concurrency`,
    });
  }
  if (failed > maxFailed) {
    problems.push({
      code: 'DEAD_LETTERS',
      message: `${jobs(failed)} failed (over ${maxFailed}), kept until retried: see why with hookguard inbox failed, run them again with retry`,
    });
  }
  const counts = { queueName, waiting, active, delayed, failed, oldestWaitingMs, paused };
  return { ok: problems.length === 0, engine: 'up', ...counts, problems };
}

/**
 * Asks the engine for the queue's counts and judges them ({@link judgeInbox}). Never throws: an engine that
 * does not answer within `timeoutMs` (default 2 s), or whose call fails, is `{ ok: false, engine: 'down' }`
 * with the error's code. Poll it from a cron job or a metrics endpoint, not from readiness (`createHealthCheck`,
 * which a deep queue must not fail).
 *
 * @example
 * ```ts
 * import { createBullMQInbox } from 'hookguard/bullmq';
 * import { inboxHealth } from 'hookguard/shutdown';
 * const inbox = createBullMQInbox({ connection: { host: '127.0.0.1', port: 6379 }, queueName: 'support-bot' });
 * const health = await inboxHealth(inbox, { maxOldestWaitingMs: 30_000, timeoutMs: 1000 });
 * if (!health.ok) console.error(health.problems.map((p) => p.code).join(', '));
 * ```
 */
export async function inboxHealth(
  inbox: { stats(): Promise<InboxStats> },
  options: InboxHealthOptions = {},
): Promise<InboxHealth> {
  const given = limit(options.timeoutMs);
  const timeoutMs = given !== undefined && given > 0 && given < 2 ** 31 ? given : DEFAULT_TIMEOUT_MS;
  let health: InboxHealthUp | undefined;
  let error = 'timeout';
  // Judged inside the work, so that an answer that is not counts (a wrong object passed in) is an error too.
  const work = Promise.resolve()
    .then(() => inbox.stats())
    .then((stats) => void (health = judgeInbox(stats, options)))
    .catch((err: unknown) => void (error = errorCode(err)));
  if ((await within(work, timeoutMs)) === 'done' && health !== undefined) return health;
  const message =
    error === 'timeout'
      ? `the engine did not answer within ${timeoutMs} ms`
      : `the engine's stats() call failed (${error})`;
  return { ok: false, engine: 'down', error, problems: [{ code: 'ENGINE_DOWN', message }] };
}

/** A limit as given when it is a number of 0 or more (Infinity included), else undefined. */
const limit = (value: number | undefined) => (typeof value === 'number' && value >= 0 ? value : undefined);

/** `1 job`, `3 jobs`. */
const jobs = (n: number) => `${n} job${n === 1 ? '' : 's'}`;

/** `45 s`, `4 min 12 s`, `3 h 5 min`, `2 d 4 h`. */
export function age(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86_400)} d ${Math.floor((s % 86_400) / 3600)} h`;
}
