import type { DedupStore } from '../dedup/dedup-store.js';
import { chatwootConversationOf, chatwootOrderKey } from '../inbox/order-keys.js';
import {
  type ChatwootWebhookOptions,
  ignoreNonIncomingMessages,
} from '../pipeline/create-chatwoot-handler.js';
import type { WebhookContext } from '../pipeline/types.js';
import { createMemoryDedupStore } from '../stores/memory.js';
import type { ChatwootEvent, ChatwootEventName } from '../types/chatwoot.js';
import { field, idOf, positive } from '../util/values.js';
import {
  type ChatwootClient,
  type ChatwootClientOptions,
  type ConversationRef,
  createChatwootClient,
} from './client.js';
import { type BoundDeps, bindConversation, type ChatwootConversation, REPLY_MARK } from './conversation.js';
import { createLedger } from './ledger.js';

/** Options for {@link chatwootBot}: the API client's, and how the bot behaves. */
export interface ChatwootBotOptions extends Partial<ChatwootClientOptions> {
  /** A client made with `createChatwootClient` (instead of `url` and `token`). */
  client?: ChatwootClient;
  /** The account, for conversation events that carry none (many Chatwoot versions send no `account` there). */
  accountId?: number;
  /**
   * Where replies, their echoes and hand-offs are remembered. With an inbox, give a store every worker
   * shares (`createRedisDedupStore`, `createPostgresDedupStore`): the default memory store is one process's.
   */
  store?: DedupStore;
  /**
   * Turn typing on while a `message_created` handler runs, off when it ends (however it ends) and at the
   * latest after `timeoutMs` (default 60 s). Default false: `ctx.chatwoot.typing()` by hand.
   */
  typing?: boolean | { timeoutMs?: number };
  /**
   * `'ignore'` (default): once a conversation is with a human (status `open`, a user assignee, the bot's own
   * `handoff()`, a `conversation_opened`), its `message_created` events skip your handler and public
   * replies are not posted. `'handle'`: run it anyway (an API-inbox bot, whose conversations start `open`).
   */
  afterHandoff?: 'ignore' | 'handle';
  /**
   * How long the bot remembers a hand-off it saw (`handoff()`, `conversation_opened`), for the events that
   * were already queued with `pending` in their payload. Default 10 minutes; 0 trusts the payloads alone.
   * A conversation sent back to the bot within it stays silent until it runs out.
   */
  handoffMemoryMs?: number;
  /** How long a reply being posted holds its claim (a cut-off post's reply waits this, or its echo). Default 30 s. */
  replyLeaseMs?: number;
  /** How long a post whose answer was lost waits for Chatwoot's echo before the run fails. Default 5 s. */
  settleMs?: number;
  /** How long replies are remembered. Default 3 days (a job retried later than that could post again). */
  ttlMs?: number;
}

/** A handler's context in a bot: the usual one, with `chatwoot` bound to the event's conversation. */
export type ChatwootBotContext<R = unknown> = WebhookContext<R> & { chatwoot: ChatwootConversation };

/** `on` of a bot: one handler per event name, with `ctx.chatwoot`. */
export type ChatwootBotHandlers<R = unknown> = {
  [N in ChatwootEventName]?: (event: ChatwootEvent<N>, ctx: ChatwootBotContext<R>) => unknown;
};

/** The Chatwoot options a bot wraps: as usual, with the bot's handlers. */
export type ChatwootBotWebhookOptions<R = unknown> = Omit<ChatwootWebhookOptions<R>, 'on'> & {
  on?: ChatwootBotHandlers<R>;
};

/** A Chatwoot agent bot: the client, and what makes handlers answer through it safely. */
export interface ChatwootBot {
  readonly client: ChatwootClient;
  /**
   * The Chatwoot options for the web side and the workers, with `on` wrapped: each handler gets
   * `ctx.chatwoot`; `message_created` runs only for the contact's messages while the bot has the
   * conversation, with typing on if set; the bot's own replies coming back are recorded (that settles a
   * post whose answer was lost), and run unordered, as `conversation_opened` does.
   */
  options<R = unknown>(own: ChatwootBotWebhookOptions<R>): ChatwootWebhookOptions<R>;
  /**
   * A conversation named by something else (a Stripe payment's metadata), with the same guarantees:
   * replies keyed by `ctx.key`, the Stripe event. Call `end()` when done (turns typing off if used).
   */
  conversation(ctx: WebhookContext, to: ConversationRef): ChatwootConversation & { end(): Promise<void> };
}

