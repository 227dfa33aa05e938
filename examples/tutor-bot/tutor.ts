// The tutoring bot hookguard grew out of, rebuilt on it: students write in a Chatwoot inbox, an LLM answers
// (here a fake, slow one), a human tutor takes over when asked, and a Stripe payment is confirmed in the
// student's conversation. This module is what the web process (web.ts) and the workers (worker.ts) share:
// the inbox, the bot, and the Chatwoot and Stripe options. `createTutor()` builds them from explicit
// options; `tutorFromEnv()` reads REDIS_HOST, REDIS_PORT, HOOKGUARD_QUEUE, CW_HMAC_SECRET,
// STRIPE_WEBHOOK_SECRET, CHATWOOT_URL, CHATWOOT_BOT_TOKEN, CHATWOOT_ACCOUNT_ID and LLM_DELAY_MS.
import type {
  ChatwootConversationEvent,
  ChatwootWebhookOptions,
  Logger,
  StripeWebhookOptions,
  WebhookContext,
} from 'hookguard';
import { type BullMQInbox, createBullMQInbox } from 'hookguard/bullmq';
import { type ChatwootBot, chatwootBot } from 'hookguard/chatwoot';
import { createRedisDedupStore } from 'hookguard/redis';
import { Redis } from 'ioredis';

/** Options for {@link createTutor}; every one has a default, so `createTutor()` runs against local services. */
export interface TutorOptions {
  /** The Redis of the queue and of the bot's ledger. Default 127.0.0.1:6379. */
  redis?: { host: string; port: number };
  /** Web process and workers must name the same queue. Default `'tutor-bot'`. */
  queueName?: string;
  /** Where Chatwoot runs. Default `http://localhost:3000` (a self-hosted Chatwoot's own default). */
  chatwootUrl?: string;
  /** The agent bot's access token. */
  chatwootToken?: string;
  /** The agent bot's webhook secret (the web process verifies with it). */
  chatwootSecret?: string;
  /** The Stripe endpoint's signing secret, `whsec_…`. */
  stripeSecret?: string;
  /** For conversation events that carry no account (older Chatwoot versions). */
  accountId?: number;
  /** How long the fake LLM thinks. Default 1500 ms. */
  llmDelayMs?: number;
  /** hookguard's logger for the web side, the inbox and the workers. Default: warnings and errors to the console. */
  logger?: Logger | false;
}

/** What both processes use. */
export interface Tutor {
  readonly inbox: BullMQInbox;
  readonly bot: ChatwootBot;
  /** Mount with `chatwootWebhook` (web process); pass to `inbox.worker` (workers). */
  readonly chatwoot: ChatwootWebhookOptions;
  /** Mount with `stripeWebhook` (web process); pass to `inbox.worker` (workers). */
  readonly stripe: StripeWebhookOptions;
  readonly logger: Logger | false | undefined;
  /** Closes the inbox (and its workers, letting running handlers finish), then the ledger's Redis client. */
  close(): Promise<void>;
}

// Development defaults, so `npm run demo:tutor` and a first try need no setup: set your own in production.
const DEFAULTS = {
  queueName: 'tutor-bot',
  chatwootUrl: 'http://localhost:3000',
  chatwootToken: 'bot-token',
  chatwootSecret: 'tutor-bot-chatwoot-secret',
  stripeSecret: 'whsec_tutor_bot_development',
  llmDelayMs: 1500,
};

/** "I want a human", "can a teacher help?": word by word, so "reagent" or "humanities" homework stays with the bot. */
const ASKS_FOR_HUMAN = /\b(?:human|agent|teacher)s?\b/i;

/** The options of {@link createTutor} from the environment (unset variables keep their defaults). */
export function tutorFromEnv(env: NodeJS.ProcessEnv = process.env): TutorOptions {
  const number = (name: string) => (env[name] === undefined ? undefined : Number(env[name]));
  const options: TutorOptions = {
    redis: { host: env.REDIS_HOST ?? '127.0.0.1', port: number('REDIS_PORT') ?? 6379 },
  };
  const set = <K extends keyof TutorOptions>(key: K, value: TutorOptions[K] | undefined) => {
    if (value !== undefined) options[key] = value;
  };
  set('queueName', env.HOOKGUARD_QUEUE);
  set('chatwootUrl', env.CHATWOOT_URL);
  set('chatwootToken', env.CHATWOOT_BOT_TOKEN);
  set('chatwootSecret', env.CW_HMAC_SECRET);
  set('stripeSecret', env.STRIPE_WEBHOOK_SECRET);
  set('accountId', number('CHATWOOT_ACCOUNT_ID'));
  set('llmDelayMs', number('LLM_DELAY_MS'));
  return options;
}

