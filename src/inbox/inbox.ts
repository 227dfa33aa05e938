import type { DedupStore } from '../dedup/dedup-store.js';
import { WebhookError } from '../errors/webhook-error.js';
import type { ChatwootWebhookOptions } from '../pipeline/create-chatwoot-handler.js';
import { chatwootSpec } from '../pipeline/create-chatwoot-handler.js';
import type { StripeWebhookOptions } from '../pipeline/create-stripe-handler.js';
import { stripeSpec } from '../pipeline/create-stripe-handler.js';
import { DEFAULTS } from '../pipeline/defaults.js';
import type { ProviderSpec } from '../pipeline/provider-spec.js';
import { safeLogger } from '../pipeline/safe-logger.js';
import type { Logger, Provider, WebhookContext, WebhookOutcome } from '../pipeline/types.js';
import { createMemoryDedupStore } from '../stores/memory.js';
import { describeError, isThenable, positive } from '../util/values.js';

// The engine-agnostic half of the durable inbox: what the web side writes, and what a worker does with
// a job. `hookguard/bullmq` and `hookguard/pg-boss` only move jobs.

/** What the web side writes to the inbox: the verified, parsed event and what the pipeline learnt. */
export interface InboxJob {
  provider: Provider;
  /** The event as parsed from the signed body. */
  event: unknown;
  /** The dedup key (namespace included); the engine dedupes on it. Undefined: nothing identifies it. */
  key: string | undefined;
  deliveryId: string | undefined;
  /** The event name, bounded and on one line (for the engine's dashboards). */
  name: string | undefined;
}

/**
 * A durable inbox as the pipeline sees it. `enqueue` resolves only once the engine acknowledged the write:
 * `'queued'`, or `'duplicate'` when a job with this key is already queued, running, done or dead-lettered.
 */
export interface Inbox {
  enqueue(job: InboxJob): Promise<'queued' | 'duplicate'>;
}

/** The handler context in a worker: the web side's, plus the attempt number (1 on the first run). */
export interface InboxContext extends WebhookContext {
  attempt: number;
}

/** Which providers a worker handles: the same options objects as the web side (their `on` / `onEvent`). */
export interface InboxHandlers {
  chatwoot?: ChatwootWebhookOptions;
  stripe?: StripeWebhookOptions;
}

/** Options every inbox worker takes. */
export interface InboxWorkerOptions extends InboxHandlers {
  /** Claims around each run, so a job the engine hands out again after it completed does not run twice. Default: a memory store (one worker process); share Redis or PostgreSQL across workers. */
  store?: DedupStore;
  /** How long a run may hold its claim; keep it above your slowest handler. Default 60 s. */
  leaseMs?: number;
  /** How long a completed key is remembered. Default 3 days. */
  dedupTtlMs?: number;
  /** Default: warnings and errors to the console; `false` silences. */
  logger?: Logger | false;
  /** One call per run. `status` is what the run would have answered inline (200, 500). */
  onOutcome?: (outcome: WebhookOutcome & { attempt: number }) => void;
}

/** What both engines' inboxes give operators and shutdown code. */
/** A running worker. */
export interface InboxWorker {
  /** Counts since it started. */
  stats(): Record<'processed' | 'duplicate' | 'ignored' | 'failed', number>;
  /** Stops taking jobs and waits for the running ones (at most `timeoutMs`, default 30 s; then stops anyway). */
  close(timeoutMs?: number): Promise<void>;
}

/** A job kept as failed after its last attempt. */
export interface FailedInboxJob {
  id: string;
  provider: string;
  event: string | undefined;
  key: string | undefined;
  attempts: number;
  error: string;
  failedAt: string | undefined;
}

/** The dead letter, as both engines' inboxes expose it (and `hookguard inbox` drives it). */
export interface DeadLetter {
  /** Failed jobs (their last attempt failed), newest first. */
  failed(limit?: number): Promise<FailedInboxJob[]>;
  /** Runs a failed job again; false when there is no such failed job. */
  retry(id: string): Promise<boolean>;
  /** Runs every failed job again; resolves with how many. */
  retryAll(): Promise<number>;
  /** BullMQ: closes the queue's connection (workers close on their own). pg-boss: stops pg-boss and its workers, waiting for running jobs. */
  close(): Promise<void>;
}

