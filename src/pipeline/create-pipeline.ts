import { createMemoryDedupStore } from '../dedup/memory-dedup-store.js';
import type { DedupStore } from '../dedup/dedup-store.js';
import { isWebhookError, WebhookError } from '../errors/webhook-error.js';
import type { HeaderSource, RawBody } from '../types/common.js';
import { toBytes } from '../util/bytes.js';
import { hasUsableSecret } from '../util/secrets.js';
import { safeLogger } from './safe-logger.js';
import type {
  WebhookContext,
  WebhookHandler,
  WebhookOptions,
  WebhookOutcome,
  WebhookRequest,
  WebhookResponse,
  WebhookResponseCode,
  WebhookStats,
} from './types.js';

const DEFAULT_TTL_MS = 3 * 24 * 60 * 60 * 1000;
const DEFAULT_LEASE_MS = 60_000;
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;
export const DEFAULT_READ_TIMEOUT_MS = 10_000;
const STORE_RETRY_AFTER_SECONDS = 10;

/** What a provider plugs into the shared pipeline. */
export interface ProviderSpec<E> {
  provider: 'chatwoot' | 'stripe';
  /** Verifies (when `verify` is true) and parses; throws WebhookError. */
  read(
    body: Uint8Array,
    headers: HeaderSource,
    verify: boolean,
  ): { event: E; deliveryId: string | undefined };
  eventName(event: E): string | undefined;
  defaultKey(event: E, headers: HeaderSource): string | undefined;
  /** The handler for this event: its entry in `on`, else `onEvent`, else none (the event is ignored). */
  handlerFor(event: E): ((event: E, ctx: WebhookContext) => unknown) | undefined;
  ignore(event: E): boolean;
  /** A short, log-safe description of the event (no payload beyond a truncated preview). */
  describe(event: E): string;
}

type Result = WebhookOutcome['result'];

/**
 * The framework-agnostic pipeline behind both providers and every adapter: body limit → secret → verify
 * → parse → ignore → claim → handler → complete or release → answer. Signatures are checked before any
 * claim, so forged requests cannot fill the store.
 */
