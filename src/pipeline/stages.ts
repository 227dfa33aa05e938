import type { ClaimResult, DedupStore } from '../dedup/dedup-store.js';
import { bodyTooLarge, bodyUnavailable } from '../errors/body-errors.js';
import { WebhookError } from '../errors/webhook-error.js';
import { boundedEventName } from '../text/event-name.js';
import { toBytes } from '../util/bytes.js';
import type { Maybe } from '../platform/index.js';
import { describeError, isThenable, safeCall } from '../util/values.js';
import type { Answer, AnswerDeadline, Verdict } from './answers.js';
import type { BodyLimits } from './defaults.js';
import type { Inbox } from './enqueue-stage.js';
import type { EventHandler, ProviderSpec } from './provider-spec.js';
import { handlerLogger, safeLogger } from './safe-logger.js';
import type { TelemetryRun, WebhookTelemetry } from './telemetry.js';
import type {
  Logger,
  WebhookContext,
  WebhookOptions,
  WebhookOutcome,
  WebhookRequest,
  WebhookResponse,
  WebhookStats,
} from './types.js';

// The stages of a request, in the order the README's status table gives them: read → verify and parse →
// route → key → claim → run → settle → answer. Each is a plain function over the handler's resolved
// `Pipeline` and the request's `Delivery`; `create-pipeline.ts` chains them. A stage that may wait returns
// a promise only when it really waits (a synchronous store or handler costs no microtask hop).

/** What a handler resolved once at creation: every stage reads it, none changes it (but the counts). */
export interface Pipeline<E> {
  readonly spec: ProviderSpec<E>;
  readonly options: WebhookOptions<E>;
  readonly store: DedupStore | undefined;
  readonly leaseMs: number;
  readonly ttlMs: number;
  readonly limits: BodyLimits;
  readonly ackAfterMs: number | undefined;
  /** How long the provider waits for an answer, to warn about an inline handler that runs too long. */
  readonly deadline: AnswerDeadline | undefined;
  /** Where events go instead of running inline, when set. */
  readonly inbox: Inbox | undefined;
  /** The `namespace` option, or `''`. */
  readonly namespace: string;
  /** Prefixed to every key (`{namespace}:`), or undefined. */
  readonly keyPrefix: string | undefined;
  /** No usable secret and `allowUnsigned` is off: every request is refused with MISSING_SECRET. */
  readonly missingSecret: boolean;
  readonly answers: Readonly<Record<Verdict, Answer>>;
  /** The handler's logger, with the provider on every line. */
  readonly log: Required<Logger>;
  readonly counts: WebhookStats['counts'];
  /** Handler runs still going (with their settling), for `close()`. Synchronous handlers never enter. */
  readonly running: Set<Promise<unknown>>;
  /** The `telemetry` option. */
  readonly telemetry: WebhookTelemetry | undefined;
}

/** One request on its way through the stages; each stage fills in what it learnt. */
export interface Delivery<E> {
  readonly req: WebhookRequest;
  readonly started: number;
  event: E | undefined;
  name: string | undefined;
  deliveryId: string | undefined;
  key: string | undefined;
  token: string | undefined;
  ctx: WebhookContext | undefined;
  /** The raw body's length in bytes, once read. */
  size: number;
  /** The pipeline's logger, then (from the key stage) one with the event, key and delivery id bound. */
  log: Required<Logger>;
  /** This request's spans, with the `telemetry` option. */
  readonly trace: TelemetryRun | undefined;
}

/** A handler's run ended without an error. */
export const NO_ERROR = Symbol('no error');

/** Read: the raw bytes, within `maxBodyBytes` and `readTimeoutMs`. Throws or rejects with a WebhookError. */
export function readStage(limits: BodyLimits, req: WebhookRequest): Uint8Array | Promise<Uint8Array> {
  const { body } = req;
  if (body === undefined) throw bodyUnavailable('The adapter passed no request body.');
  const { maxBodyBytes } = limits;
  if (typeof body !== 'function') return withinLimit(toBytes(body), maxBodyBytes);
  return body(maxBodyBytes, limits.readTimeoutMs).then((raw) => withinLimit(toBytes(raw), maxBodyBytes));
}

function withinLimit(bytes: Uint8Array, maxBytes: number): Uint8Array {
  if (bytes.byteLength > maxBytes) throw bodyTooLarge(maxBytes);
  return bytes;
}

/**
 * Verify and parse: the secret check, the signature, the JSON. Throws a WebhookError (under Web Crypto,
 * the promise it returns rejects with one).
 */
export function verifyStage<E>(p: Pipeline<E>, d: Delivery<E>, bytes: Uint8Array): Maybe<void> {
  if (p.missingSecret) {
    throw new WebhookError(
      'MISSING_SECRET',
      `No ${p.spec.provider} webhook secret is configured; refusing to process unverified requests.`,
    );
  }
  const read = p.spec.read(bytes, d.req.headers);
  // No closure on the synchronous (Node) path: this runs once per request.
  if (!isThenable(read)) return parsed(p, d, read);
  return read.then((result) => parsed(p, d, result));
}

function parsed<E>(p: Pipeline<E>, d: Delivery<E>, read: { event: E; deliveryId: string | undefined }): void {
  d.event = read.event;
  d.deliveryId = read.deliveryId;
  const name = p.spec.eventName(read.event);
  // The name labels log lines and outcomes: bounded and on one line, whatever was signed.
  d.name = boundedEventName(name);
}

