import type { IncomingMessage, ServerResponse } from 'node:http';
import { createChatwootHandler, type ChatwootWebhookOptions } from '../pipeline/create-chatwoot-handler.js';
import { createStripeHandler, type StripeWebhookOptions } from '../pipeline/create-stripe-handler.js';
import type { WebhookHandler } from '../pipeline/types.js';
import { closeAfterAnswer, keptBody, readNodeBody, writeNodeResponse } from '../body/node-body.js';
import { withStats, type WithStats } from './with-stats.js';

/**
 * An Express 4 / 5 request handler (typed structurally, so hookguard never loads Express).
 */
export type ExpressWebhookHandler = (
  req: IncomingMessage & { body?: unknown; rawBody?: unknown },
  res: ServerResponse,
  next: (err?: unknown) => void,
) => void;

const FIX =
  'Mount the webhook route before app.use(express.json()), or use express.raw({ type: "application/json" }) on it, ' +
  'or keep the bytes with express.json({ verify: (req, _res, buf) => { req.rawBody = buf; } }).';

function middleware(handle: WebhookHandler): ExpressWebhookHandler {
  return (req, res, next) => {
    const body = keptBody(req.rawBody, req.body);
    handle({
      method: req.method ?? '',
      headers: req.headers,
      body: body ?? ((maxBytes, timeoutMs) => readNodeBody(req, maxBytes, timeoutMs, FIX)),
    }).then((answer) => {
      closeAfterAnswer(answer, res, req.socket);
      writeNodeResponse(res, answer);
    }, next);
  };
}

/**
 * Express middleware for Chatwoot webhooks: reads the raw body itself (or what `express.raw` / a `verify`
 * callback kept), verifies, dedupes and runs your handlers.
 *
 * @example
 * ```ts
 * import express from 'express';
 * import { chatwootWebhook } from 'hookguard/express';
 * const app = express();
 * app.post('/cw', chatwootWebhook({ secret: process.env.CW_HMAC_SECRET, on: { message_created: reply } }));
 * ```
 */
export function chatwootWebhook(options: ChatwootWebhookOptions): WithStats<ExpressWebhookHandler> {
  const handle = createChatwootHandler(options);
  return withStats(middleware(handle), handle);
}

/**
 * Express middleware for Stripe webhooks.
 *
 * @example
 * ```ts
 * import express from 'express';
 * import { stripeWebhook } from 'hookguard/express';
 * const app = express();
 * app.post('/webhook/payments', stripeWebhook({ secret: process.env.STRIPE_WEBHOOK_SECRET, on: { 'checkout.session.completed': fulfil } }));
 * ```
 */
export function stripeWebhook(options: StripeWebhookOptions): WithStats<ExpressWebhookHandler> {
  const handle = createStripeHandler(options);
  return withStats(middleware(handle), handle);
}
