import type { WebhookErrorCode } from '../errors/webhook-error.js';
import type { DedupStore } from '../dedup/dedup-store.js';
import type { Inbox } from './enqueue-stage.js';
import type { WebhookTelemetry } from './telemetry.js';
import type { HeaderSource, RawBody } from '../types/common.js';

/**
 * Where log lines go: pino, console and most loggers fit (`logger.info(obj, msg)`). `debug` is optional.
 */
export interface Logger {
  debug?(obj: Record<string, unknown>, msg?: string): void;
  info(obj: Record<string, unknown>, msg?: string): void;
  warn(obj: Record<string, unknown>, msg?: string): void;
  error(obj: Record<string, unknown>, msg?: string): void;
}

/**
 * Reads the body, refusing it (with a `BODY_TOO_LARGE` {@link WebhookError}) as soon as it passes
 * `maxBytes`, or with `READ_TIMEOUT` when it has not all arrived within `timeoutMs`. Adapters pass one so the limit is enforced while reading, not after.
 */
export type BodyReader = (maxBytes: number, timeoutMs: number) => Promise<RawBody>;

/**
 * A request as the pipeline sees it. `body` is the raw bytes, or a {@link BodyReader} that the pipeline
 * calls only after the method check, with the body limit.
 */
export interface WebhookRequest {
  method: string;
  headers: HeaderSource;
  body: RawBody | BodyReader | undefined;
  /** Your framework's request object, handed to handlers as `ctx.req` (adapters set it). */
  req?: unknown;
}

/**
 * What to answer: a status, headers and a small JSON body. Answers are built once per handler and shared
 * by the requests that end the same way, so they are frozen: copy one to change it.
 */
export interface WebhookResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * Codes that appear in response bodies: every {@link WebhookErrorCode}, plus the two answers that are not
 * errors of the request itself.
 */
export type WebhookResponseCode = WebhookErrorCode | 'METHOD_NOT_ALLOWED' | 'IN_FLIGHT';

/** The providers hookguard receives webhooks from. */
export type Provider = 'chatwoot' | 'stripe';

/**
 * Handed to your handlers with the event. `R` is the type of `req`: what the adapter was given (Express
 * `req`, Fastify `request`, Koa `ctx`, Fetch `Request`); `unknown` for {@link createChatwootHandler} /
 * {@link createStripeHandler} called directly, where it is whatever you passed as the request's `req`.
 */
/** See {@link WebhookContext.stale}. */
export type Staleness = false | 'newer-processed' | 'same-second';

export interface WebhookContext<R = unknown> {
  provider: Provider;
  /** The dedup key of this delivery, when it has one. */
  key: string | undefined;
  /** `X-Chatwoot-Delivery` for Chatwoot; undefined for Stripe, which sends no delivery id. */
  deliveryId: string | undefined;
  headers: HeaderSource;
  /**
   * The configured logger, with provider, event, key and delivery id added to every line. With the default
   * logger your `ctx.log.info` lines are printed too (hookguard's own info lines are not).
   */
  log: Logger;
  /**
   * In an inbox worker, which run of this job this is: 1 on the first, 2 after a failure or after a worker
   * died in the middle of it, and so on. Undefined inline: there a provider's retry is a new delivery, and
   * the provider does not say which one it is.
   */
  attempt?: number;
  /**
   * Stripe, in an inbox worker: whether this event's `data.object` is already out of date. An event of the
   * same object (`data.object.id`) created later was processed (`'newer-processed'`: skip it, or refetch
   * the object), or one created in the same second (`'same-second'`: Stripe's `created` counts whole
   * seconds and cannot tell which is newer; refetch), or neither (`false`). Exact when the object's events
   * run one at a time (an `ordered` inbox: Stripe's default key is the object). Undefined inline, for
   * Chatwoot, and for events that name no object.
   */
  stale?: Staleness;
  /**
   * The framework's request this event came in on, for route parameters (`/cw/:account`), a tenant looked
   * up by middleware, or the URL. Undefined in an inbox worker: the event is processed later, elsewhere.
   */
  req: R;
}

/**
 * One summary per request, for metrics.
 */
export interface WebhookOutcome {
  provider: Provider;
  result: 'processed' | 'queued' | 'duplicate' | 'in-flight' | 'ignored' | 'rejected' | 'failed';
  status: number;
  code?: WebhookResponseCode;
  event?: string;
  key?: string;
  durationMs: number;
}

/**
 * Counts since the handler was created, for a health endpoint or metrics.
 */
