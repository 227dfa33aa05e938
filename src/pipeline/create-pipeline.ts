import type { ClaimResult } from '../dedup/dedup-store.js';
import { asWebhookError, isClientBodyFault } from '../errors/body-errors.js';
import type { WebhookErrorCode } from '../errors/webhook-error.js';
import { createMemoryDedupStore } from '../stores/memory.js';
import { describeError, isThenable, positive, safeCall, settleWithin } from '../util/values.js';
import { ANSWER_DEADLINES, buildAnswers, type Verdict } from './answers.js';
import { DEFAULTS, resolveBodyLimits } from './defaults.js';
import { enqueueStage } from './enqueue-stage.js';
import type { EventHandler, ProviderSpec } from './provider-spec.js';
import { safeLogger } from './safe-logger.js';
import {
  answerStage,
  claimStage,
  keyStage,
  NO_ERROR,
  readStage,
  routeStage,
  runStage,
  settleStage,
  verifyStage,
  type Delivery,
  type Pipeline,
} from './stages.js';
import type {
  Logger,
  WebhookHandler,
  WebhookOptions,
  WebhookRequest,
  WebhookResponse,
  WebhookStats,
} from './types.js';

type Answering = WebhookResponse | Promise<WebhookResponse>;

/**
 * The framework-agnostic pipeline behind both providers and every adapter. It resolves the options once,
 * then chains the stages of `stages.ts` for each request. Signatures are checked before any claim, so
 * forged requests cannot fill the store. The status of every answer comes from the table in `answers.ts`.
 */
export function createPipeline<E>(options: WebhookOptions<E>, spec: ProviderSpec<E>): WebhookHandler {
  const p = resolvePipeline(options, spec);
  const since = new Date().toISOString();
  const handle = (req: WebhookRequest): Promise<WebhookResponse> =>
    Promise.resolve(receive(p, newDelivery(p, req)));
  const stats = (): WebhookStats => {
    const size = (p.store as { size?: unknown } | undefined)?.size;
    return {
      provider: spec.provider,
      since,
      requests: Object.values(p.counts).reduce((a, b) => a + b, 0),
      counts: { ...p.counts },
      storeSize: typeof size === 'number' ? size : undefined,
    };
  };
  const close = async (closeOptions: { timeoutMs?: number } = {}): Promise<void> => {
    const timeoutMs = positive(closeOptions.timeoutMs, DEFAULTS.closeTimeoutMs);
    if ((await settleWithin(Promise.allSettled([...p.running]), timeoutMs)) === 'late') {
      p.log.warn(
        { running: p.running.size, timeoutMs },
        'close(): handlers still running at the deadline; their claims expire with their lease',
      );
    }
    if (options.store === undefined) await p.store?.close?.();
  };
  return Object.assign(handle, { stats, close });
}

/** Counts `work` as running until it settles, for `close()`. */
function running<T>(p: { readonly running: Set<Promise<unknown>> }, work: Promise<T>): Promise<T> {
  p.running.add(work);
  const done = () => void p.running.delete(work);
  work.then(done, done);
  return work;
}

function newDelivery<E>(p: Pipeline<E>, req: WebhookRequest): Delivery<E> {
  return {
    req,
    started: performance.now(),
    event: undefined,
    name: undefined,
    deliveryId: undefined,
    key: undefined,
    token: undefined,
    ctx: undefined,
    size: 0,
    log: p.log,
    trace: p.telemetry?.request(p.spec.provider, p.inbox?.messaging),
  };
}

/**
 * `next build` loads route modules to collect page data, before the run-time secrets exist: a missing
 * secret then is expected, not an alarm (requests are still refused until one is set). Next.js marks that
 * step with NEXT_PHASE=phase-production-build.
 */
function buildingNextApp(): boolean {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
  return env?.NEXT_PHASE === 'phase-production-build';
}

