import type { FastifyPluginAsync } from 'fastify';
import type { Readable } from 'node:stream';
import { createChatwootHandler, type ChatwootWebhookOptions } from '../pipeline/create-chatwoot-handler.js';
import { createStripeHandler, type StripeWebhookOptions } from '../pipeline/create-stripe-handler.js';
import type { WebhookRequest, WebhookResponse } from '../pipeline/types.js';
import { readNodeBody } from './node-body.js';

/**
 * Where to mount the route.
 *
 * @example
 * ```ts
 * import type { FastifyRouteOptions } from 'hookguard/fastify';
 * const route: FastifyRouteOptions = { path: '/cw' };
 * ```
 */
export interface FastifyRouteOptions {
  /** The URL path of the webhook route, e.g. `/cw`. */
  path: string;
}

const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;
// The body reaches the route as either the bytes or the reason they could not be read, so the refusal is
// answered by the pipeline (our JSON and codes) rather than by Fastify's error handler.
const READ_FAILED = Symbol('hookguard.readFailed');
type ParsedBody = Buffer | { [READ_FAILED]: unknown };

function plugin(
  handle: (req: WebhookRequest) => Promise<WebhookResponse>,
  path: string,
  maxBodyBytes: number | undefined,
): FastifyPluginAsync {
  const limit = maxBodyBytes !== undefined && maxBodyBytes > 0 ? maxBodyBytes : DEFAULT_MAX_BODY_BYTES;
  return async function hookguardWebhook(app) {
    // Registered inside this plugin's own encapsulated scope: the app's other routes keep their parsers.
    app.removeAllContentTypeParsers();
    app.addContentTypeParser('*', (_request, payload, done) => {
      readNodeBody(payload as Readable, limit, 'Another plugin read the body first.').then(
        (bytes) => done(null, bytes),
        (err: unknown) => done(null, { [READ_FAILED]: err }),
      );
    });
    app.all(path, async (request, reply) => {
      const parsed = request.body as ParsedBody | undefined;
      const answer = await handle({
        method: request.method,
        headers: request.headers,
        body:
          parsed === undefined
            ? Buffer.alloc(0) // Fastify skips parsing when a request has no body
            : Buffer.isBuffer(parsed)
              ? parsed
              : () => Promise.reject(parsed[READ_FAILED]),
      });
      return reply.code(answer.status).headers(answer.headers).send(answer.body);
    });
  };
}

/**
 * A Fastify 4 / 5 plugin that registers `POST options.path` for Chatwoot webhooks with its own raw-body
 * parser, encapsulated so the rest of the app keeps parsing JSON.
 *
 * @example
 * ```ts
 * import Fastify from 'fastify';
 * import { chatwootWebhook } from 'hookguard/fastify';
 * const app = Fastify();
 * await app.register(chatwootWebhook({ path: '/cw', secret: process.env.CW_HMAC_SECRET, onEvent }));
 * ```
 */
export function chatwootWebhook(options: ChatwootWebhookOptions & FastifyRouteOptions): FastifyPluginAsync {
  return plugin(createChatwootHandler(options), options.path, options.maxBodyBytes);
}

/**
 * A Fastify 4 / 5 plugin that registers `POST options.path` for Stripe webhooks.
 *
 * @example
 * ```ts
 * import Fastify from 'fastify';
 * import { stripeWebhook } from 'hookguard/fastify';
 * const app = Fastify();
 * await app.register(stripeWebhook({ path: '/webhook/payments', secret: process.env.STRIPE_WEBHOOK_SECRET, onEvent }));
 * ```
 */
export function stripeWebhook(options: StripeWebhookOptions & FastifyRouteOptions): FastifyPluginAsync {
  return plugin(createStripeHandler(options), options.path, options.maxBodyBytes);
}