export interface WebhookStats {
  provider: Provider;
  /** ISO-8601 time the handler was created. */
  since: string;
  /** Requests answered (a 202 counts when its processing ends). */
  requests: number;
  counts: Record<WebhookOutcome['result'], number>;
  /** Keys held by the store, where the store can tell (the memory store can). */
  storeSize: number | undefined;
}

/**
 * What {@link createChatwootHandler} and {@link createStripeHandler} return: the request handler, with its
 * {@link WebhookStats}.
 */
export interface WebhookHandler {
  (req: WebhookRequest): Promise<WebhookResponse>;
  stats(): WebhookStats;
  /**
   * For a graceful shutdown, after your server stopped taking requests: waits (at most `timeoutMs`,
   * default 10 s) for the handlers still running, including those answered early by `ackAfterMs`, and
   * for their claims to be settled; then closes the store if the handler made it (the default memory
   * store). A store you passed in stays open: you own it.
   */
  close(options?: { timeoutMs?: number }): Promise<void>;
}

/**
 * Options shared by {@link createChatwootHandler}, {@link createStripeHandler} and every adapter.
 */
export interface WebhookOptions<E, R = unknown> {
  /** Signing secret(s). Undefined or blank without `allowUnsigned` answers 500 `MISSING_SECRET` to every request. */
  secret: string | readonly string[] | undefined;
  /** Accept unsigned requests when no secret is set (local development only). Default false. */
  allowUnsigned?: boolean;
  /** Signed-timestamp window in seconds, both directions; default 300; 0 turns it off. */
  toleranceSeconds?: number;
  /** Clock in milliseconds, for the timestamp check. */
  now?: () => number;
  /**
   * Where processed events are remembered; default a new in-memory store; `false` turns dedup off. Not
   * used with an `inbox` (the engine dedupes on the key; give the store to the inbox's workers).
   */
  store?: DedupStore | false;
  /** How long a completed event is remembered; default 3 days (Stripe retries for up to 3 days). */
  dedupTtlMs?: number;
  /** How long a claim lasts before another delivery may take over (a crashed worker); default 60 s. Keep it above your slowest handler. */
  leaseMs?: number;
  /** Largest body accepted, enforced while reading; default 4 MiB for Chatwoot (its messages reach ~2.7 MB), 1 MiB for Stripe. */
  maxBodyBytes?: number;
  /** Longest the whole body may take to arrive; default 10 s. A slow sender cannot hold memory and a socket forever. */
  readTimeoutMs?: number;
  /** Answer 202 once the handler has run this long and keep processing (Chatwoot gives up after 5 s). */
  ackAfterMs?: number;
  /** Your own dedup key; default the provider's (`chatwootDedupKey`, `stripeDedupKey`). */
  dedupKey?: (event: E, ctx: WebhookContext<R>) => string | undefined;
  /**
   * With an inbox created with `ordered: true`: events with the same ordering key run one at a time, in
   * the order this endpoint accepted them. Default: the Chatwoot conversation (its inbox and id), the
   * Stripe object (`data.object.id`); `false` turns ordering off for this endpoint; `undefined` from your
   * function leaves that event unordered.
   */
  orderKey?: false | ((event: E) => string | undefined);
  /** Called for every event that has no handler in `on`. */
  onEvent?: (event: E, ctx: WebhookContext<R>) => unknown;
  /**
   * Where log lines go (pino, console and most loggers fit). Default: warnings and errors are printed to
   * the console, one line each and never a payload, and so are your handlers' own `ctx.log.info` lines;
   * hookguard's own debug and info lines are dropped. `false` silences it.
   */
  logger?: Logger | false;
  /**
   * Prefixed to every dedup key (`{namespace}:{key}`). Endpoints that share one store must differ: a Stripe
   * event sent to a fulfilment and an analytics endpoint has one id, and without a namespace the second
   * endpoint would answer "duplicate" and never run its handler.
   */
  namespace?: string;
  /**
   * A durable inbox (`hookguard/bullmq`, `hookguard/pg-boss`): after verify, parse, `ignore` and the key,
   * the event is written to it and answered 200 `{"ok":true,"queued":true}` once the engine acknowledged
   * the write; the handlers then run in the inbox's workers, with retries. Without it they run inline.
   */
  inbox?: Inbox;
  /** Called once per request with its outcome, for metrics. */
  onOutcome?: (outcome: WebhookOutcome) => void;
  /**
   * Traces and metrics through OpenTelemetry: `openTelemetry(api)` from `hookguard/otel`. A span per
   * request (a child of the framework's HTTP span), with verify, claim, send and handler steps; with an
   * inbox, the trace continues in the worker. Without it nothing of OpenTelemetry is loaded.
   */
  telemetry?: WebhookTelemetry;
}
