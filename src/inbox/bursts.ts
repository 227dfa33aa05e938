import type { DedupStore } from '../dedup/dedup-store.js';
import type { InboxJob } from '../pipeline/enqueue-stage.js';
import type { WebhookContext } from '../pipeline/types.js';
import { isThenable, positive } from '../util/values.js';
import { JobDeferred } from './inbox.js';

// Burst coalescing (`coalesce()`): in an ordered inbox, the messages of one conversation that arrive within
// a quiet window reach one handler call, in order. The lane's head waits in its worker slot until the
// conversation has been quiet for the window (or the first message waited `maxWaitMs`), then claims the
// messages queued behind it, runs the handler once, and completes every message's key; their own jobs then
// finish as duplicates as the lane reaches them. Nothing here is in the core: the web side sees a plain
// handler.

const BURST = Symbol.for('hookguard.burst');

/** How a handler made with {@link coalesce} gathers messages. */
export interface CoalesceOptions {
  /** How long a conversation must be quiet (no newer message accepted) before the call starts. Default 1500 ms. */
  windowMs?: number;
  /** The longest the first message of a call waits for quiet (from when the web side accepted it). Default 5000 ms. */
  maxWaitMs?: number;
  /** The most messages one call gets (the rest go to the next). Default 20. */
  maxMessages?: number;
  /**
   * Abort `ctx.signal` when a newer message of the conversation arrives while the call runs: a handler that
   * then throws is called again (without using an attempt) with every message so far, the newer ones too.
   * A handler that returns anyway has handled its batch; the newer message goes to the next call. At most 3
   * aborts per batch (a conversation that never stops gets an answer). Default false.
   */
  supersede?: boolean;
}

/** The context of a coalesced call: the first message's, with every message's dedup key and the abort signal. */
export interface BurstContext extends WebhookContext {
  attempt: number;
  /** The dedup key of each message of the batch, in order. */
  keys: (string | undefined)[];
  /** Aborted when a newer message arrives while the call runs (with `supersede`). */
  signal: AbortSignal;
}

/** A coalesced handler: the messages of one conversation, oldest first. */
export type BurstHandler<E> = (events: E[], ctx: BurstContext) => unknown;

export interface Burst {
  windowMs: number;
  maxWaitMs: number;
  maxMessages: number;
  supersede: boolean;
  run: BurstHandler<unknown>;
}

/**
 * A handler for `on` (e.g. `message_created`) that gets the messages of a burst as one call. In a worker of
 * an inbox created with `ordered: true`, messages of one conversation accepted within `windowMs` of each
 * other run as one call (`events` in the order the web side accepted them); elsewhere (inline, or an
 * unordered inbox) each event is a batch of one.
 *
 * @example
 * ```ts
 * import { coalesce } from 'hookguard/bullmq';
 * import type { ChatwootWebhookOptions } from 'hookguard';
 *
 * export const chatwoot = {
 *   secret: process.env.CW_HMAC_SECRET,
 *   on: {
 *     message_created: coalesce({ windowMs: 1500 }, async (messages, ctx) => {
 *       const question = messages.map((m) => m.content).join('\n');
 *       ctx.log.info({ messages: messages.length, chars: question.length }, 'one answer for the burst');
 *     }),
 *   },
 * } satisfies ChatwootWebhookOptions;
 * ```
 */
export function coalesce<E>(
  options: CoalesceOptions,
  handler: BurstHandler<E>,
): (event: E, ctx: WebhookContext) => Promise<void> {
  const windowMs = positive(options.windowMs, 1500);
  const burst: Burst = {
    windowMs,
    maxWaitMs: Math.max(windowMs, positive(options.maxWaitMs, 5000)),
    maxMessages: Math.max(1, Math.floor(positive(options.maxMessages, 20))),
    supersede: options.supersede === true,
    run: handler as BurstHandler<unknown>,
  };
  const single = async (event: E, ctx: WebhookContext) => {
    const result = handler([event], {
      ...ctx,
      attempt: ctx.attempt ?? 1,
      keys: [ctx.key],
      signal: new AbortController().signal,
    });
    if (isThenable(result)) await result;
  };
  return Object.assign(single, { [BURST]: burst });
}

/** The burst settings of a handler made with {@link coalesce}, if it is one. */
export function burstOf(handler: unknown): Burst | undefined {
  return typeof handler === 'function' ? (handler as { [BURST]?: Burst })[BURST] : undefined;
}

/** A lane as the burst runner reads it (the engines implement it). */
export interface LaneView {
  /**
   * The first `limit` members of the key's lane, oldest first: when the web side accepted each, in ms on
   * the engine's clock, and (`withJobs`) its job as the web side wrote it (undefined when it cannot be
   * read); `now` on the same clock.
   */
  view(
    orderKey: string,
    limit: number,
    withJobs: boolean,
  ): Promise<{ now: number; members: { acceptedAt: number; job: InboxJob | undefined }[] }>;
}

/** A message of the batch beside the head, claimed for this call. */
export interface Claimed {
  job: InboxJob;
  token: string;
}

interface BurstRun {
  burst: Burst;
  head: InboxJob;
  ctx: WebhookContext & { attempt: number };
  lanes: LaneView;
  store: DedupStore;
  leaseMs: number;
  /** Does this job belong in the head's batch (same endpoint, same handler, a key)? */
  joins: (job: InboxJob) => boolean;
  /** The head's last attempt. */
  final: boolean;
}