type AnyHandler = (event: unknown, ctx: WebhookContext) => unknown;
const BURST = Symbol.for('hookguard.burst');

/**
 * A Chatwoot agent bot: replies that post once, typing that always ends, and a hand-off that stops it.
 *
 * @example
 * ```ts
 * import { chatwootBot } from 'hookguard/chatwoot';
 * const bot = chatwootBot({ url: 'https://app.chatwoot.com', token: process.env.CHATWOOT_BOT_TOKEN!, typing: true });
 * export const chatwoot = bot.options({
 *   secret: process.env.CW_HMAC_SECRET,
 *   on: { message_created: async (event, ctx) => { await ctx.chatwoot.reply(await answer(event.content ?? '')); } },
 * });
 * ```
 */
export function chatwootBot(options: ChatwootBotOptions): ChatwootBot {
  const deps = depsOf(options);
  const { client, ledger, stopAfterHandoff } = deps;
  const typing = options.typing === undefined || options.typing === false ? undefined : options.typing;
  const typingTimeoutMs = positive(typing === true ? undefined : typing?.timeoutMs, 60_000);
  const noteOwnStore = ownStoreWarning(options.store !== undefined);

  /** Runs `then` with ctx.chatwoot bound to `to`, and turns typing off after, however it ends. */
  async function withConversation(
    ctx: WebhookContext,
    to: ConversationRef | undefined,
    withTyping: boolean,
    then: (ctx: WebhookContext) => unknown,
  ): Promise<unknown> {
    if (to === undefined) return then({ ...ctx, chatwoot: unbound(options.accountId) } as WebhookContext);
    noteOwnStore(ctx);
    const bound = bindConversation(deps, to, ctx.key, ctx.log, (ctx.attempt ?? 1) > 1);
    const timer = withTyping ? setTimeout(() => void bound.end(), typingTimeoutMs) : undefined;
    try {
      if (withTyping) await bound.conversation.typing(true);
      return await then({ ...ctx, chatwoot: bound.conversation } as WebhookContext);
    } finally {
      clearTimeout(timer);
      await bound.end();
    }
  }

  /** message_created: the bot's echoes are recorded; a conversation with a human is left alone. */
  async function onMessage(event: unknown, ctx: WebhookContext, user: (ctx: WebhookContext) => unknown) {
    if (await recordEcho(event)) return;
    const to = conversationOf(event, options.accountId);
    if (stopAfterHandoff && (withHuman(event) || (to !== undefined && (await ledger.handedOff(to))))) {
      ctx.log.info?.({ conversation: to?.conversationId }, 'ignored: the conversation is with a human');
      // A run cut off earlier may have left typing on: the one thing this run still owes.
      if (to !== undefined && (ctx.attempt ?? 1) > 1)
        await bindConversation(deps, to, ctx.key, ctx.log, true).end();
      return;
    }
    return withConversation(ctx, to, typing !== undefined, user);
  }

  /** Records the bot's own reply coming back; false when the event is not one. */
  async function recordEcho(event: unknown): Promise<boolean> {
    const echo = ownEcho(event);
    if (echo !== undefined) await ledger.sawEcho(echo);
    return echo !== undefined;
  }

  const wrap = (name: string, user: AnyHandler | undefined): AnyHandler => {
    if (name === 'message_created') {
      // Without a handler of yours it is here for the echoes only.
      const single: AnyHandler = (event, ctx) =>
        user === undefined ? recordEcho(event) : onMessage(event, ctx, (c) => user(event, c));
      const burst = (user as { [BURST]?: { run: (events: unknown[], ctx: WebhookContext) => unknown } })?.[
        BURST
      ];
      if (burst === undefined) return single;
      const run = (events: unknown[], ctx: WebhookContext) =>
        onMessage(events[events.length - 1], ctx, (c) => burst.run(events, c));
      return Object.assign(single, { [BURST]: { ...burst, run } });
    }
    return async (event, ctx) => {
      const to = conversationOf(event, options.accountId);
      if (name === 'conversation_opened' && stopAfterHandoff && to !== undefined)
        await ledger.markHandoff(to);
      return user === undefined ? undefined : withConversation(ctx, to, false, (c) => user(event, c));
    };
  };

  return {
    client,
    options: (own) => wrapOptions(own, wrap, stopAfterHandoff),
    conversation(ctx, to) {
      const bound = bindConversation(deps, to, ctx.key, ctx.log, (ctx.attempt ?? 1) > 1);
      return Object.assign(bound.conversation, { end: bound.end });
    },
  };
}

