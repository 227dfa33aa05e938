import { randomUUID } from 'node:crypto';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { railsJson, signChatwootPayload, signStripePayload } from './sign.js';

// Senders that deliver the way Chatwoot and Stripe do, retry rules included, so an endpoint can be tested
// against what the provider will do with each of its answers, not only against a single request.

/** One HTTP attempt of a simulated delivery. */
export interface DeliveryAttempt {
  /** The HTTP status, or undefined when no answer came (timeout, refused connection). */
  status: number | undefined;
  /** Why no answer came, when none did. */
  error?: string;
  /** The answer's JSON body, when it had one. */
  body?: unknown;
}

/** How a simulated delivery ended. */
export interface SimulatedDelivery {
  /** `X-Chatwoot-Delivery` (the same on every attempt), or the Stripe event id. */
  id: string;
  /** A 2xx ended it. */
  delivered: boolean;
  attempts: DeliveryAttempt[];
  /**
   * What the provider does after a failed delivery. Chatwoot: `'handed-off'` (an agent-bot conversation is
   * moved to `open`: the bot is switched off for it and a human gets it), `'message-failed'` (an API-inbox
   * message is marked failed), `'dropped'` (nothing visible). Stripe: `'dropped'` after its last retry.
   * Undefined when delivered.
   */
  failure: 'handed-off' | 'message-failed' | 'dropped' | undefined;
}

/** Which kind of Chatwoot webhook is sending: they retry differently. */
export type ChatwootWebhookKind = 'agent-bot' | 'api-inbox' | 'account';

/** Options for {@link createChatwootSender}. */
export interface ChatwootSenderOptions {
  /** The endpoint to deliver to. */
  url: string;
  /** The webhook's secret (agent bot, API inbox or account webhook). */
  secret: string;
  /** Default `'agent-bot'`, the only kind Chatwoot retries today. */
  kind?: ChatwootWebhookKind;
  /**
   * Chatwoot's `WEBHOOK_TIMEOUT`; default 5000 ms. As in Chatwoot's sender it bounds the connect and each
   * read, not the whole answer: headers at 3 s and the rest of the body at 6 s is delivered; 5 s of silence
   * is a timeout. A timeout is a failure, never retried.
   */
  timeoutMs?: number;
  /** Wait between agent-bot attempts; default 3000 ms, as Chatwoot waits. Tests compress it. */
  retryDelayMs?: number;
  /** Up to this share of `retryDelayMs` is added to each wait, at random (Rails' `retry_jitter`); default 0.15. */
  retryJitter?: number;
  /**
   * The account's `keep_pending_on_bot_failure`: a failed delivery then leaves a pending conversation with
   * the bot. Default false: a pending conversation is handed to a human.
   */
  keepPendingOnBotFailure?: boolean;
}

const CHATWOOT_RETRYABLE = new Set([429, 500]);
const CHATWOOT_ATTEMPTS = 3;

/**
 * Delivers like Chatwoot (`lib/webhooks/trigger.rb`, `app/jobs/agent_bots/webhook_job.rb`): the body is
 * serialised as Rails' `to_json` does (`<`, `>`, `&`, U+2028 and U+2029 escaped); every attempt is freshly
 * timestamped and signed with the same body and the same `X-Chatwoot-Delivery`; an agent-bot delivery is
 * retried (3 attempts, 3 s apart plus up to 15 % jitter) on 429 and 500 only; every other answer, a
 * timeout (per read) and a refused connection end in Chatwoot's failure handling, reported as `failure`:
 * a hand-off only for a message in a `pending` conversation. Account and API-inbox webhooks are delivered
 * once.
 *
 * @example
 * ```ts
 * import { chatwootEvent, createChatwootSender } from 'hookguard/testing';
 * const chatwoot = createChatwootSender({ url: 'http://127.0.0.1:3000/cw', secret: 'test-secret', retryDelayMs: 10 });
 * const delivery = await chatwoot.deliver(chatwootEvent('message_created'));
 * if (delivery.failure === 'handed-off') throw new Error('the conversation would go to a human');
 * ```
 */
export function createChatwootSender(options: ChatwootSenderOptions): {
  deliver(payload: object | string, delivery?: { deliveryId?: string }): Promise<SimulatedDelivery>;
} {
  const kind = options.kind ?? 'agent-bot';
  const timeoutMs = options.timeoutMs ?? 5000;
  const retryDelayMs = options.retryDelayMs ?? 3000;
  const jitter = options.retryJitter ?? 0.15;
  const keepPending = options.keepPendingOnBotFailure === true;
  return {
    async deliver(payload, delivery = {}) {
      const id = delivery.deliveryId ?? randomUUID();
      const body = typeof payload === 'string' ? payload : railsJson(payload);
      const attempts: DeliveryAttempt[] = [];
      const maxAttempts = kind === 'agent-bot' ? CHATWOOT_ATTEMPTS : 1;
      for (;;) {
        const signed = signChatwootPayload(body, options.secret, { deliveryId: id });
        const attempt = await postReadTimed(options.url, signed.body, signed.headers, timeoutMs);
        attempts.push(attempt);
        if (attempt.status !== undefined && attempt.status >= 200 && attempt.status < 300) {
          return { id, delivered: true, attempts, failure: undefined };
        }
        const retryable = attempt.status !== undefined && CHATWOOT_RETRYABLE.has(attempt.status);
        if (!retryable || attempts.length >= maxAttempts) {
          return { id, delivered: false, attempts, failure: chatwootFailure(kind, body, keepPending) };
        }
        await sleep(retryDelayMs * (1 + Math.random() * jitter));
      }
    },
  };
}

