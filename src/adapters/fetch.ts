import { WebhookError } from '../errors/webhook-error.js';
import { bodyTooLarge, readTimedOut } from '../pipeline/create-pipeline.js';
import { createChatwootHandler, type ChatwootWebhookOptions } from '../pipeline/create-chatwoot-handler.js';
import { createStripeHandler, type StripeWebhookOptions } from '../pipeline/create-stripe-handler.js';
import type { WebhookRequest, WebhookResponse } from '../pipeline/types.js';
import { withStats, type WithStats } from './with-stats.js';

/**
 * A Fetch-style route: Next.js route handlers, Hono (`c.req.raw`), Bun, Deno, Cloudflare-style workers.
 *
 * @example
 * ```ts
 * import type { FetchWebhookHandler } from 'hookguard/fetch';
 * let POST: FetchWebhookHandler;
 * ```
 */
export type FetchWebhookHandler = (request: Request) => Promise<Response>;

/** Reads a Fetch body with the limit enforced while reading. */
async function readWebBody(request: Request, maxBytes: number, timeoutMs: number): Promise<Uint8Array> {
  if (request.bodyUsed) {
    throw new WebhookError(
      'RAW_BODY_UNAVAILABLE',
      'The request body was already read (request.json() or request.text() ran first). Pass the untouched Request.',
    );
  }
  const declared = Number(request.headers.get('content-length'));
  if (Number.isFinite(declared) && declared > maxBytes) throw bodyTooLarge(maxBytes);
  if (request.body === null) return new Uint8Array(0);
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  // A sender that trickles bytes (slowloris) is cut off instead of holding the connection and memory.
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(readTimedOut(timeoutMs)), timeoutMs);
  });
  try {
    for (;;) {
      const { done, value } = await Promise.race([reader.read(), deadline]);
      if (done) break;
      size += value.byteLength;
      if (size > maxBytes) throw bodyTooLarge(maxBytes);
      chunks.push(value);
    }
  } catch (err) {
    await reader.cancel().catch(() => undefined);
    throw err;
  } finally {
    clearTimeout(timer);
  }
  return Buffer.concat(chunks, size);
}

function route(handle: (req: WebhookRequest) => Promise<WebhookResponse>): FetchWebhookHandler {
  return async (request) => {
    const answer = await handle({
      method: request.method,
      headers: request.headers,
      body: (maxBytes, timeoutMs) => readWebBody(request, maxBytes, timeoutMs),
    });
    return new Response(answer.body, { status: answer.status, headers: answer.headers });
  };
}

/**
 * A `(Request) => Promise<Response>` for Chatwoot webhooks.
 *
 * @example
 * ```ts
 * // app/api/chatwoot/route.ts (Next.js)
 * import { chatwootWebhook } from 'hookguard/fetch';
 * export const POST = chatwootWebhook({ secret: process.env.CW_HMAC_SECRET, onEvent });
 * ```
 */
export function chatwootWebhook(options: ChatwootWebhookOptions): WithStats<FetchWebhookHandler> {
  const handle = createChatwootHandler(options);
  return withStats(route(handle), handle);
}

/**
 * A `(Request) => Promise<Response>` for Stripe webhooks.
 *
 * @example
 * ```ts
 * // app/api/stripe/route.ts (Next.js)
 * import { stripeWebhook } from 'hookguard/fetch';
 * export const POST = stripeWebhook({ secret: process.env.STRIPE_WEBHOOK_SECRET, on: { 'invoice.paid': onPaid } });
 * ```
 */
export function stripeWebhook(options: StripeWebhookOptions): WithStats<FetchWebhookHandler> {
  const handle = createStripeHandler(options);
  return withStats(route(handle), handle);
}