function resolvePipeline<E>(options: WebhookOptions<E>, spec: ProviderSpec<E>): Pipeline<E> {
  const leaseMs = positive(options.leaseMs, DEFAULTS.leaseMs);
  const log = safeLogger(options.logger, { provider: spec.provider });
  const hasSecret = spec.verifies;
  if (!hasSecret && options.allowUnsigned === true) {
    log.warn(
      {},
      `No ${spec.provider} webhook secret is set and allowUnsigned is on: requests are NOT verified.`,
    );
  } else if (!hasSecret && !buildingNextApp()) {
    log.error(
      {},
      `No ${spec.provider} webhook secret is set: every request will be answered 500 MISSING_SECRET.`,
    );
  }
  // With an inbox nothing is claimed here (the inbox dedupes on the key, its workers claim): no store.
  const store =
    options.store === false || options.inbox !== undefined
      ? undefined
      : (options.store ?? createMemoryDedupStore());
  const namespace =
    typeof options.namespace === 'string' && options.namespace !== '' ? options.namespace : '';
  if (store !== undefined) noteSharedUse(store, 'dedup store', spec.provider, namespace, log);
  if (options.inbox !== undefined) noteSharedUse(options.inbox, 'inbox', spec.provider, namespace, log);
  const ackAfterMs =
    options.ackAfterMs !== undefined && options.ackAfterMs >= 0 ? options.ackAfterMs : undefined;
  const deadline = options.inbox === undefined ? ANSWER_DEADLINES[spec.provider] : undefined;
  if (deadline !== undefined && ackAfterMs !== undefined && ackAfterMs >= deadline.senderWaitsMs) {
    log.warn(
      { ackAfterMs, senderWaitsMs: deadline.senderWaitsMs },
      `ackAfterMs is not below the time ${spec.provider} waits for an answer: ${deadline.thenWhat}. Lower it (e.g. 3000).`,
    );
  }
  return {
    spec,
    options,
    store,
    namespace,
    keyPrefix: namespace === '' ? undefined : `${namespace}:`,
    inbox: options.inbox,
    leaseMs,
    ttlMs: positive(options.dedupTtlMs, DEFAULTS.dedupTtlMs),
    limits: resolveBodyLimits(options, spec.provider),
    ackAfterMs,
    deadline,
    missingSecret: !hasSecret && options.allowUnsigned !== true,
    answers: buildAnswers(spec.provider, leaseMs),
    log,
    counts: { processed: 0, queued: 0, duplicate: 0, 'in-flight': 0, ignored: 0, rejected: 0, failed: 0 },
    running: new Set(),
    telemetry: options.telemetry,
  };
}

/** Which provider and namespace pairs use each store or inbox object in this process. */
const sharedUsers = new WeakMap<object, Set<string>>();

/**
 * Two handlers of one provider on one store (or one inbox) under one namespace swallow each other's events
 * (the second answers "duplicate" to an event only the first took): warn once, at creation.
 */
function noteSharedUse(
  shared: object,
  what: 'dedup store' | 'inbox',
  provider: string,
  namespace: string,
  log: Required<Logger>,
): void {
  const users = sharedUsers.get(shared) ?? new Set<string>();
  sharedUsers.set(shared, users);
  const user = `${provider}\u0000${namespace}`;
  if (users.has(user)) {
    log.warn(
      { namespace: namespace === '' ? undefined : namespace },
      `Two ${provider} handlers share one ${what} under the same namespace: an event sent to both ` +
        'endpoints is processed by only one of them. Give each handler its own namespace option.',
    );
  }
  users.add(user);
}

/** Method, then read. */
function receive<E>(p: Pipeline<E>, d: Delivery<E>): Answering {
  if (typeof d.req.method !== 'string' || d.req.method.toUpperCase() !== 'POST') {
    d.log.warn(
      { outcome: 'rejected', code: 'METHOD_NOT_ALLOWED', status: 405 },
      'Webhooks are POST requests.',
    );
    return answerStage(p, d, 'METHOD_NOT_ALLOWED');
  }
  let bytes: Uint8Array | Promise<Uint8Array>;
  try {
    bytes = readStage(p.limits, d.req);
  } catch (err) {
    return refuse(p, d, err, 'RAW_BODY_UNAVAILABLE', 'The request body could not be read.');
  }
  if (!isThenable(bytes)) return process(p, d, bytes);
  return bytes.then(
    (read) => process(p, d, read),
    (err: unknown) => refuse(p, d, err, 'RAW_BODY_UNAVAILABLE', 'The request body could not be read.'),
  );
}