/**
 * Waits for the conversation to be quiet, claims the messages behind the head, and calls the handler once.
 * Resolves with the claimed messages (their keys to complete); rejects after releasing them.
 */
export async function runBurst(r: BurstRun): Promise<Claimed[]> {
  const orderKey = r.head.orderKey!;
  for (let aborts = 0; ; aborts++) {
    // On the job's last attempt its message runs alone: a poison message behind it then fails on its own
    // job instead of dead-lettering the healthy ones ahead of it.
    if (r.final) return (await runOne(r), []);
    const { jobs, seen } = await quiet(r, orderKey);
    if (jobs[0]?.key !== r.head.key) return (await runOne(r), []); // not the head after all: alone
    const { claimed, whole } = await claimBehind(r, jobs.slice(1));
    const controller = new AbortController();
    // Only a newer message that could join this call supersedes it: the call takes the whole lane it saw,
    // and the lane was not cut at maxMessages.
    const joinable = whole && jobs.length === seen && seen < r.burst.maxMessages;
    const watch =
      r.burst.supersede && joinable && aborts < 3 ? watchLane(r, orderKey, seen, controller) : undefined;
    try {
      const result = r.burst.run(
        [r.head, ...claimed.map((c) => c.job)].map((j) => j.event),
        {
          ...r.ctx,
          keys: [r.head.key, ...claimed.map((c) => c.job.key)],
          signal: controller.signal,
        },
      );
      if (isThenable(result)) await result;
      return claimed;
    } catch (err) {
      await release(r, claimed);
      if (!controller.signal.aborted) throw err;
      r.ctx.log.info({ messages: claimed.length + 1 }, 'superseded by a newer message: called again with it');
    } finally {
      watch?.stop();
    }
  }
}

async function runOne(r: BurstRun): Promise<void> {
  const result = r.burst.run([r.head.event], {
    ...r.ctx,
    keys: [r.head.key],
    signal: new AbortController().signal,
  });
  if (isThenable(result)) await result;
}

/**
 * Waits until the lane's newest member is `windowMs` old (or its head `maxWaitMs`): then its jobs, up to
 * the first that cannot be read, and how many members the lane held (up to `maxMessages`).
 */
async function quiet(r: BurstRun, orderKey: string): Promise<{ jobs: InboxJob[]; seen: number }> {
  for (;;) {
    const { now, members } = await r.lanes.view(orderKey, r.burst.maxMessages, true);
    const first = members[0];
    if (first === undefined) return { jobs: [], seen: 0 };
    const newest = members[members.length - 1]!;
    const due = Math.min(newest.acceptedAt + r.burst.windowMs, first.acceptedAt + r.burst.maxWaitMs);
    if (now >= due || members.length >= r.burst.maxMessages) {
      const jobs: InboxJob[] = [];
      for (const member of members) {
        if (member.job === undefined) break;
        jobs.push(member.job);
      }
      return { jobs, seen: members.length };
    }
    await new Promise((resolve) => setTimeout(resolve, due - now));
  }
}

/**
 * Claims the messages behind the head that join its batch, up to the first that cannot (claimed at once:
 * a claim is a round trip; those after the first refusal are given back). `whole`: every one joined. A
 * message another run holds can only be held by an earlier run of this head (a worker that died in the
 * middle of the call, whose claims outlive the head's): the head waits for them rather than run alone.
 */
async function claimBehind(r: BurstRun, behind: InboxJob[]): Promise<{ claimed: Claimed[]; whole: boolean }> {
  const joining: InboxJob[] = [];
  for (const job of behind) {
    if (!r.joins(job)) break;
    joining.push(job);
  }
  const claims = await Promise.all(
    joining.map((job) => Promise.resolve(r.store.claim(job.key!, r.leaseMs)).catch(() => undefined)),
  );
  const claimed: Claimed[] = [];
  const surplus: Claimed[] = [];
  let stopped = joining.length < behind.length;
  let held = false;
  claims.forEach((claim, i) => {
    // A duplicate was handled by an earlier call: its own job finishes as a duplicate on its turn.
    if (claim?.status === 'duplicate') return;
    if (claim?.status !== 'claimed') {
      held ||= !stopped && claim?.status === 'in-flight';
      stopped = true;
    } else (stopped ? surplus : claimed).push({ job: joining[i]!, token: claim.token });
  });
  if (held) {
    await release(r, [...claimed, ...surplus]);
    throw new JobDeferred('in-flight');
  }
  await release(r, surplus);
  return { claimed, whole: !stopped };
}

export async function release(r: { store: DedupStore }, claimed: Claimed[]): Promise<void> {
  for (const { job, token } of claimed) {
    await Promise.resolve(r.store.release(job.key!, token)).catch(() => undefined);
  }
}

/** Looks at the lane every 100 ms while the call runs; aborts once it holds more than it did. */
function watchLane(r: BurstRun, orderKey: string, size: number, controller: AbortController) {
  const timer = setInterval(() => {
    r.lanes.view(orderKey, size + 1, false).then(
      ({ members }) => {
        if (members.length > size) {
          clearInterval(timer);
          controller.abort(new Error('A newer message of the conversation arrived.'));
        }
      },
      () => undefined,
    );
  }, 100);
  timer.unref?.();
  return { stop: () => clearInterval(timer) };
}
