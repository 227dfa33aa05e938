import { createHash } from 'node:crypto';
import { Job, type Queue, type Worker } from 'bullmq';
import type { InboxJob } from '../pipeline/enqueue-stage.js';
import type { IoRedisLike } from '../stores/redis.js';
import { isRunnableJob } from './inbox.js';
import { LANE_WRITE_GRACE_MS, type LaneVerdict } from './lane-rules.js';

// Ordering for the BullMQ inbox (`ordered: true`): one sorted set ("lane") per ordering key on the queue's
// Redis, holding the ids of the key's jobs that have not finished, scored by when the web side accepted
// them (Redis's clock in microseconds, kept strictly increasing within the lane). Only a lane's lowest
// member runs; the others wait as delayed jobs, and the job that leaves the lane promotes the next. Each
// script touches one key (Redis Cluster's rule).

// KEYS[1] lane; ARGV[1] job id. Joins the lane once (a duplicate delivery keeps its first place):
// {the job's rank in its lane (0: it heads it), 1 when this call added it}.
const JOIN = `if redis.call('ZSCORE', KEYS[1], ARGV[1]) then return {redis.call('ZRANK', KEYS[1], ARGV[1]), 0} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if last[2] and tonumber(last[2]) >= now then now = tonumber(last[2]) + 1 end
redis.call('ZADD', KEYS[1], string.format('%.0f', now), ARGV[1])
return {redis.call('ZRANK', KEYS[1], ARGV[1]), 1}`;

// KEYS[1] lane; ARGV[1] job id. {1} when the job may run (it heads its lane, or is in none), else
// {0, head id, head score, Redis time in microseconds}.
const HEAD = `if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return {1} end
local head = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if head[1] == ARGV[1] then return {1} end
local t = redis.call('TIME')
return {0, head[1], head[2], string.format('%.0f', tonumber(t[1]) * 1000000 + tonumber(t[2]))}`;

// KEYS[1] lane; ARGV[1] job id. Leaves the lane; returns the new head's id, if any.
const LEAVE = `redis.call('ZREM', KEYS[1], ARGV[1])
local head = redis.call('ZRANGE', KEYS[1], 0, 0)
return head[1]`;

// KEYS[1] lane; ARGV[1] member, ARGV[2] its score: removes a dead head only if it is still the one seen.
const DROP = `if redis.call('ZSCORE', KEYS[1], ARGV[1]) == ARGV[2] then redis.call('ZREM', KEYS[1], ARGV[1]) return 1 end
return 0`;

// KEYS[1] lane; ARGV[1] how many members: {Redis time in µs, id, score, id, score, ...}, oldest first.
const VIEW = `local t = redis.call('TIME')
local out = {string.format('%.0f', tonumber(t[1]) * 1000000 + tonumber(t[2]))}
for _, v in ipairs(redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1, 'WITHSCORES')) do out[#out + 1] = v end
return out`;