export function createPipeline<E>(options: WebhookOptions<E>, spec: ProviderSpec<E>): WebhookHandler {
  const store: DedupStore | undefined =
    options.store === false ? undefined : (options.store ?? createMemoryDedupStore());
  const leaseMs = positive(options.leaseMs, DEFAULT_LEASE_MS);
  const ttlMs = positive(options.dedupTtlMs, DEFAULT_TTL_MS);
  const maxBodyBytes = positive(options.maxBodyBytes, DEFAULT_MAX_BODY_BYTES);
  const readTimeoutMs = positive(options.readTimeoutMs, DEFAULT_READ_TIMEOUT_MS);
  const ackAfterMs =
    options.ackAfterMs !== undefined && options.ackAfterMs >= 0 ? options.ackAfterMs : undefined;
  const provider = spec.provider;
  const log = safeLogger(options.logger, { provider });
  const hasSecret = hasUsableSecret(options.secret);
  const verify = hasSecret || options.allowUnsigned !== true;
  if (!hasSecret) {
    if (options.allowUnsigned === true) {
      log.warn(
        {},
        `No ${provider} webhook secret is set and allowUnsigned is on: requests are NOT verified.`,
      );
    } else {
      log.error(
        {},
        `No ${provider} webhook secret is set: every request will be answered 500 MISSING_SECRET.`,
      );
    }
  }

  const since = new Date().toISOString();
  const counts: WebhookStats['counts'] = {
    processed: 0,
    duplicate: 0,
    'in-flight': 0,
    ignored: 0,
    rejected: 0,
    failed: 0,
  };
  const stats = (): WebhookStats => {
    const size = (store as { size?: unknown } | undefined)?.size;
    return {
      provider,
      since,
      requests: Object.values(counts).reduce((a, b) => a + b, 0),
      counts: { ...counts },
      storeSize: typeof size === 'number' ? size : undefined,
    };
  };

  async function handle(req: WebhookRequest): Promise<WebhookResponse> {
    const started = performance.now();
    const outcome = (
      result: Result,
      status: number,
      extra: { code?: WebhookResponseCode; event?: string | undefined; key?: string | undefined } = {},
    ): void => {
      counts[result]++;
      if (options.onOutcome === undefined) return;
      const summary: WebhookOutcome = { provider, result, status, durationMs: performance.now() - started };
      if (extra.code !== undefined) summary.code = extra.code;
      if (extra.event !== undefined) summary.event = extra.event;
      if (extra.key !== undefined) summary.key = extra.key;
      try {
        options.onOutcome(summary);
      } catch {
        // A metrics hook must not change the answer.
      }
    };
    const refuse = (err: WebhookError): WebhookResponse => {
      // Server-side faults are failures; anything the sender can fix is a rejection.
      const failed = err.status >= 500;
      (failed ? log.error : log.warn)(
        { outcome: failed ? 'failed' : 'rejected', code: err.code, status: err.status },
        err.message,
      );
      outcome(failed ? 'failed' : 'rejected', err.status, { code: err.code });
      return errorResponse(err.status, err.code);
    };

    if (typeof req.method !== 'string' || req.method.toUpperCase() !== 'POST') {
      log.warn(
        { outcome: 'rejected', code: 'METHOD_NOT_ALLOWED', status: 405 },
        'Webhooks are POST requests.',
      );
      outcome('rejected', 405, { code: 'METHOD_NOT_ALLOWED' });
      return errorResponse(405, 'METHOD_NOT_ALLOWED', { allow: 'POST' });
    }

    let bytes: Uint8Array;
    try {
      bytes = await readBody(req.body, maxBodyBytes, readTimeoutMs);
    } catch (err) {
      return refuse(asWebhookError(err, 'RAW_BODY_UNAVAILABLE', 'The request body could not be read.'));
    }

    if (!hasSecret && verify) {
      return refuse(
        new WebhookError(
          'MISSING_SECRET',
          `No ${provider} webhook secret is configured; refusing to process unverified requests.`,
        ),
      );
    }

    let event: E;
    let deliveryId: string | undefined;
    try {
      ({ event, deliveryId } = spec.read(bytes, req.headers, verify));
    } catch (err) {
      return refuse(asWebhookError(err, 'INVALID_PAYLOAD', 'The request could not be read.'));
    }

    const name = spec.eventName(event);
    const handler = spec.handlerFor(event);
    if (handler === undefined || safeCall(() => spec.ignore(event), false)) {
      log.debug(
        { outcome: 'ignored', event: name, deliveryId },
        handler === undefined ? 'no handler for this event' : 'ignored',
      );
      outcome('ignored', 200, { event: name });
      return okResponse({ ok: true, ignored: true });
    }

    const baseCtx: WebhookContext = { provider, key: undefined, deliveryId, headers: req.headers, log };
    const key = options.dedupKey
      ? safeCall(() => options.dedupKey?.(event, baseCtx), undefined)
      : safeCall(() => spec.defaultKey(event, req.headers), undefined);
    const requestLog = safeLogger(options.logger, { provider, event: name, key, deliveryId });
    const ctx: WebhookContext = { ...baseCtx, key, log: requestLog };

    let token: string | undefined;
    if (store !== undefined && key !== undefined) {
      try {
        const claim = await store.claim(key, leaseMs);
        if (claim.status === 'duplicate') {
          requestLog.info({ outcome: 'duplicate' }, 'duplicate delivery: already processed');
          outcome('duplicate', 200, { event: name, key });
          return okResponse({ ok: true, duplicate: true });
        }
        if (claim.status === 'in-flight') {
          requestLog.info({ outcome: 'in-flight' }, 'another delivery of this event is being processed');
          outcome('in-flight', 409, { code: 'IN_FLIGHT', event: name, key });
          return errorResponse(409, 'IN_FLIGHT', {
            'retry-after': String(Math.max(1, Math.ceil(leaseMs / 1000))),
          });
        }
        token = claim.token;
      } catch (err) {
        const storeError = asWebhookError(
          err,
          'STORE_UNAVAILABLE',
          'The dedup store failed; nothing was processed.',
        );
        requestLog.error(
          { outcome: 'failed', code: storeError.code, status: 503, err: describeError(err) },
          storeError.message,
        );
        outcome('failed', 503, { code: 'STORE_UNAVAILABLE', event: name, key });
        return errorResponse(503, 'STORE_UNAVAILABLE', { 'retry-after': String(STORE_RETRY_AFTER_SECONDS) });
      }
    } else if (key === undefined) {
      requestLog.debug({}, 'nothing identifies this delivery: processing without dedup');
    }

    const work = runHandler(() => handler(event, ctx));
    const finish = async (error: unknown, status: number): Promise<WebhookResponse> => {
      const failed = error !== NO_ERROR;
      if (store !== undefined && key !== undefined && token !== undefined) {
        try {
          // A failure releases the claim, so the provider's retry processes the event: nothing is lost.
          if (failed) await store.release(key, token);
          else await store.complete(key, token, ttlMs);
        } catch (err) {
          requestLog.error(
            { err: describeError(err) },
            failed
              ? 'could not release the claim: a retry will be refused until the lease expires'
              : 'could not record completion: a retry may process this event again',
          );
        }
      }
      const elapsed = performance.now() - started;
      if (elapsed > leaseMs) {
        requestLog.warn(
          { durationMs: elapsed, leaseMs },
          'the handler outlived its lease: raise leaseMs above your slowest handler',
        );
      }
      if (failed) {
        requestLog.error(
          { outcome: 'failed', code: 'HANDLER_FAILED', status: 500, err: error },
          'handler failed; the claim was released for a retry',
        );
        outcome('failed', status === 202 ? 202 : 500, { code: 'HANDLER_FAILED', event: name, key });
        return errorResponse(500, 'HANDLER_FAILED');
      }
      if (options.logger !== undefined) {
        // The preview (grapheme-safe truncation) is only worth computing for a logger that will print it.
        const preview = safeCall(() => spec.describe(event), name ?? '');
        requestLog.info(
          { outcome: 'processed', status, preview, durationMs: Math.round(elapsed) },
          'processed',
        );
      }
      outcome('processed', status, { event: name, key });
      return okResponse({ ok: true });
    };

    if (ackAfterMs === undefined) return finish(await work, 200);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const early = await Promise.race([
      work,
      new Promise<typeof ACK>((resolve) => {
        timer = setTimeout(() => resolve(ACK), ackAfterMs);
      }),
    ]);
    clearTimeout(timer);
    if (early !== ACK) return finish(early, 200);
    requestLog.info({ ackAfterMs }, 'handler still running: answered 202, processing continues');
    void work.then((error) => finish(error, 202));
    return okResponse({ ok: true, accepted: true }, 202);
  }
  return Object.assign(handle, { stats });
}

