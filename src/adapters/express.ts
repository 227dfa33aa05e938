import type { IncomingMessage, ServerResponse } from 'node:http';
import { createChatwootHandler, type ChatwootWebhookOptions } from '../pipeline/create-chatwoot-handler.js';
import { createStripeHandler, type StripeWebhookOptions } from '../pipeline/create-stripe-handler.js';
import type { WebhookHandler } from '../pipeline/types.js';
import { closeAfterAnswer, keptBody, readNodeBody, writeNodeResponse } from '../body/node-body.js';
import { withStats, type WithStats } from './with-stats.js';

/** What hookguard needs of any Express 4 / 5 request (typed structurally, so hookguard never loads Express). */
export type ExpressRequestBase = IncomingMessage & { body?: unknown; rawBody?: unknown };

/**
 * The default type of `ctx.req` in Express handlers: the request, with its named route parameters. For
 * Express's own type, name it: `chatwootWebhook<express.Request>({ ... })` (Express 5 types a parameter as
 * `string | string[]`, for wildcards).
 */
export type ExpressRequestLike = ExpressRequestBase & {
  /** Route parameters: `req.params.account` for `app.post('/cw/:account', ...)`. */
  params: Record<string, string>;
};

/**
 * An Express 4 / 5 request handler (typed structurally, so hookguard never loads Express).
 */
export type ExpressWebhookHandler<R extends ExpressRequestBase = ExpressRequestLike> = (
  req: R,
  res: ServerResponse,
  next: (err?: unknown) => void,
) => void;

const FIX =
  'Mount the webhook route before app.use(express.json()), or use express.raw({ type: "application/json" }) on it, ' +
  'or keep the bytes with express.json({ verify: (req, _res, buf) => { req.rawBody = buf; } }).';

function middleware<R extends ExpressRequestBase>(handle: WebhookHandler): ExpressWebhookHandler<R> {
  return (req, res, next) => {
    const body = keptBody(req.rawBody, req.body);
    handle({
      method: req.method ?? '',
      headers: req.headers,
      body: body ?? ((maxBytes, timeoutMs) => readNodeBody(req, maxBytes, timeoutMs, FIX)),
      req,
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
export function chatwootWebhook<R extends ExpressRequestBase = ExpressRequestLike>(
  options: ChatwootWebhookOptions<R>,
): WithStats<ExpressWebhookHandler<R>> {
  const handle = createChatwootHandler(options);
  return withStats(middleware<R>(handle), handle);
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
export function stripeWebhook<R extends ExpressRequestBase = ExpressRequestLike>(
  options: StripeWebhookOptions<R>,
): WithStats<ExpressWebhookHandler<R>> {
  const handle = createStripeHandler(options);
  return withStats(middleware<R>(handle), handle);
}