/** Verify and parse (a promise only under Web Crypto), then the rest. */
function process<E>(p: Pipeline<E>, d: Delivery<E>, bytes: Uint8Array): Answering {
  let verified: void | Promise<void>;
  d.trace?.step('verify');
  try {
    verified = verifyStage(p, d, bytes);
  } catch (err) {
    return unreadable(p, d, err);
  }
  d.size = bytes.byteLength;
  if (!isThenable(verified)) return route(p, d);
  return verified.then(
    () => route(p, d),
    (err: unknown) => unreadable(p, d, err),
  );
}

function unreadable<E>(p: Pipeline<E>, d: Delivery<E>, err: unknown): Answering {
  return refuse(p, d, err, 'INVALID_PAYLOAD', 'The request could not be read.');
}

/** Route, key (a promise only where the key is hashed with Web Crypto), then claim. */
function route<E>(p: Pipeline<E>, d: Delivery<E>): Answering {
  d.trace?.step();
  const handler = routeStage(p, d);
  if (handler === undefined) return answerStage(p, d, 'ignored');
  let keyed: void | Promise<void>;
  try {
    keyed = keyStage(p, d);
  } catch (err) {
    return keyless(p, d, err);
  }
  if (!isThenable(keyed)) return claim(p, d, handler);
  return keyed.then(
    () => claim(p, d, handler),
    (err: unknown) => keyless(p, d, err),
  );
}

function keyless<E>(p: Pipeline<E>, d: Delivery<E>, err: unknown): Answering {
  return refuse(p, d, err, 'HANDLER_FAILED', 'The dedup key could not be computed.');
}

/** Into the inbox, or claim and run. */
function claim<E>(p: Pipeline<E>, d: Delivery<E>, handler: EventHandler<E>): Answering {
  if (p.inbox !== undefined) return enqueueStage(p, d, p.inbox, d.size);
  let claimed: ClaimResult | PromiseLike<ClaimResult> | undefined;
  if (p.store !== undefined && d.key !== undefined) d.trace?.step('claim');
  try {
    claimed = claimStage(p, d);
  } catch (err) {
    return storeFailed(p, d, err);
  }
  if (!isThenable(claimed)) return afterClaim(p, d, handler, claimed);
  return Promise.resolve(claimed).then(
    (result) => afterClaim(p, d, handler, result),
    (err: unknown) => storeFailed(p, d, err),
  );
}

/** Duplicate and in-flight end here; a claimed (or undeduplicated) event runs. */
function afterClaim<E>(
  p: Pipeline<E>,
  d: Delivery<E>,
  handler: EventHandler<E>,
  claim: ClaimResult | undefined,
): Answering {
  if (claim?.status === 'duplicate') {
    d.log.info({ outcome: 'duplicate' }, 'duplicate delivery: already processed');
    return answerStage(p, d, 'duplicate');
  }
  if (claim?.status === 'in-flight') {
    d.log.info({ outcome: 'in-flight' }, 'another delivery of this event is being processed');
    return answerStage(p, d, 'IN_FLIGHT');
  }
  d.token = claim?.token;
  const { trace } = d;
  let ran: unknown;
  if (trace === undefined) ran = runStage(d, handler);
  else {
    trace.step('handler');
    ran = trace.within(() => runStage(d, handler));
  }
  if (!isThenable(ran)) return finish(p, d, ran, false);
  const work = ran as Promise<unknown>; // runStage's only thenable is its own Promise
  if (p.ackAfterMs === undefined)
    return running(
      p,
      work.then((error) => finish(p, d, error, false)),
    );
  return answerEarly(p, d, work, p.ackAfterMs);
}

const ACK = Symbol('ack');

/** `ackAfterMs`: the handler's own answer if it ends in time, else 202 now and the outcome when it ends. */
function answerEarly<E>(
  p: Pipeline<E>,
  d: Delivery<E>,
  work: Promise<unknown>,
  ackAfterMs: number,
): Answering {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const early = new Promise<typeof ACK>((resolve) => {
    timer = setTimeout(resolve, ackAfterMs, ACK);
  });
  return Promise.race([work, early]).then((first) => {
    clearTimeout(timer);
    if (first !== ACK) return finish(p, d, first, false);
    d.log.info({ ackAfterMs }, 'handler still running: answered 202, processing continues');
    void running(
      p,
      work.then((error) => finish(p, d, error, true)),
    );
    return p.answers.accepted.response;
  });
}

