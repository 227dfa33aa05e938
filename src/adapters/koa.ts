import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { createChatwootHandler, type ChatwootWebhookOptions } from '../pipeline/create-chatwoot-handler.js';
import { createStripeHandler, type StripeWebhookOptions } from '../pipeline/create-stripe-handler.js';
import type { WebhookHandler } from '../pipeline/types.js';
import { closeAfterAnswer, keptBody, readNodeBody, UNPARSED_BODY } from '../body/node-body.js';
import { withStats, type WithStats } from './with-stats.js';

/**
 * The parts of a Koa 2 / 3 context the middleware uses (typed structurally, so hookguard never loads Koa).
 * Handlers get the whole context as `ctx.req`; for Koa's own type, name it:
 * `chatwootWebhook<Koa.Context>({ ... })`.
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
  /** Route parameters, when a router (`@koa/router`) set them: `ctx.params.account`. */
  params?: Record<string, string>;
  /** What earlier middleware left for later ones (a tenant, a user). */
  state?: Record<string, unknown>;
}

/**
 * A Koa middleware.
 */
export type KoaWebhookMiddleware<R extends KoaContextLike = KoaContextLike> = (
  ctx: R,
  next: () => Promise<unknown>,
) => Promise<void>;

/**
 * Where the middleware answers.
 */
export interface KoaRouteOptions {
  /** Answer only this path (other requests go to `next`). Leave it out when mounting under a router. */
  path?: string;
}

const FIX =
  'Mount hookguard before the body parser, or use @koa/bodyparser (it keeps ctx.request.rawBody) or koa-body with includeUnparsed: true.';

function middleware<R extends KoaContextLike>(
  handle: WebhookHandler,
  path: string | undefined,
): KoaWebhookMiddleware<R> {
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
      req: ctx,
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
export function chatwootWebhook<R extends KoaContextLike = KoaContextLike>(
  options: ChatwootWebhookOptions<R> & KoaRouteOptions,
): WithStats<KoaWebhookMiddleware<R>> {
  const handle = createChatwootHandler(options);
  return withStats(middleware<R>(handle, options.path), handle);
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
export function stripeWebhook<R extends KoaContextLike = KoaContextLike>(
  options: StripeWebhookOptions<R> & KoaRouteOptions,
): WithStats<KoaWebhookMiddleware<R>> {
  const handle = createStripeHandler(options);
  return withStats(middleware<R>(handle, options.path), handle);
}
