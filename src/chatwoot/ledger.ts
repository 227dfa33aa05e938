import type { DedupStore } from '../dedup/dedup-store.js';
import { type ChatwootMessage, type ConversationRef, isChatwootApiError } from './client.js';

// What the bot remembers in a DedupStore, shared by every worker: which replies went out, which of them
// Chatwoot echoed back, and which conversations were handed to a human.
//
// A reply is claimed before it is posted and completed after Chatwoot's 2xx, so a handler run again (a
// retry, a worker killed after the post) finds it done and does not post it again. The gap this leaves is
// a run cut off *during* the post, or an answer that never came: the message may be in Chatwoot with the
// claim never completed. Chatwoot settles it: every message a bot posts comes back to the bot as a
// `message_created` webhook (AgentBotListener sends outgoing messages too), with the `content_attributes`
// it was posted with (the marker). The bot records that echo; a later run that finds the reply's claim
// still held waits for the echo, or for the claim's lease to run out (nothing was posted, or the echo was
// lost), before it posts.

const POLL_MS = 200;

export interface LedgerOptions {
  store: DedupStore;
  /** How long a post may hold its claim before another run may post it; above the client's longest try. */
  replyLeaseMs: number;
  /** How long an ambiguous post waits for its echo before the run fails (and is retried). */
  settleMs: number;
  /** How long replies and echoes are remembered. */
  ttlMs: number;
  /** How long a hand-off mark silences a conversation; 0: no mark (only the payloads' status). */
  handoffMemoryMs: number;
}

export type PostOutcome =
  { posted: true; message: ChatwootMessage } | { posted: false; reason: 'already-posted' | 'handed-off' };

const ALREADY: PostOutcome = { posted: false, reason: 'already-posted' };

const replyKey = (ref: string) => `hookguard:chatwoot-bot:reply:${ref}`;
const echoKey = (ref: string) => `hookguard:chatwoot-bot:echo:${ref}`;
const handoffKey = (to: ConversationRef) => `hookguard:chatwoot-bot:handoff:${conversationKey(to)}`;

/** A conversation in the ledger's keys: its account and display id (display ids are per account). */
export const conversationKey = (to: ConversationRef): string => `${to.accountId}:${to.conversationId}`;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export function createLedger(options: LedgerOptions) {
  const { store } = options;

  const done = (key: string) => isDone(store, key);
  const mark = (key: string, ttlMs: number) => markDone(store, key, ttlMs);

  /** A claim of the reply: ours (with its token), or settled as posted by an earlier run. */
  async function claimReply(ref: string): Promise<string | undefined> {
    const until = Date.now() + options.replyLeaseMs + 5000;
    for (;;) {
      const claim = await store.claim(replyKey(ref), options.replyLeaseMs);
      if (claim.status === 'duplicate') return undefined;
      if (claim.status === 'claimed') {
        // Its lease ran out: an earlier run may still have posted it (its echo says so).
        if (!(await done(echoKey(ref)))) return claim.token;
        await store.complete(replyKey(ref), claim.token, options.ttlMs);
        return undefined;
      }
      // An earlier run is posting it, or was cut off while it did.
      if (await done(echoKey(ref))) return undefined;
      if (Date.now() >= until) {
        throw new Error('hookguard chatwoot bot: a reply stayed claimed past its lease; the run is retried');
      }
      await sleep(POLL_MS);
    }
  }

  return {
    /**
     * Posts the reply `ref` unless an earlier run did. `stop`, checked once the reply is ours and right
     * before the post (a wait for an earlier run can be long): true gives it up (a hand-off happened).
     */
    async postOnce(
      ref: string,
      post: () => Promise<ChatwootMessage>,
      stop?: () => Promise<boolean>,
    ): Promise<PostOutcome> {
      const token = await claimReply(ref);
      if (token === undefined) return ALREADY;
      let message: ChatwootMessage;
      try {
        if (stop !== undefined && (await stop())) {
          await store.release(replyKey(ref), token);
          return { posted: false, reason: 'handed-off' };
        }
        message = await post();
      } catch (err) {
        if (!isChatwootApiError(err) || !err.ambiguous) {
          await store.release(replyKey(ref), token);
          throw err;
        }
        // It may be in Chatwoot. Its echo says so; without one the claim stays held, and the retry waits
        // out its lease before posting again.
        if (!(await echoed(store, ref, options.settleMs))) throw err;
        await store.complete(replyKey(ref), token, options.ttlMs);
        return ALREADY;
      }
      await store.complete(replyKey(ref), token, options.ttlMs);
      return { posted: true, message };
    },
    /** Records Chatwoot's echo of the reply `ref`. */
    sawEcho: (ref: string) => mark(echoKey(ref), options.ttlMs),
    /** Remembers that the conversation went to a human. */
    async markHandoff(to: ConversationRef): Promise<void> {
      if (options.handoffMemoryMs > 0) await mark(handoffKey(to), options.handoffMemoryMs);
    },
    async handedOff(to: ConversationRef): Promise<boolean> {
      return options.handoffMemoryMs > 0 && done(handoffKey(to));
    },
  };
}

export type Ledger = ReturnType<typeof createLedger>;

/** Has `key` been completed? A check claim is given back at once. */
async function isDone(store: DedupStore, key: string): Promise<boolean> {
  const claim = await store.claim(key, 2000);
  if (claim.status === 'duplicate') return true;
  if (claim.status === 'claimed') await store.release(key, claim.token);
  return false;
}

/** Completes `key` on its own claim (an echo, a hand-off mark); a check running that instant is waited for. */
async function markDone(store: DedupStore, key: string, ttlMs: number): Promise<void> {
  for (let tries = 0; ; tries++) {
    const claim = await store.claim(key, 5000);
    if (claim.status === 'duplicate') return;
    if (claim.status === 'claimed') return store.complete(key, claim.token, ttlMs);
    if (tries >= 25) throw new Error('hookguard chatwoot bot: a mark stayed claimed by someone else for 5 s');
    await sleep(POLL_MS);
  }
}

/** Waits up to `ms` for the echo of `ref`. */
async function echoed(store: DedupStore, ref: string, ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  for (;;) {
    if (await isDone(store, echoKey(ref))) return true;
    if (Date.now() >= until) return false;
    await sleep(POLL_MS);
  }
}