/** The canned answer of the fake LLM: a few topics, and a nudge for anything else. */
export function tutorAnswer(question: string): string {
  if (/prime/i.test(question)) {
    return 'A prime number has exactly two divisors, 1 and itself: 2, 3, 5, 7 and 11 are primes; 9 is not (3 × 3).';
  }
  if (/solve|equation|=/i.test(question)) {
    return 'Undo the steps in reverse order: for 2x + 3 = 11, subtract 3 (2x = 8), then divide by 2: x = 4.';
  }
  if (/photosynthesis/i.test(question)) {
    return 'Plants turn light, water and carbon dioxide into sugar and oxygen: that is photosynthesis.';
  }
  return `Good question! Let us work through "${question}" step by step: what do you already know about it?`;
}

/** The slow part of a tutoring bot: an LLM writing the answer, often longer than the 5 s Chatwoot waits. */
export async function fakeLlm(question: string, delayMs: number): Promise<string> {
  await new Promise((resolve) => setTimeout(resolve, delayMs));
  return tutorAnswer(question);
}

/**
 * The student's language: the browser's, which Chatwoot's web widget stores in the conversation's (or the
 * contact's) `additional_attributes.browser_language`; `'en'` when there is none. `'fr-FR'` → `'fr'`.
 */
export function languageOf(event: ChatwootConversationEvent): string {
  const candidates = [
    event.additional_attributes?.browser_language,
    event.meta?.sender?.additional_attributes?.browser_language,
  ];
  const found = candidates.find((value): value is string => typeof value === 'string' && value !== '');
  return found?.split(/[-_]/)[0]?.toLowerCase() ?? 'en';
}

/** The conversation a payment belongs to, from the metadata the bot put on it; undefined without one. */
function conversationOf(metadata: Record<string, string> | null | undefined) {
  const accountId = Number(metadata?.chatwoot_account_id);
  const conversationId = Number(metadata?.chatwoot_conversation_id);
  const valid = (n: number) => Number.isSafeInteger(n) && n > 0;
  return valid(accountId) && valid(conversationId) ? { accountId, conversationId } : undefined;
}

/** `2000, 'usd'` → `$20.00`, in the currency's own minor unit (`500, 'jpy'` → `¥500`). */
function formatAmount(amount: number | null, currency: string | null): string {
  if (amount === null || currency === null) return 'your payment';
  const format = new Intl.NumberFormat('en', { style: 'currency', currency: currency.toUpperCase() });
  return format.format(amount / 10 ** (format.resolvedOptions().maximumFractionDigits ?? 2));
}

interface Payment {
  /** The payment intent, or the checkout session when it has none: both events of one payment name the same. */
  id: string;
  metadata: Record<string, string> | null;
  amount: number | null;
  currency: string | null;
}

/**
 * Posts "payment received" into the student's conversation and labels it `paid`. The reply is keyed by the
 * payment, not the event: a redelivery, a retried run, or the `payment_intent.succeeded` that follows a
 * `checkout.session.completed` for the same payment finds it posted and does not post it again.
 */
async function confirmPayment(bot: ChatwootBot, ctx: WebhookContext, payment: Payment): Promise<void> {
  const to = conversationOf(payment.metadata);
  if (to === undefined) {
    ctx.log.warn(
      { payment: payment.id },
      'payment without chatwoot_account_id / chatwoot_conversation_id metadata: no conversation to confirm it in',
    );
    return;
  }
  const conversation = bot.conversation(ctx, to);
  try {
    const text = `Payment received: ${formatAmount(payment.amount, payment.currency)}. Thank you! Your tutoring sessions are unlocked.`;
    const ref = `payment:${payment.id}`;
    const result = await conversation.reply(text, { ref });
    // A human tutor has the conversation: tell them instead, in a private note.
    if (!result.posted && result.reason === 'handed-off') {
      await conversation.reply(text, { private: true, ref: `${ref}:note` });
    }
    // Labels are replaced as a set: a paying student is no longer a "new-student" on trial.
    await conversation.setLabels(['tutoring', 'paid']);
  } finally {
    await conversation.end();
  }
}

