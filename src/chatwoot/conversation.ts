import type { Logger } from '../pipeline/types.js';
import { describeError } from '../util/values.js';
import {
  type ChatwootClient,
  type ChatwootMessage,
  type ConversationRef,
  isChatwootApiError,
} from './client.js';
import type { Ledger } from './ledger.js';

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
   * second, …); give `ref` to name one yourself. A public reply is skipped once the conversation was handed
   * to a human. Private notes (`private: true`) are always posted.
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
}

/** `ctx.chatwoot`, and `end()` for the wrapper: turns typing off if it may be on (this run's or a cut-off one's). */
export function bindConversation(
  deps: BoundDeps,
  to: ConversationRef,
  eventRef: string | undefined,
  log: Logger,
  /** A run after an earlier one of the same event, which may have been cut off with typing on. */
  rerun: boolean,
): { conversation: ChatwootConversation; end(): Promise<void>; typingMayBeOn(): boolean } {
  const { client, ledger } = deps;
  const where = `${to.accountId}:${to.conversationId}`;
  let replies = 0;
  let typingTouched = false;
  let handedOffHere = false;

  const post = async (content: string, isPrivate: boolean, ref: string | undefined): Promise<ReplyResult> => {
    const send = (contentAttributes?: Record<string, unknown>) =>
      client.postMessage(to, { content, private: isPrivate, contentAttributes });
    if (ref === undefined) return { posted: true, message: await send() };
    const outcome = await ledger.postOnce(ref, () => send({ [REPLY_MARK]: ref }));
    return outcome.posted ? outcome : { posted: false, reason: 'already-posted' };
  };

  const typing = async (on: boolean) => {
    if (!deps.typingAllowed.value) return;
    typingTouched = true;
    try {
      await client.setTyping(to, on);
    } catch (err) {
      if (isChatwootApiError(err) && err.code === 'CHATWOOT_NOT_FOR_BOTS') {
        deps.typingAllowed.value = false;
        log.warn?.(
          { err: describeError(err) },
          'typing is off for this bot: this Chatwoot does not let bots set it',
        );
        return;
      }
      if (on) throw err;
      log.error?.({ err: describeError(err) }, 'could not turn typing off: the indicator may stay on');
    }
  };

  const conversation: ChatwootConversation = {
    accountId: to.accountId,
    conversationId: to.conversationId,
    async reply(content, options) {
      const isPrivate = options?.private === true;
      if (!isPrivate && deps.stopAfterHandoff && (handedOffHere || (await ledger.handedOff(where)))) {
        log.info?.(
          { conversation: to.conversationId },
          'reply skipped: the conversation was handed to a human',
        );
        return { posted: false, reason: 'handed-off' };
      }
      replies++;
      const ref = options?.ref ?? (eventRef === undefined ? undefined : `${eventRef}#${replies}`);
      return post(content, isPrivate, ref);
    },
    typing,
    async handoff(reason) {
      if (reason !== undefined && reason !== '') {
        await post(reason, true, eventRef === undefined ? undefined : `${eventRef}#handoff`);
      }
      await ledger.markHandoff(where);
      handedOffHere = true;
      if (typingTouched) await typing(false);
      await client.setStatus(to, 'open');
    },
    setLabels: (labels) => client.setLabels(to, labels),
    setCustomAttributes: (attributes) => client.setCustomAttributes(to, attributes),
  };
  return {
    conversation,
    end: async () => {
      if (typingTouched || rerun) await typing(false);
    },
    typingMayBeOn: () => typingTouched,
  };
}
