import type { Logger } from '../pipeline/types.js';
import { describeError } from '../util/values.js';
import {
  type ChatwootClient,
  type ChatwootMessage,
  type ConversationRef,
  isChatwootApiError,
} from './client.js';
import { conversationKey, type Ledger } from './ledger.js';

// `ctx.chatwoot`: the calls a handler makes, bound to its event's conversation, with the ledger's
// guarantees (a reply posts once; nothing public after a hand-off) and a typing indicator that ends.

/** The content attribute that marks a bot reply with its ledger reference (echoed back by Chatwoot). */
export const REPLY_MARK = 'hookguard_reply';

/** What `reply()` did. */
export type ReplyResult =
  | { posted: true; message: ChatwootMessage }
  /** `already-posted`: an earlier run of this handler posted it. `handed-off`: a human has the conversation. */
  | { posted: false; reason: 'already-posted' | 'handed-off' };

/** The event's conversation, as a handler sees it (`ctx.chatwoot`). */
export interface ChatwootConversation extends ConversationRef {
  /**
   * Posts `content` once: a run of the handler that is retried (a failure later in the handler, a worker
   * killed after the post) does not post it again. Each call in a run is its own reply (the first, the
   * second, …); give `ref` to name one yourself (unique within the conversation). A public reply is skipped
   * once the conversation is with a human (the payloads, the bot's own marks, and Chatwoot's status read
   * right before the post). Private notes (`private: true`) are always posted.
   */
  reply(content: string, options?: { private?: boolean; ref?: string }): Promise<ReplyResult>;
  /** Turns the "typing…" indicator on or off. It is turned off when the handler ends, however it ends. */
  typing(on: boolean): Promise<void>;
  /**
   * Hands the conversation to a human: an optional private note with `reason`, then status `open` (from
   * `pending` this is Chatwoot's bot hand-off). The bot then ignores the conversation (`afterHandoff`).
   */
  handoff(reason?: string): Promise<void>;
  /** Replaces the conversation's labels. */
  setLabels(labels: readonly string[]): Promise<string[]>;
  /** Replaces the conversation's custom attributes. */
  setCustomAttributes(attributes: Record<string, unknown>): Promise<Record<string, unknown>>;
}

export interface BoundDeps {
  client: ChatwootClient;
  ledger: Ledger;
  /** Handlers of the bot turn typing off when they end; false once Chatwoot refused typing to bots. */
  typingAllowed: { value: boolean };
  /** `afterHandoff: 'ignore'`: public replies are skipped once the conversation is with a human. */
  stopAfterHandoff: boolean;
  /** A public reply reads the conversation's status first; false once Chatwoot refused it to bots. */
  liveStatus: { value: boolean };
}

