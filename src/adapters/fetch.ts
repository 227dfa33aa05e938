import { readWebBody } from '../body/web-body.js';
import { createChatwootHandler, type ChatwootWebhookOptions } from '../pipeline/create-chatwoot-handler.js';
import { createStripeHandler, type StripeWebhookOptions } from '../pipeline/create-stripe-handler.js';
import type { WebhookHandler } from '../pipeline/types.js';
import { withStats, type WithStats } from './with-stats.js';

/**
 * A Fetch-style route: Next.js route handlers, Hono (`c.req.raw`), Bun, Deno, Cloudflare-style workers.
 */
export type FetchWebhookHandler = (request: Request) => Promise<Response>;

function route(handle: WebhookHandler): FetchWebhookHandler {
  return async (request) => {
    const answer = await handle({
      method: request.method,
      headers: request.headers,
      body: (maxBytes, timeoutMs) => readWebBody(request, maxBytes, timeoutMs),
      req: request,
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
export function chatwootWebhook(options: ChatwootWebhookOptions<Request>): WithStats<FetchWebhookHandler> {
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
export function stripeWebhook(options: StripeWebhookOptions<Request>): WithStats<FetchWebhookHandler> {
  const handle = createStripeHandler(options);
  return withStats(route(handle), handle);
}
