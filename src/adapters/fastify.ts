import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { createChatwootHandler, type ChatwootWebhookOptions } from '../pipeline/create-chatwoot-handler.js';
import { createStripeHandler, type StripeWebhookOptions } from '../pipeline/create-stripe-handler.js';
import type { WebhookHandler } from '../pipeline/types.js';
import type { Readable } from 'node:stream';
import { bodyTooLarge, bodyUnavailable, clientBodyFault, readTimedOut } from '../errors/body-errors.js';
import { isWebhookError, type WebhookError } from '../errors/webhook-error.js';
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
  return async function hookguardWebhook(app) {
    const deadlines = new ReadDeadlines(readTimeoutMs);
    // Registered inside this plugin's own encapsulated scope: the app's other routes keep their parsers.
    // Our own reader rather than Fastify's (`parseAs`), which bounds the size but not the time.
    app.removeAllContentTypeParsers();
    app.addContentTypeParser('*', (request, payload, done) =>
      readBody(payload, Number(request.headers['content-length']), limit, deadlines, done),
    );
    // A body refused before our route runs (too large, too slow, aborted, or by Fastify itself): answer
    // through the pipeline so the refusal has our codes, JSON, log line and outcome.
    app.setErrorHandler(async (error, request, reply) => {
      const answer = await handle({
        method: request.method,
        headers: request.headers,
        body: () => Promise.reject(bodyFailure(error, limit)),
      });
      closeAfterAnswer(answer, reply.raw, request.raw.socket);
      return reply.code(answer.status).headers(answer.headers).send(answer.body);
    });
    // Not an async handler: Fastify chains a promise of its own on the one an async handler returns, and
    // `return reply` (a thenable) takes one more hop to resolve it: two promises and two microtasks more.
    app.all(path, (request, reply) => {
      const body = request.body;
      handle({
        method: request.method,
        headers: request.headers,
        // Fastify skips parsing when a request has no body.
        body: Buffer.isBuffer(body) ? body : Buffer.alloc(0),
        req: request,
      }).then(
        (answer) => {
          // Nothing returned: the reply is a thenable, and returning it would make this promise wait on it.
          reply
            .code(answer.status)
            .headers(answer.headers)
            .header('content-type', JSON_UTF8)
            .send(answer.body);
        },
        (err: unknown) => void reply.send(err), // to the error handler above
      );
    });
  };
}

/**
 * Every answer is JSON. Given plain `application/json`, Fastify appends `; charset=utf-8` itself on every
 * reply (a new string, which Node then validates again); handed the full type, it sends it as it is.
 */
const JSON_UTF8 = 'application/json; charset=utf-8';

/** Why the body failed: our reader's own error, or one of Fastify's refusals translated. */
function bodyFailure(error: unknown, limit: number): WebhookError {
  if (isWebhookError(error)) return error;
  const status = (error as { statusCode?: number }).statusCode;
  // Fastify's own refusals of the request: too large, a Content-Type it cannot parse. Those are the
  // client's faults; anything else is ours.
  if (status === 413) return bodyTooLarge(limit);
  if (status !== undefined && status >= 400 && status < 500)
    return clientBodyFault(`Fastify refused the request body (${fastifyCode(error)}, status ${status}).`);
  return bodyUnavailable('The request body could not be read.', error);
}

/** What a read's listener is called with when its deadline passes. */
const TIMED_OUT = Symbol('timed out');

/** One body read in its route's list of pending reads (oldest first). */
interface PendingRead {
  /** The deadlines' tick count when the read started. */
  readonly tick: number;
  readonly expire: (reason: typeof TIMED_OUT) => void;
  prev: PendingRead | undefined;
  next: PendingRead | undefined;
}

type ParserDone = (error: Error | null, body?: Buffer) => void;

/**
 * Fastify's content-type parser for the webhook route: the raw bytes, refused as soon as they pass
 * `limit` and cut off when they have not all arrived by the read deadline (a slowloris sender; the
 * answer is then a 408 with `Connection: close`). Fastify's own reader bounds the size only, and bounding
 * the time around it took an onRequest hook with a timer and two socket listeners on every request.
 */