/** `ctx.chatwoot`, and `end()` for the wrapper: turns typing off if it may be on (this run's or a cut-off one's). */
export function bindConversation(
  deps: BoundDeps,
  to: ConversationRef,
  eventRef: string | undefined,
  log: Logger,
  /** A run after an earlier one of the same event, which may have been cut off with typing on. */
  rerun: boolean,
): { conversation: ChatwootConversation; end(): Promise<void> } {
  const { client, ledger } = deps;
  const typing = typingOf(deps, to, log);
  let replies = 0;
  let handedOffHere = false;
  const withHuman = async () =>
    handedOffHere || (await ledger.handedOff(to)) || (await liveWithHuman(deps, to, log));

  /** Posts once under `ref` (scoped to the conversation); a public reply checks the hand-off right before. */
  const post = async (content: string, isPrivate: boolean, ref: string | undefined): Promise<ReplyResult> => {
    const send = (contentAttributes?: Record<string, unknown>) =>
      client.postMessage(to, { content, private: isPrivate, contentAttributes });
    const stop = isPrivate || !deps.stopAfterHandoff ? undefined : withHuman;
    if (ref === undefined) {
      if (stop !== undefined && (await stop())) return { posted: false, reason: 'handed-off' };
      return { posted: true, message: await send() };
    }
    const scoped = `${conversationKey(to)}:${ref}`;
    const outcome = await ledger.postOnce(scoped, () => send({ [REPLY_MARK]: scoped }), stop);
    if (outcome.posted) return outcome;
    if (outcome.reason === 'handed-off') {
      log.info?.({ conversation: to.conversationId }, 'reply skipped: the conversation is with a human');
    }
    return outcome;
  };

  const conversation: ChatwootConversation = {
    accountId: to.accountId,
    conversationId: to.conversationId,
    async reply(content, options) {
      replies++;
      const ref = options?.ref ?? (eventRef === undefined ? undefined : `${eventRef}#${replies}`);
      return post(content, options?.private === true, ref);
    },
    typing: typing.set,
    async handoff(reason) {
      if (reason !== undefined && reason !== '') {
        await post(reason, true, eventRef === undefined ? undefined : `${eventRef}#handoff`);
      }
      // The status first: a run that failed before it is run again and hands off then; a mark recorded
      // without the status would leave the conversation with nobody.
      await client.setStatus(to, 'open');
      handedOffHere = true;
      await ledger.markHandoff(to);
      if (typing.touched()) await typing.set(false);
    },
    setLabels: (labels) => client.setLabels(to, labels),
    setCustomAttributes: (attributes) => client.setCustomAttributes(to, attributes),
  };
  return {
    conversation,
    end: async () => {
      if (typing.touched() || rerun) await typing.set(false);
    },
  };
}

/**
 * The typing indicator of a run: calls go out one after another (an "off" never overtakes the "on" before
 * it); a failure to turn it on is logged, not thrown (the answer matters more), one to turn it off too.
 */
function typingOf(deps: BoundDeps, to: ConversationRef, log: Logger) {
  let touched = false;
  let last: Promise<void> = Promise.resolve();
  const call = async (on: boolean) => {
    try {
      await deps.client.setTyping(to, on);
    } catch (err) {
      if (
        refusedToBots(
          err,
          deps.typingAllowed,
          log,
          'typing is off for this bot: this Chatwoot does not let bots set it',
        )
      ) {
        return;
      }
      const what = on ? 'could not turn typing on' : 'could not turn typing off: the indicator may stay on';
      (on ? log.warn : log.error)?.({ err: describeError(err) }, what);
    }
  };
  return {
    set(on: boolean): Promise<void> {
      if (!deps.typingAllowed.value) return Promise.resolve();
      touched = true;
      last = last.then(() => call(on));
      return last;
    },
    touched: () => touched,
  };
}

/**
 * Is the conversation with a human now, as Chatwoot says (`GET` the conversation: status `open` or a user
 * assignee)? Where this Chatwoot does not let bots read a conversation, the check is turned off (warned
 * once); where the read fails, the answer is "no" (the payload and the marks still stand).
 */
async function liveWithHuman(deps: BoundDeps, to: ConversationRef, log: Logger): Promise<boolean> {
  if (!deps.liveStatus.value) return false;
  try {
    const now = await deps.client.getConversation(to);
    return now.status === 'open' || now.assigneeType === 'user';
  } catch (err) {
    refusedToBots(
      err,
      deps.liveStatus,
      log,
      'this Chatwoot does not let bots read a conversation: a hand-off is known from the webhooks alone',
    );
    return false;
  }
}

/** A call this Chatwoot refuses to bots (older `BOT_ACCESSIBLE_ENDPOINTS`): its switch off, warned once. */
function refusedToBots(err: unknown, allowed: { value: boolean }, log: Logger, warning: string): boolean {
  if (!isChatwootApiError(err) || err.code !== 'CHATWOOT_NOT_FOR_BOTS') return false;
  if (allowed.value) log.warn?.({ err: describeError(err) }, warning);
  allowed.value = false;
  return true;
}