/** Settle the claim, then answer (or, after an early 202, only report). */
function finish<E>(p: Pipeline<E>, d: Delivery<E>, error: unknown, answeredEarly: boolean): Answering {
  if (error !== NO_ERROR) d.trace?.step(undefined, 'HANDLER_FAILED', error);
  else d.trace?.step();
  const settled = settleStage(p, d, error !== NO_ERROR);
  if (isThenable(settled)) return settled.then(() => conclude(p, d, error, answeredEarly));
  return conclude(p, d, error, answeredEarly);
}

function conclude<E>(
  p: Pipeline<E>,
  d: Delivery<E>,
  error: unknown,
  answeredEarly: boolean,
): WebhookResponse {
  const elapsed = performance.now() - d.started;
  if (elapsed > p.leaseMs) {
    d.log.warn(
      { durationMs: elapsed, leaseMs: p.leaseMs },
      'the handler outlived its lease: raise leaseMs above your slowest handler',
    );
  }
  if (!answeredEarly && p.deadline !== undefined && elapsed > p.deadline.warnAfterMs) warnSlow(p, d, elapsed);
  const reported = answeredEarly ? p.answers.accepted.status : undefined;
  if (error !== NO_ERROR) {
    d.log.error(
      { outcome: 'failed', code: 'HANDLER_FAILED', status: 500, err: error },
      'handler failed; the claim was released for a retry',
    );
    return answerStage(p, d, 'HANDLER_FAILED', reported);
  }
  if (typeof p.options.logger === 'object' && p.options.logger !== null) {
    // The preview (grapheme-safe truncation) is only worth computing for a logger of the user's, the only
    // kind that prints info lines.
    const preview = safeCall(() => p.spec.describe(d.event as E), d.name ?? '');
    d.log.info(
      { outcome: 'processed', status: reported ?? 200, preview, durationMs: Math.round(elapsed) },
      'processed',
    );
  }
  return answerStage(p, d, 'processed', reported);
}

/** An inline handler kept the answer waiting close to (or past) the time the provider waits for it. */
function warnSlow<E>(p: Pipeline<E>, d: Delivery<E>, elapsed: number): void {
  const deadline = p.deadline!;
  const late = elapsed >= deadline.senderWaitsMs;
  d.log.warn(
    { durationMs: Math.round(elapsed), senderWaitsMs: deadline.senderWaitsMs },
    `the answer took ${(elapsed / 1000).toFixed(1)} s, ${late ? 'longer than' : 'close to'} the ${deadline.senderWaitsMs / 1000} s ${p.spec.provider} waits for it: ${deadline.thenWhat}. Run slow handlers in the durable inbox (the \`inbox\` option, hookguard/bullmq or hookguard/pg-boss), or answer early with ackAfterMs.`,
  );
}

/** A refusal or a configuration fault found before the claim: the sender's faults warn, ours are errors. */
function refuse<E>(
  p: Pipeline<E>,
  d: Delivery<E>,
  err: unknown,
  fallback: WebhookErrorCode,
  message: string,
): WebhookResponse {
  const error = asWebhookError(err, fallback, message);
  const verdict: Verdict = isClientBodyFault(error) ? 'unreadable' : error.code;
  const answer = p.answers[verdict];
  const failed = answer.result === 'failed';
  const fields: Record<string, unknown> = { outcome: answer.result, code: error.code, status: answer.status };
  if (failed && error.cause !== undefined) fields.err = describeError(error.cause);
  if (failed) d.log.error(fields, error.message);
  else d.log.warn(fields, error.message);
  return answerStage(p, d, verdict);
}

function storeFailed<E>(p: Pipeline<E>, d: Delivery<E>, err: unknown): WebhookResponse {
  const error = asWebhookError(err, 'STORE_UNAVAILABLE', 'The dedup store failed; nothing was processed.');
  const answer = p.answers.STORE_UNAVAILABLE;
  d.log.error(
    { outcome: answer.result, code: answer.code, status: answer.status, err: describeError(err) },
    error.message,
  );
  return answerStage(p, d, 'STORE_UNAVAILABLE');
}