function readBody(
  payload: Readable,
  declared: number,
  limit: number,
  deadlines: ReadDeadlines,
  done: ParserDone,
): void {
  if (declared > limit) return done(bodyTooLarge(limit));
  const chunks: Buffer[] = [];
  let size = 0;
  // One listener for the end, the stream's failure and the deadline: the first of them settles the read.
  const settle = (reason?: unknown): void => {
    if (!deadlines.delete(read)) return;
    // A complete body keeps the listeners: the stream has ended and goes with the request, and removing
    // three listeners is a measurable share of a request's cost (the error listener also keeps a late
    // socket error from being unhandled).
    if (reason === undefined) return done(null, Buffer.concat(chunks, size));
    payload.removeListener('data', onData);
    done(
      reason === TIMED_OUT
        ? readTimedOut(deadlines.timeoutMs)
        : isWebhookError(reason)
          ? reason
          : clientBodyFault('The request stream failed before the body was complete.', reason),
    );
  };
  const onData = (chunk: Buffer | string): void => {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    size += bytes.byteLength;
    if (size > limit) return settle(bodyTooLarge(limit));
    chunks.push(bytes);
  };
  const read = deadlines.add(settle);
  payload.on('data', onData);
  payload.on('end', settle);
  payload.on('error', settle);
  payload.resume(); // in case a preParsing hook paused it: a 'data' listener does not undo that
}

/**
 * The read deadlines of one route, checked by one coarse interval (a twentieth of the timeout, 5 to
 * 500 ms) instead of a timer per request. Time is counted in the interval's ticks (no clock read per
 * request): a read that started during tick `n` is cut off when tick `n + ticks + 1` begins, so never
 * before `timeoutMs` and at most one tick after it (later when the event loop is busy). Pending reads are
 * a linked list in the order they started (adding and removing one is a few pointer writes, and a
 * finished read is garbage at once), so a sweep stops at the first still in time. The interval is unref'd
 * and stops when no read is pending.
 */
class ReadDeadlines {
  #oldest: PendingRead | undefined;
  #newest: PendingRead | undefined;
  readonly #tickMs: number;
  /** Whole ticks a read is given. */
  readonly #ticks: number;
  #tick = 0;
  #sweeper: ReturnType<typeof setInterval> | undefined;

  constructor(readonly timeoutMs: number) {
    this.#tickMs = Math.min(Math.max(timeoutMs / 20, 5), 500);
    this.#ticks = Math.ceil(timeoutMs / this.#tickMs);
  }

  add(expire: PendingRead['expire']): PendingRead {
    const read: PendingRead = { tick: this.#tick, expire, prev: this.#newest, next: undefined };
    if (this.#newest === undefined) this.#oldest = read;
    else this.#newest.next = read;
    this.#newest = read;
    if (this.#sweeper === undefined) {
      this.#sweeper = setInterval(() => this.#sweep(), this.#tickMs);
      this.#sweeper.unref();
    }
    return read;
  }

  /** Takes the read off the list; false when it was already taken (the read had settled). */
  delete(read: PendingRead): boolean {
    const { prev, next } = read;
    if (prev === undefined && this.#oldest !== read) return false;
    if (prev === undefined) this.#oldest = next;
    else prev.next = next;
    if (next === undefined) this.#newest = prev;
    else next.prev = prev;
    read.prev = read.next = undefined;
    return true;
  }

  #sweep(): void {
    const tick = ++this.#tick;
    let read = this.#oldest;
    while (read !== undefined && read.tick + this.#ticks < tick) {
      const next = read.next;
      read.expire(TIMED_OUT); // settles it, which deletes it
      read = next;
    }
    if (this.#oldest !== undefined) return;
    clearInterval(this.#sweeper);
    this.#sweeper = undefined;
  }
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