const NO_ERROR = Symbol('no error');
const ACK = Symbol('ack');

/** Runs the user's handler; resolves with NO_ERROR or the thrown value (never rejects). */
async function runHandler(fn: () => unknown): Promise<unknown> {
  try {
    await fn();
    return NO_ERROR;
  } catch (err) {
    return err ?? new Error('handler threw a nullish value');
  }
}

async function readBody(
  body: WebhookRequest['body'],
  maxBytes: number,
  timeoutMs: number,
): Promise<Uint8Array> {
  if (body === undefined) {
    throw new WebhookError('RAW_BODY_UNAVAILABLE', 'The adapter passed no request body.');
  }
  const raw: RawBody = typeof body === 'function' ? await body(maxBytes, timeoutMs) : body;
  const bytes = toBytes(raw);
  if (bytes.byteLength > maxBytes) throw bodyTooLarge(maxBytes);
  return bytes;
}

/** The READ_TIMEOUT error, shared by the adapters' streaming readers. */
export function readTimedOut(timeoutMs: number): WebhookError {
  return new WebhookError(
    'READ_TIMEOUT',
    `The request body did not arrive within ${timeoutMs} ms (readTimeoutMs).`,
  );
}

/**
 * The BODY_TOO_LARGE error, shared by the pipeline and the adapters' streaming readers.
 */
export function bodyTooLarge(maxBytes: number): WebhookError {
  return new WebhookError(
    'BODY_TOO_LARGE',
    `The request body is over the ${maxBytes}-byte limit (maxBodyBytes).`,
  );
}

function asWebhookError(err: unknown, code: WebhookError['code'], message: string): WebhookError {
  return isWebhookError(err) ? err : new WebhookError(code, message, { cause: err });
}

function safeCall<T>(fn: () => T, fallback: T): T {
  try {
    return fn();
  } catch {
    return fallback;
  }
}

/** Name and message of a store or client error, for logs (never a payload: these are our own calls). */
function describeError(err: unknown): Record<string, unknown> {
  return err instanceof Error ? { name: err.name, message: err.message } : { value: String(err) };
}

/** `value` when it is a finite positive number, else `fallback`. */
export function positive(value: number | undefined, fallback: number): number {
  return typeof value === 'number' && Number.isFinite(value) && value > 0 ? value : fallback;
}

const JSON_HEADERS = { 'content-type': 'application/json' } as const;

function okResponse(body: Record<string, boolean>, status = 200): WebhookResponse {
  return { status, headers: { ...JSON_HEADERS }, body: JSON.stringify(body) };
}

function errorResponse(
  status: number,
  code: WebhookResponseCode,
  headers: Record<string, string> = {},
): WebhookResponse {
  return { status, headers: { ...JSON_HEADERS, ...headers }, body: JSON.stringify({ error: { code } }) };
}
