import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { createChatwootHandler, type ChatwootWebhookOptions } from '../pipeline/create-chatwoot-handler.js';
import { createStripeHandler, type StripeWebhookOptions } from '../pipeline/create-stripe-handler.js';
import type { WebhookHandler } from '../pipeline/types.js';
import { closeAfterAnswer, keptBody, readNodeBody, UNPARSED_BODY } from '../body/node-body.js';
import { withStats, type WithStats } from './with-stats.js';

/**
 * The parts of a Koa 2 / 3 context the middleware uses (typed structurally, so hookguard never loads Koa).
 */
export interface KoaContextLike {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  req: IncomingMessage;
  res: ServerResponse;
  request: { rawBody?: unknown; body?: unknown };
  status: number;
  body: unknown;
  set(fields: Record<string, string>): void;
}

/**
 * A Koa middleware.
 */
export type KoaWebhookMiddleware = (ctx: KoaContextLike, next: () => Promise<unknown>) => Promise<void>;

/**
 * Where the middleware answers.
 */
export interface KoaRouteOptions {
  /** Answer only this path (other requests go to `next`). Leave it out when mounting under a router. */
  path?: string;
}

const FIX =
  'Mount hookguard before the body parser, or use @koa/bodyparser (it keeps ctx.request.rawBody) or koa-body with includeUnparsed: true.';

function middleware(handle: WebhookHandler, path: string | undefined): KoaWebhookMiddleware {
  return async (ctx, next) => {
    if (path !== undefined && ctx.path !== path) {
      await next();
      return;
    }
    const parsed = ctx.request.body;
    const unparsed =
      typeof parsed === 'object' && parsed !== null
        ? (parsed as Record<symbol, unknown>)[UNPARSED_BODY]
        : undefined;
    const body = keptBody(ctx.request.rawBody, unparsed);
    const answer = await handle({
      method: ctx.method,
      headers: ctx.headers,
      body: body ?? ((maxBytes, timeoutMs) => readNodeBody(ctx.req, maxBytes, timeoutMs, FIX)),
    });
    closeAfterAnswer(answer, ctx.res, ctx.req.socket);
    ctx.status = answer.status;
    ctx.set(answer.headers); // before the body, so Koa keeps our content-type
    ctx.body = answer.body;
  };
}

/**
 * Koa middleware for Chatwoot webhooks. With `path` it answers only that path; without it, mount it under
 * a router (`router.post('/cw', chatwootWebhook({ ... }))`).
 *
 * @example
 * ```ts
 * import Koa from 'koa';
 * import { chatwootWebhook } from 'hookguard/koa';
 * const app = new Koa();
 * app.use(chatwootWebhook({ path: '/cw', secret: process.env.CW_HMAC_SECRET, onEvent }));
 * ```
 */
export function chatwootWebhook(
  options: ChatwootWebhookOptions & KoaRouteOptions,
): WithStats<KoaWebhookMiddleware> {
  const handle = createChatwootHandler(options);
  return withStats(middleware(handle, options.path), handle);
}

/**
 * Koa middleware for Stripe webhooks.
 *
 * @example
 * ```ts
 * import Koa from 'koa';
 * import { stripeWebhook } from 'hookguard/koa';
 * const app = new Koa();
 * app.use(stripeWebhook({ path: '/webhook/payments', secret: process.env.STRIPE_WEBHOOK_SECRET, onEvent }));
 * ```
 */
export function stripeWebhook(
  options: StripeWebhookOptions & KoaRouteOptions,
): WithStats<KoaWebhookMiddleware> {
  const handle = createStripeHandler(options);
  return withStats(middleware(handle, options.path), handle);
}