/** The client, the ledger and the switches every bound conversation of a bot shares. */
function depsOf(options: ChatwootBotOptions): BoundDeps {
  return {
    client: options.client ?? createChatwootClient(options as ChatwootClientOptions),
    ledger: createLedger({
      store: options.store ?? createMemoryDedupStore(),
      replyLeaseMs: positive(options.replyLeaseMs, 30_000),
      settleMs: positive(options.settleMs, 5000),
      ttlMs: positive(options.ttlMs, 3 * 86_400_000),
      handoffMemoryMs: Math.max(0, options.handoffMemoryMs ?? 600_000),
    }),
    typingAllowed: { value: true },
    stopAfterHandoff: options.afterHandoff !== 'handle',
    liveStatus: { value: true },
  };
}

/** Warns once when a bot without a shared store runs in an inbox worker. */
function ownStoreWarning(shared: boolean): (ctx: WebhookContext) => void {
  let warned = shared;
  return (ctx) => {
    if (warned || ctx.attempt === undefined) return;
    warned = true;
    ctx.log.warn?.(
      {},
      'chatwootBot keeps its replies in this process only (no `store`): with an inbox, give it a store every worker shares, or a reply can post twice',
    );
  };
}

/** The Chatwoot options of a bot: its handlers wrapped, its echoes let through and left unordered. */
function wrapOptions<R>(
  own: ChatwootBotWebhookOptions<R>,
  wrap: (name: string, user: AnyHandler | undefined) => AnyHandler,
  stopAfterHandoff: boolean,
): ChatwootWebhookOptions<R> {
  const handlers = { ...(own.on ?? {}) } as Record<string, AnyHandler | undefined>;
  const names = new Set([...Object.keys(handlers), 'message_created']);
  if (stopAfterHandoff) names.add('conversation_opened');
  const on = Object.fromEntries([...names].map((name) => [name, wrap(name, handlers[name])]));
  const ownIgnore = own.ignore ?? ignoreNonIncomingMessages;
  const ownOrder = own.orderKey;
  return {
    ...own,
    on,
    // The bot's own replies come back as outgoing messages: they are recorded, not ignored.
    ignore: (event) => ownEcho(event) === undefined && ownIgnore(event),
    // Echoes and hand-offs are signals for runs in progress: they must not wait behind them.
    orderKey:
      ownOrder === false
        ? false
        : (event) =>
            ownEcho(event) !== undefined || event.event === 'conversation_opened'
              ? undefined
              : (ownOrder ?? chatwootOrderKey)(event),
  };
}

/** The ledger reference of the bot's own reply coming back as `message_created`, if it is one. */
function ownEcho(event: unknown): string | undefined {
  if (field(event, 'event') !== 'message_created' || field(event, 'message_type') !== 'outgoing')
    return undefined;
  const ref = field(field(event, 'content_attributes'), REPLY_MARK);
  return typeof ref === 'string' && ref !== '' ? ref : undefined;
}

/** Is the conversation of this message with a human: status `open`, or a user assigned? */
function withHuman(event: unknown): boolean {
  const conversation = field(event, 'conversation');
  const meta = field(conversation, 'meta');
  const assignee = field(meta, 'assignee');
  return (
    field(conversation, 'status') === 'open' ||
    field(meta, 'assignee_type') === 'User' ||
    (assignee !== null && assignee !== undefined && field(assignee, 'type') === 'user')
  );
}

/** The event's conversation: its account and display id (message events: `conversation.id`). */
function conversationOf(event: unknown, fallbackAccount: number | undefined): ConversationRef | undefined {
  const conversation = chatwootConversationOf(event);
  const conversationId = idOf(field(conversation, 'id'));
  const firstMessage = field(field(conversation, 'messages'), '0');
  const accountId =
    idOf(field(field(event, 'account'), 'id')) ?? idOf(field(firstMessage, 'account_id')) ?? fallbackAccount;
  if (conversationId === undefined || accountId === undefined) return undefined;
  return { accountId, conversationId };
}

/** `ctx.chatwoot` of an event that names no conversation (or no account): every call says why it cannot. */
function unbound(accountId: number | undefined): ChatwootConversation {
  const fail = async (): Promise<never> => {
    throw new TypeError(
      accountId === undefined
        ? 'ctx.chatwoot: this event names no conversation, or no account (set `accountId` in chatwootBot options).'
        : 'ctx.chatwoot: this event names no conversation.',
    );
  };
  return {
    accountId: accountId ?? 0,
    conversationId: 0,
    reply: fail,
    typing: fail,
    handoff: fail,
    setLabels: fail,
    setCustomAttributes: fail,
  };
}