/** Route: the event's handler, or undefined when it has none or `ignore` says to skip it. */
export function routeStage<E>(p: Pipeline<E>, d: Delivery<E>): EventHandler<E> | undefined {
  const event = d.event as E;
  const handler = p.spec.handlerFor(event);
  if (handler === undefined || safeCall(() => p.spec.ignore(event), false)) {
    d.log.debug(
      { outcome: 'ignored', event: d.name, deliveryId: d.deliveryId },
      handler === undefined ? 'no handler for this event' : 'ignored',
    );
    return undefined;
  }
  return handler;
}

/**
 * Key: the dedup key (the user's `dedupKey`, else the provider's), and the handler's `ctx`. Throws a
 * HANDLER_FAILED WebhookError when the key function throws; a promise only where the provider's key is
 * hashed with Web Crypto.
 */
export function keyStage<E>(p: Pipeline<E>, d: Delivery<E>): Maybe<void> {
  const { options, spec } = p;
  const event = d.event as E;
  const { headers } = d.req;
  const ctx: WebhookContext = {
    provider: spec.provider,
    key: undefined,
    deliveryId: d.deliveryId,
    headers,
    log: p.log,
    req: d.req.req,
  };
  const { dedupKey } = options;
  let own: Maybe<string | undefined>;
  try {
    own = dedupKey === undefined ? spec.defaultKey(event, headers) : dedupKey(event, ctx);
  } catch (err) {
    throw keyFailed(err);
  }
  if (!isThenable(own)) return keyed(p, d, ctx, own);
  return own.then(
    (resolved) => keyed(p, d, ctx, resolved),
    (err: unknown) => {
      throw keyFailed(err);
    },
  );
}

/**
 * Running the handler without its key would process the event unguarded (twice on a retry): refuse it, so
 * the provider's retry can process it once the key can be computed.
 */
function keyFailed(err: unknown): WebhookError {
  return new WebhookError(
    'HANDLER_FAILED',
    'The dedup key could not be computed (dedupKey threw): the event was not processed.',
    { cause: err },
  );
}

function keyed<E>(p: Pipeline<E>, d: Delivery<E>, ctx: WebhookContext, own: string | undefined): void {
  const { options, spec } = p;
  const key = own === undefined || p.keyPrefix === undefined ? own : p.keyPrefix + own;
  d.key = ctx.key = key;
  const bindings = { provider: spec.provider, event: d.name, key, deliveryId: d.deliveryId };
  d.log = safeLogger(options.logger, bindings);
  ctx.log = handlerLogger(options.logger, d.log, bindings);
  d.ctx = ctx;
  if (key === undefined) d.log.debug({}, 'nothing identifies this delivery: processing without dedup');
}

/**
 * Claim: take the key in the store, or undefined when there is nothing to claim (no store, no key).
 * Throws or rejects when the store fails.
 */
export function claimStage<E>(
  p: Pipeline<E>,
  d: Delivery<E>,
): ClaimResult | PromiseLike<ClaimResult> | undefined {
  return p.store === undefined || d.key === undefined ? undefined : p.store.claim(d.key, p.leaseMs);
}

/** Run: the user's handler. Gives NO_ERROR or what it threw, synchronously when the handler is. */
export function runStage<E>(d: Delivery<E>, handler: EventHandler<E>): unknown {
  let result: unknown;
  try {
    result = handler(d.event as E, d.ctx as WebhookContext);
  } catch (err) {
    return thrown(err);
  }
  return isThenable(result) ? Promise.resolve(result).then(() => NO_ERROR, thrown) : NO_ERROR;
}

function thrown(err: unknown): unknown {
  return err ?? new Error('handler threw a nullish value');
}

/**
 * Settle: complete the claim after a success, release it after a failure (so the provider's retry
 * processes the event: nothing is lost). A store error here is logged, never thrown.
 */
export function settleStage<E>(p: Pipeline<E>, d: Delivery<E>, failed: boolean): void | Promise<void> {
  const { store } = p;
  const { key, token } = d;
  if (store === undefined || key === undefined || token === undefined) return undefined;
  const onError = (err: unknown) =>
    d.log.error(
      { err: describeError(err) },
      failed
        ? 'could not release the claim: a retry will be refused until the lease expires'
        : 'could not record completion: a retry may process this event again',
    );
  try {
    const done = failed ? store.release(key, token) : store.complete(key, token, p.ttlMs);
    if (isThenable(done)) return Promise.resolve(done).then(() => undefined, onError);
  } catch (err) {
    onError(err);
  }
  return undefined;
}

/**
 * Answer: counts the outcome, reports it to `onOutcome` and returns the prebuilt answer of `verdict`.
 * `reportedStatus` is for work that ends after an early 202: the report says what the sender got.
 */
export function answerStage<E>(
  p: Pipeline<E>,
  d: Delivery<E>,
  verdict: Verdict,
  reportedStatus?: number,
): WebhookResponse {
  const answer = p.answers[verdict];
  p.counts[answer.result]++;
  const { onOutcome } = p.options;
  const { trace } = d;
  if (onOutcome === undefined && trace === undefined) return answer.response;
  const outcome: WebhookOutcome = {
    provider: p.spec.provider,
    result: answer.result,
    status: reportedStatus ?? answer.status,
    durationMs: performance.now() - d.started,
  };
  if (answer.code !== undefined) outcome.code = answer.code;
  if (d.name !== undefined) outcome.event = d.name;
  if (d.key !== undefined) outcome.key = d.key;
  try {
    trace?.end(outcome);
    onOutcome?.(outcome);
  } catch {
    // Metrics and traces must not change the answer.
  }
  return answer.response;
}
