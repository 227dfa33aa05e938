import type { Queue } from 'bullmq';
import { redisOf } from './bullmq-connections.js';
import type { InboxStats, OtherQueue, OtherQueues } from './inbox-stats.js';

// BullMQ's own counts for `inbox.stats()`, and a bounded look at the other queues of the same Redis for
// `hookguard inbox` (a shared Redis often holds several apps' queues; the default name may not be yours).

/** A queue's counts by state (BullMQ's getJobCounts) and the age of the next job out of its wait list. */
export async function bullMQStats(queue: Queue, now: () => number = Date.now): Promise<InboxStats> {
  const states = ['waiting', 'prioritized', 'active', 'delayed', 'failed', 'completed'] as const;
  const [counts, paused, oldest] = await Promise.all([
    queue.getJobCounts(...(hasPausedList(queue) ? [...states, 'paused' as const] : states)),
    queue.isPaused(),
    oldestReadySince(queue),
  ]);
  const count = (state: string) => Number(counts[state] ?? 0) || 0;
  return {
    queueName: queue.name,
    // A paused queue keeps its waiting jobs apart (older BullMQ) or in its wait list (newer): both count.
    waiting: count('waiting') + count('paused') + count('prioritized'),
    active: count('active'),
    delayed: count('delayed'),
    failed: count('failed'),
    completed: count('completed'),
    oldestWaitingMs: oldest === undefined ? undefined : Math.max(0, now() - oldest),
    paused,
  };
}

/**
 * BullMQ 5 can still hold the separate `paused` list of older releases; BullMQ 6 (the one with a datastore
 * `backend`) has no such job type and refuses it.
 */
const hasPausedList = (queue: Queue) => (queue as unknown as { backend?: unknown }).backend === undefined;

/** The one command of the Redis client this file reads a job's hash with. */
interface HashReader {
  hmget(key: string, ...fields: string[]): Promise<(string | null)[]>;
}

/**
 * Since when the longest-waiting job has been ready, as far as BullMQ recorded it. Read from the job's hash
 * without parsing its data, so a job another tool damaged does not fail the count.
 */
async function oldestReadySince(queue: Queue): Promise<number | undefined> {
  // Workers take from the tail of a wait list: its last entry has waited longest.
  const ids = await queue.getRanges(hasPausedList(queue) ? ['wait', 'paused'] : ['wait'], 0, 0, true);
  if (ids.length === 0) return undefined;
  const client = (await redisOf(queue)) as unknown as HashReader;
  const times = await Promise.all(
    ids.map(async (id) =>
      readySince(
        await client.hmget(queue.toKey(id), 'timestamp', 'processedOn', 'finishedOn', 'atm', 'opts'),
      ),
    ),
  );
  const known = times.filter((time): time is number => time !== undefined);
  return known.length === 0 ? undefined : Math.min(...known);
}

/**
 * The latest time the job is known to have been ready by: when it was added, when it last finished, or
 * when its last run started plus the backoff it then had to wait (BullMQ keeps no time for when a backoff
 * ran out, and without the backoff a job retried after hours would look hours old the moment it is ready).
 */
function readySince([added, started, finished, attemptsMade, opts]: (string | null | undefined)[]):
  number | undefined {
  const time = (value: string | null | undefined) => {
    const ms = Number(value ?? Number.NaN);
    return Number.isFinite(ms) && ms > 0 ? ms : undefined;
  };
  const lastStart = time(started);
  const retried =
    lastStart === undefined ? undefined : lastStart + shortestBackoffMs(opts, Number(attemptsMade));
  const known = [time(added), retried, time(finished)].filter((ms): ms is number => ms !== undefined);
  return known.length === 0 ? undefined : Math.max(...known);
}

/**
 * The shortest wait BullMQ's own backoff strategies (`fixed`, `exponential`, with their jitter) give a
 * job after `attemptsMade` failed runs; 0 for a custom strategy, which cannot be known here.
 */
