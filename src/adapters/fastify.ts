import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { createChatwootHandler, type ChatwootWebhookOptions } from '../pipeline/create-chatwoot-handler.js';
import { createStripeHandler, type StripeWebhookOptions } from '../pipeline/create-stripe-handler.js';
import type { WebhookHandler } from '../pipeline/types.js';
import { bodyTooLarge, bodyUnavailable, clientBodyFault, readTimedOut } from '../errors/body-errors.js';
import { closeAfterAnswer } from '../body/node-body.js';
import { resolveBodyLimits, type BodyLimits } from '../pipeline/defaults.js';
import { withStats, type WithStats } from './with-stats.js';

/**
 * Where to mount the route.
 */
export interface FastifyRouteOptions {
  /** The URL path of the webhook route, e.g. `/cw`. */
  path: string;
}

function plugin(handle: WebhookHandler, path: string, limits: BodyLimits): FastifyPluginAsync {
  const { maxBodyBytes: limit, readTimeoutMs } = limits;
  const timedOut = new WeakSet<object>();
  return async function hookguardWebhook(app) {
    // Registered inside this plugin's own encapsulated scope: the app's other routes keep their parsers.
    // Fastify's own buffer reader enforces the limit while streaming.
    app.removeAllContentTypeParsers();
    app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: limit }, (_request, body, done) =>
      done(null, body),
    );
    // A sender that trickles its body (slowloris) is cut off: Fastify's reader has no time limit of its own.
    // A callback hook, not an async one: it runs for every request, and an async hook costs a promise each.
    app.addHook('onRequest', (request, _reply, done) => {
      const raw = request.raw;
      if (raw.complete) return done();
      const timer = setTimeout(() => {
        timedOut.add(raw);
        // Logged and counted through the pipeline; the connection is then dropped (Fastify's reader
        // cannot be made to answer mid-body).
        void handle({
          method: request.method,
          headers: request.headers,
          body: () => Promise.reject(readTimedOut(readTimeoutMs)),
        }).finally(() => raw.destroy());
      }, readTimeoutMs);
      const stop = () => clearTimeout(timer);
      raw.once('end', stop).once('close', stop);
      done();
    });
    // Fastify refuses a body before our route runs (too large, aborted): answer through the pipeline so
    // the refusal has our codes, JSON, log line and outcome.
    app.setErrorHandler(async (error, request, reply) => {
      if (timedOut.has(request.raw)) return reply; // already answered by the read timeout
      const status = (error as { statusCode?: number }).statusCode;
      // Fastify's own refusals of the body: too large, aborted mid-body, a Content-Type it cannot parse.
      // Those are the client's faults; anything else is ours.
      const failure =
        status === 413
          ? bodyTooLarge(limit)
          : status !== undefined && status >= 400 && status < 500
            ? clientBodyFault(`Fastify refused the request body (${fastifyCode(error)}, status ${status}).`)
            : bodyUnavailable('The request body could not be read.', error);
      const answer = await handle({
        method: request.method,
        headers: request.headers,
        body: () => Promise.reject(failure),
      });
      closeAfterAnswer(answer, reply.raw, request.raw.socket);
      return reply.code(answer.status).headers(answer.headers).send(answer.body);
    });
    app.all(path, async (request, reply) => {
      const body = request.body;
      const answer = await handle({
        method: request.method,
        headers: request.headers,
        // Fastify skips parsing when a request has no body.
        body: Buffer.isBuffer(body) ? body : Buffer.alloc(0),
        req: request,
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
export function chatwootWebhook<R extends FastifyRequest = FastifyRequest>(
  options: ChatwootWebhookOptions<R> & FastifyRouteOptions,
): WithStats<FastifyPluginAsync> {
  // Passed to app.register itself, Fastify calls this with (app, opts, done): report through done, as a
  // thrown error would escape Fastify's loader as an uncaught exception.
  // eslint-disable-next-line prefer-rest-params
  if (routeMisuse(options, 'chatwootWebhook', arguments[2]) === 'reported') {
    return undefined as unknown as WithStats<FastifyPluginAsync>; // Fastify ignores it: done has the error
  }
  const handle = createChatwootHandler(options);
  return withStats(plugin(handle, options.path, resolveBodyLimits(options, 'chatwoot')), handle);
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
export function stripeWebhook<R extends FastifyRequest = FastifyRequest>(
  options: StripeWebhookOptions<R> & FastifyRouteOptions,
): WithStats<FastifyPluginAsync> {
  // Passed to app.register itself, Fastify calls this with (app, opts, done): report through done, as a
  // thrown error would escape Fastify's loader as an uncaught exception.
  // eslint-disable-next-line prefer-rest-params
  if (routeMisuse(options, 'stripeWebhook', arguments[2]) === 'reported') {
    return undefined as unknown as WithStats<FastifyPluginAsync>; // Fastify ignores it: done has the error
  }
  const handle = createStripeHandler(options);
  return withStats(plugin(handle, options.path, resolveBodyLimits(options, 'stripe')), handle);
}

/**
 * Catches the two ways JavaScript callers get the plugin wrong, at registration, with the right call:
 * passing the factory itself to `app.register` (Fastify then calls it with the app; the error goes to
 * Fastify's `done`), and a missing or relative `path` (Fastify's router would fail later with its
 * internals). Returns `'reported'` when the error went to `done`, undefined when the options are right.
 */
function routeMisuse(options: unknown, factory: string, done: unknown): 'reported' | undefined {
  const right = `app.register(${factory}({ path: '/webhooks', secret, onEvent }))`;
  const given = options as { register?: unknown; addHook?: unknown; path?: unknown } | undefined;
  if (typeof given?.register === 'function' && typeof given.addHook === 'function') {
    const error = new TypeError(
      `${factory} is a factory, not the plugin: Fastify passed it the app. Call it with your options: ${right}.`,
    );
    if (typeof done !== 'function') throw error;
    (done as (err: Error) => void)(error);
    return 'reported';
  }
  const path = given?.path;
  if (typeof path !== 'string' || !path.startsWith('/')) {
    throw new TypeError(
      `${factory} needs a path starting with "/" (got ${path === undefined ? 'none' : JSON.stringify(path).slice(0, 60)}): ${right}.`,
    );
  }
  return undefined;
}

/** Fastify's error code (`FST_ERR_…`), never its message: messages can quote the request's headers. */
function fastifyCode(error: unknown): string {
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' && /^[A-Z0-9_]{1,60}$/.test(code) ? code : 'no code';
}