/** The lanes of one queue. */
export function lanesOf(queueName: string) {
  const laneOf = (orderKey: string) =>
    `hookguard:inbox:${queueName}:lane:${createHash('sha256').update(orderKey).digest('base64url')}`;

  /**
   * Web side, before the job is added: the job takes its place in its key's lane. `heads`: it heads the
   * lane; a job behind others is then added delayed ("parked"), so that no worker takes it only to give
   * it back, and the job ahead of it promotes it as it leaves. `added`: this call put it in the lane (a
   * copy of a job that already finished must then take it out again, see `leave`).
   */
  async function join(client: IoRedisLike, orderKey: string, jobId: string) {
    const [rank, added] = (await client.call('EVAL', JOIN, 1, laneOf(orderKey), jobId)) as [number, number];
    return { heads: rank === 0, added: added === 1 };
  }

  /** Web side, after a parked job was added: the job ahead may have left before it existed. */
  async function heads(client: IoRedisLike, orderKey: string, jobId: string): Promise<boolean> {
    const answer = (await client.call('EVAL', HEAD, 1, laneOf(orderKey), jobId)) as [number];
    return answer[0] === 1;
  }

  /**
   * Worker side, before a run: 'run' when the job heads its lane (or is in none). With `inspect`, a head
   * that can no longer run is taken out first: its job finished, was removed, or (unless `hold`) failed
   * for good, or it never got written (no job `LANE_WRITE_GRACE_MS` after it joined). A job's first look
   * skips that (two round trips): a head is almost always alive, and a dead one is found on the waiting
   * job's next look, `inFlightDelayMs` later.
   */
  async function check(
    worker: Worker<unknown>,
    client: IoRedisLike,
    orderKey: string,
    jobId: string,
    hold: boolean,
    inspect: boolean,
  ): Promise<LaneVerdict> {
    const lane = laneOf(orderKey);
    for (;;) {
      const answer = (await client.call('EVAL', HEAD, 1, lane, jobId)) as [number, string?, string?, string?];
      if (answer[0] === 1) return 'run';
      if (!inspect) return 'wait';
      const [, head, score, now] = answer;
      if (!(await isDead(worker, head!, Number(now) - Number(score), hold))) return 'wait';
      await client.call('EVAL', DROP, 1, lane, head!, score!);
    }
  }

  /** After the job's last run (done, or failed for good): leaves the lane and promotes the next job. */
  async function leave(owner: Worker<unknown> | Queue, client: IoRedisLike, orderKey: string, jobId: string) {
    const next = (await client.call('EVAL', LEAVE, 1, laneOf(orderKey), jobId)) as string | null;
    if (next !== null && next !== undefined) await promote(owner, next);
  }

  /** For coalescing (bursts.ts): see {@link viewLane}. */
  const view = (
    worker: Worker<unknown>,
    client: IoRedisLike,
    orderKey: string,
    limit: number,
    withJobs: boolean,
  ) => viewLane(worker, client, laneOf(orderKey), limit, withJobs);

  return { join, heads, check, leave, view };
}

/**
 * The lane's first `limit` members, when each was accepted (ms), and with `withJobs` each one's job data
 * (read from BullMQ's job hash: `worker` names the keys).
 */
async function viewLane(
  worker: Worker<unknown>,
  client: IoRedisLike,
  lane: string,
  limit: number,
  withJobs: boolean,
) {
  const answer = (await client.call('EVAL', VIEW, 1, lane, limit)) as string[];
  const members: { acceptedAt: number; job: InboxJob | undefined }[] = [];
  const reads: Promise<unknown>[] = [];
  for (let i = 1; i + 1 < answer.length; i += 2) {
    members.push({ acceptedAt: Number(answer[i + 1]) / 1000, job: undefined });
    if (withJobs) reads.push(client.call('HGET', worker.toKey(answer[i]!), 'data'));
  }
  (await Promise.all(reads)).forEach((data, i) => {
    try {
      const job: unknown = typeof data === 'string' ? JSON.parse(data) : undefined;
      members[i]!.job = isRunnableJob(job) ? job : undefined;
    } catch {
      // not JSON: left undefined, and the batch stops before it
    }
  });
  return { now: Number(answer[0]) / 1000, members };
}

/** Moves a waiting (delayed) job to run now; a job in any other state is left as it is. */
export async function promote(owner: Worker<unknown> | Queue, jobId: string): Promise<void> {
  // A handle on the job by its id alone (no read of the job): BullMQ's promote script needs nothing else.
  // Raced by its own worker re-checking, not delayed, or gone: nothing to do either way.
  await new Job(owner, 'promote', null, {}, jobId).promote().catch(() => undefined);
}

async function isDead(worker: Worker<unknown>, jobId: string, ageMicros: number, hold: boolean) {
  const job = await Job.fromId(worker, jobId);
  if (job === undefined) return ageMicros > LANE_WRITE_GRACE_MS * 1000;
  const state = await job.getState();
  return state === 'completed' || state === 'unknown' || (state === 'failed' && !hold);
}