/** Thrown by a run whose key another worker holds: the engine retries the job later. */
export class InFlightElsewhere extends Error {
  constructor() {
    super('Another worker is processing this event; the job will be retried.');
    this.name = 'InFlightElsewhere';
  }
}

/** What a worker resolved once: the specs of the providers it handles, the store, the logger. */
export interface JobRunner {
  run(job: InboxJob, attempt: number): Promise<'processed' | 'duplicate' | 'ignored'>;
  readonly counts: Record<'processed' | 'duplicate' | 'ignored' | 'failed', number>;
}

/**
 * Builds the function a worker calls for each job: claim the key, run the provider's handler with the
 * context and the attempt, complete (or release and rethrow, so the engine retries with backoff).
 */
export function createJobRunner(options: InboxWorkerOptions): JobRunner {
  const specs = specsOf(options);
  const store = options.store ?? createMemoryDedupStore();
  const leaseMs = positive(options.leaseMs, DEFAULTS.leaseMs);
  const ttlMs = positive(options.dedupTtlMs, DEFAULTS.dedupTtlMs);
  const counts = { processed: 0, duplicate: 0, ignored: 0, failed: 0 };
  const report = reporter(options, counts);

  async function run(job: InboxJob, attempt: number): Promise<'processed' | 'duplicate' | 'ignored'> {
    const started = performance.now();
    const spec = specs[job.provider];
    if (spec === undefined) {
      throw new WebhookError('HANDLER_FAILED', `This worker has no ${String(job.provider)} handlers.`);
    }
    const handler = spec.handlerFor(job.event);
    const log = safeLogger(options.logger, {
      provider: job.provider,
      event: job.name,
      key: job.key,
      deliveryId: job.deliveryId,
      attempt,
    });
    if (handler === undefined) {
      report(job, attempt, started, 'ignored');
      return 'ignored';
    }
    let token: string | undefined;
    if (job.key !== undefined) {
      const claim = await store.claim(job.key, leaseMs);
      if (claim.status === 'duplicate') {
        report(job, attempt, started, 'duplicate');
        return 'duplicate';
      }
      if (claim.status === 'in-flight') throw new InFlightElsewhere();
      token = claim.token;
    }
    const ctx: InboxContext = {
      provider: job.provider,
      key: job.key,
      deliveryId: job.deliveryId,
      headers: {},
      log,
      attempt,
      req: undefined,
    };
    try {
      const result = handler(job.event, ctx);
      if (isThenable(result)) await result;
    } catch (err) {
      if (token !== undefined) await Promise.resolve(store.release(job.key!, token)).catch(() => undefined);
      log.error({ err: describeError(err) }, 'handler failed in the inbox worker; the engine will retry it');
      report(job, attempt, started, 'failed');
      throw err;
    }
    if (token !== undefined) {
      // The work is done: a store that fails now must not make the engine run it again.
      await Promise.resolve(store.complete(job.key!, token, ttlMs)).catch((err: unknown) =>
        log.error({ err: describeError(err) }, 'could not record completion in the dedup store'),
      );
    }
    report(job, attempt, started, 'processed');
    return 'processed';
  }
  return { run, counts };
}

function specsOf(options: InboxHandlers): Partial<Record<Provider, ProviderSpec<unknown>>> {
  const specs: Partial<Record<Provider, ProviderSpec<unknown>>> = {};
  if (options.chatwoot !== undefined)
    specs.chatwoot = chatwootSpec(options.chatwoot) as ProviderSpec<unknown>;
  if (options.stripe !== undefined) specs.stripe = stripeSpec(options.stripe) as ProviderSpec<unknown>;
  return specs;
}

/** Counts a run's outcome and reports it to `onOutcome` (which must not fail the job). */
function reporter(options: InboxWorkerOptions, counts: JobRunner['counts']) {
  return (job: InboxJob, attempt: number, started: number, result: keyof JobRunner['counts']): void => {
    counts[result]++;
    try {
      options.onOutcome?.({
        provider: job.provider,
        result,
        status: result === 'failed' ? 500 : 200,
        ...(result === 'failed' ? { code: 'HANDLER_FAILED' as const } : {}),
        ...(job.name === undefined ? {} : { event: job.name }),
        ...(job.key === undefined ? {} : { key: job.key }),
        durationMs: performance.now() - started,
        attempt,
      });
    } catch {
      // A metrics hook must not fail the job.
    }
  };
}