/**
 * What Chatwoot's `handle_failure` does visibly: only message events have a conversation to act on; an
 * agent bot's `pending` conversation is moved to `open` (unless the account keeps it pending), an API
 * inbox's message is marked failed.
 */
function chatwootFailure(
  kind: ChatwootWebhookKind,
  body: string,
  keepPending: boolean,
): SimulatedDelivery['failure'] {
  let parsed: { event?: unknown; conversation?: { status?: unknown } } = {};
  try {
    parsed = JSON.parse(body) as typeof parsed;
  } catch {
    // Not JSON: nothing Chatwoot would act on.
  }
  if (parsed.event !== 'message_created' && parsed.event !== 'message_updated') return 'dropped';
  if (kind === 'agent-bot') {
    return parsed.conversation?.status === 'pending' && !keepPending ? 'handed-off' : 'dropped';
  }
  return kind === 'api-inbox' ? 'message-failed' : 'dropped';
}

/**
 * A POST whose `timeoutMs` bounds the connect and every wait for the next bytes (the socket's idle time),
 * not the whole exchange: Chatwoot's sender times out that way. Each attempt opens a connection of its own
 * and closes it after the answer, as Chatwoot's sender does (a fresh HTTP client per delivery), never a
 * kept-alive one: Node's default agent would reuse connections, which meets other races than Chatwoot's.
 */
function postReadTimed(
  url: string,
  body: string,
  headers: Record<string, string>,
  timeoutMs: number,
): Promise<DeliveryAttempt> {
  return new Promise((resolve) => {
    const request = url.startsWith('https:') ? httpsRequest : httpRequest;
    const req = request(url, { method: 'POST', headers, agent: false });
    req.setTimeout(timeoutMs, () => req.destroy(Object.assign(new Error('timeout'), { code: 'timeout' })));
    req.on('error', (err: Error & { code?: unknown }) =>
      resolve({ status: undefined, error: typeof err.code === 'string' ? err.code : err.name }),
    );
    req.on('response', (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', () => undefined); // reported through the request's error
      res.on('end', () =>
        resolve({ status: res.statusCode, body: jsonOrUndefined(Buffer.concat(chunks).toString()) }),
      );
    });
    req.end(body);
  });
}

function jsonOrUndefined(text: string): unknown {
  try {
    return text === '' ? undefined : (JSON.parse(text) as unknown);
  } catch {
    return undefined;
  }
}

/** Options for {@link createStripeSender}. */
export interface StripeSenderOptions {
  url: string;
  /** The endpoint's signing secret (`whsec_…`). */
  secret: string;
  /** Attempts in all; default 8 (live mode keeps trying for 3 days, sandboxes about 4 times). */
  attempts?: number;
  /** Wait before the first retry, doubled for each next one; default 1000 ms (Stripe's is hours, compressed). */
  firstRetryMs?: number;
  /** How long an answer may take; default 10 000 ms (Stripe publishes no figure; a timeout is a failure). */
  timeoutMs?: number;
}

/**
 * Delivers like Stripe: every attempt is freshly timestamped and signed; every answer that is not a 2xx
 * (3xx redirects included, which are not followed), a timeout and a refused connection are retried with
 * exponential backoff, time compressed, until `attempts` run out.
 *
 * @example
 * ```ts
 * import { createStripeSender, stripeEvent } from 'hookguard/testing';
 * const stripe = createStripeSender({ url: 'http://127.0.0.1:3000/stripe', secret: 'whsec_test', firstRetryMs: 10 });
 * const delivery = await stripe.deliver(stripeEvent('invoice.paid'));
 * ```
 */
export function createStripeSender(options: StripeSenderOptions): {
  deliver(event: { id: string } & object): Promise<SimulatedDelivery>;
} {
  const maxAttempts = Math.max(1, options.attempts ?? 8);
  const firstRetryMs = options.firstRetryMs ?? 1000;
  const timeoutMs = options.timeoutMs ?? 10_000;
  return {
    async deliver(event) {
      const body = JSON.stringify(event);
      const attempts: DeliveryAttempt[] = [];
      for (;;) {
        const signed = signStripePayload(body, options.secret);
        const attempt = await post(options.url, signed.body, signed.headers, timeoutMs);
        attempts.push(attempt);
        if (attempt.status !== undefined && attempt.status >= 200 && attempt.status < 300) {
          return { id: event.id, delivered: true, attempts, failure: undefined };
        }
        if (attempts.length >= maxAttempts) {
          return { id: event.id, delivered: false, attempts, failure: 'dropped' };
        }
        await sleep(firstRetryMs * 2 ** (attempts.length - 1));
      }
    },
  };
}

async function post(
  url: string,
  body: string,
  headers: Record<string, string>,
  timeoutMs: number,
): Promise<DeliveryAttempt> {
  try {
    const response = await fetch(url, {
      method: 'POST',
      body,
      headers,
      redirect: 'manual',
      signal: AbortSignal.timeout(timeoutMs),
    });
    return { status: response.status, body: jsonOrUndefined(await response.text()) };
  } catch (err) {
    const cause = (err as { cause?: { code?: unknown } }).cause?.code;
    const name = (err as { name?: unknown }).name;
    return {
      status: undefined,
      error: name === 'TimeoutError' ? 'timeout' : typeof cause === 'string' ? cause : String(name),
    };
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