function shortestBackoffMs(opts: string | null | undefined, attemptsMade: number): number {
  if (!(attemptsMade >= 1) || opts === null || opts === undefined) return 0;
  let backoff: unknown;
  try {
    backoff = (JSON.parse(opts) as { backoff?: unknown }).backoff;
  } catch {
    return 0;
  }
  const spec = (typeof backoff === 'number' ? { type: 'fixed', delay: backoff } : (backoff ?? {})) as {
    type?: unknown;
    delay?: unknown;
    jitter?: unknown;
  };
  const delay = Number(spec.delay);
  const jitter = Number(spec.jitter ?? 0);
  if (!(delay > 0)) return 0;
  const longest =
    spec.type === 'fixed' ? delay : spec.type === 'exponential' ? 2 ** (attemptsMade - 1) * delay : 0;
  return Math.floor(longest * (jitter > 0 && jitter <= 1 ? 1 - jitter : 1));
}

/** The commands of the client BullMQ hands out that this file uses. */
interface ScanningClient {
  scan(
    cursor: string,
    match: 'MATCH',
    pattern: string,
    count: 'COUNT',
    n: number,
  ): Promise<[string, string[]]>;
  llen(key: string): Promise<number>;
  zcard(key: string): Promise<number>;
}

/** SCAN calls (1000 keys each) before the look at other queues stops: a huge Redis is not walked whole. */
const MAX_SCANS = 50;
/** Queues counted before stopping; the rest are reported as `more`. */
const MAX_CANDIDATES = 50;
const LISTS = ['wait', 'paused', 'active'];
const SETS = ['prioritized', 'delayed', 'failed', 'completed', 'waiting-children'];

/**
 * The other BullMQ queues on this Redis (same key prefix) that hold jobs, by name, at most `limit`. Found
 * by their `meta` key (every BullMQ queue writes one), with a bounded SCAN: on a Redis with more keys
 * than it looks at, `more` is true. A Redis Cluster is looked at on one node only.
 */
export async function otherBullMQQueues(queue: Queue, limit: number): Promise<OtherQueues> {
  const client = (await redisOf(queue)) as unknown as ScanningClient;
  const prefix = queue.opts.prefix ?? 'bull';
  const { names, complete } = await queueNames(client, prefix);
  names.delete(queue.name);
  const candidates = [...names].sort().slice(0, MAX_CANDIDATES);
  const counted = await Promise.all(candidates.map((name) => countQueue(client, `${prefix}:${name}:`, name)));
  const busy = counted.filter((other) => other.jobs > 0);
  return {
    queues: busy.slice(0, limit),
    more: busy.length > limit || !complete || names.size > candidates.length,
  };
}

async function queueNames(client: ScanningClient, prefix: string) {
  const pattern = `${prefix.replace(/[*?[\]\\]/g, '\\$&')}:*:meta`;
  const names = new Set<string>();
  let cursor = '0';
  for (let scans = 0; scans < MAX_SCANS && names.size <= MAX_CANDIDATES; scans++) {
    const [next, keys] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    for (const key of keys) {
      // BullMQ refuses ":" in queue names, so the name is what stands between the prefix and ":meta".
      const name = key.slice(prefix.length + 1, -':meta'.length);
      if (name !== '' && !name.includes(':')) names.add(name);
    }
    cursor = next;
    if (cursor === '0') return { names, complete: true };
  }
  return { names, complete: false };
}

async function countQueue(client: ScanningClient, keyPrefix: string, name: string): Promise<OtherQueue> {
  // A key of another type (not BullMQ's after all) counts as empty.
  const size = (read: Promise<number>) => read.then(Number, () => 0);
  const [lists, sets] = await Promise.all([
    Promise.all(LISTS.map((state) => size(client.llen(keyPrefix + state)))),
    Promise.all(SETS.map((state) => size(client.zcard(keyPrefix + state)))),
  ]);
  const jobs = [...lists, ...sets].reduce((sum, n) => sum + n, 0);
  return { name, jobs, failed: sets[SETS.indexOf('failed')] ?? 0 };
}