/**
 * The tutor: an ordered BullMQ inbox (one conversation's messages answered one at a time, in order), a
 * Chatwoot agent bot whose ledger lives in Redis (shared by every worker), and the handlers.
 *
 * @example
 * ```ts
 * import { createTutor, tutorFromEnv } from './tutor.js';
 * const tutor = createTutor(tutorFromEnv());
 * ```
 */
export function createTutor(options: TutorOptions = {}): Tutor {
  const redisAt = options.redis ?? { host: '127.0.0.1', port: 6379 };
  const queueName = options.queueName ?? DEFAULTS.queueName;
  const llmDelayMs = options.llmDelayMs ?? DEFAULTS.llmDelayMs;
  const logger = options.logger;
  const logging = logger === undefined ? {} : { logger };
  const inbox = createBullMQInbox({
    connection: redisAt,
    queueName,
    // A conversation's messages run one at a time, in the order the web process accepted them: two quick
    // questions get their answers in order, and a hand-off is seen by the message that follows it.
    ordered: true,
    // A handler that throws (Chatwoot or the LLM down) runs again after 2, 4, 8 and 16 s, then is kept as
    // failed (`npx hookguard inbox failed`).
    attempts: 5,
    backoffMs: 2000,
    ...logging,
  });
  // The bot's ledger (replies posted, hand-offs seen) must be shared by every worker: one Redis client,
  // failing fast while Redis is away (the job is retried) rather than queueing commands. It connects on its
  // first command: the web process, which only queues, never opens it.
  const redis = new Redis({ ...redisAt, maxRetriesPerRequest: 1, lazyConnect: true });
  let redisDown = false;
  redis.on('error', (err: Error) => {
    const line = `the bot's Redis is unavailable: ${err.message}`;
    if (redisDown || logger === false) return;
    redisDown = true;
    if (logger === undefined) console.warn(line);
    else logger.warn({ queue: queueName }, line);
  });
  redis.on('ready', () => void (redisDown = false));
  const bot = chatwootBot({
    url: options.chatwootUrl ?? DEFAULTS.chatwootUrl,
    token: options.chatwootToken ?? DEFAULTS.chatwootToken,
    store: createRedisDedupStore({ client: redis, prefix: `hookguard:bot:${queueName}:` }),
    // "typing…" while the LLM thinks; always turned off when the handler ends, however it ends.
    typing: true,
    ...(options.accountId !== undefined && { accountId: options.accountId }),
  });

  const chatwoot = bot.options({
    secret: options.chatwootSecret ?? DEFAULTS.chatwootSecret,
    inbox,
    ...logging,
    on: {
      message_created: async (event, ctx) => {
        const text = event.content ?? '';
        if (ASKS_FOR_HUMAN.test(text)) return ctx.chatwoot.handoff('The student asked for a human tutor');
        if (text.trim() === '') return; // an attachment alone: nothing for the LLM
        await ctx.chatwoot.reply(await fakeLlm(text, llmDelayMs));
      },
      conversation_created: async (event, ctx) => {
        await ctx.chatwoot.setLabels(['tutoring', 'new-student']);
        await ctx.chatwoot.setCustomAttributes({ language: languageOf(event), segment: 'trial' });
      },
    },
  });

  // The bot created the payment link from the conversation (a Stripe Checkout Session) with
  // `metadata: { chatwoot_account_id, chatwoot_conversation_id }`, and the same in
  // `payment_intent_data.metadata`, which Stripe copies to the payment intent: that is how a payment finds
  // its conversation.
  const stripe: StripeWebhookOptions = {
    secret: options.stripeSecret ?? DEFAULTS.stripeSecret,
    inbox,
    ...logging,
    on: {
      'checkout.session.completed': (event, ctx) => {
        const session = event.data.object;
        const intent = session.payment_intent;
        return confirmPayment(bot, ctx, {
          id: (typeof intent === 'string' ? intent : intent?.id) ?? session.id,
          metadata: session.metadata,
          amount: session.amount_total,
          currency: session.currency,
        });
      },
      'payment_intent.succeeded': (event, ctx) => {
        const intent = event.data.object;
        return confirmPayment(bot, ctx, {
          id: intent.id,
          metadata: intent.metadata,
          amount: intent.amount_received,
          currency: intent.currency,
        });
      },
    },
  };

  return {
    inbox,
    bot,
    chatwoot,
    stripe,
    logger,
    async close() {
      await inbox.close();
      if (redis.status === 'wait')
        redis.disconnect(); // never connected
      else await redis.quit().catch(() => redis.disconnect());
    },
  };
}
