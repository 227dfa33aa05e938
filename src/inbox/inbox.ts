import type { DedupStore } from '../dedup/dedup-store.js';
import type { ChatwootWebhookOptions } from '../pipeline/create-chatwoot-handler.js';
import { chatwootSpec } from '../pipeline/create-chatwoot-handler.js';
import type { StripeWebhookOptions } from '../pipeline/create-stripe-handler.js';
import { stripeSpec } from '../pipeline/create-stripe-handler.js';
import { DEFAULTS } from '../pipeline/defaults.js';
import type { InboxJob } from '../pipeline/enqueue-stage.js';
import type { ProviderSpec } from '../pipeline/provider-spec.js';
import type { InboxMessaging, TelemetryRun, WebhookTelemetry } from '../pipeline/telemetry.js';
import { handlerLogger, safeLogger } from '../pipeline/safe-logger.js';
import type { Logger, Provider, WebhookContext, WebhookOutcome } from '../pipeline/types.js';
import { describeError, field, isThenable, positive } from '../util/values.js';
import { burstOf, type Claimed, type LaneView, runBurst } from './bursts.js';
import { type Marks, markOf, stalenessOf } from './freshness.js';
import { createPersistence } from './until-it-sticks.js';

export type { Inbox, InboxJob } from '../pipeline/enqueue-stage.js';

// The engine-agnostic half of the durable inbox: what a worker does with a job. `hookguard/bullmq` and
// `hookguard/pg-boss` only move jobs; the pipeline's enqueue stage writes them.

/** The handler context in a worker: the web side's, with the attempt number always set (1 on the first run). */
export interface InboxContext extends WebhookContext {
  attempt: number;
}

/**
 * A provider's options as a worker reads them: the web side's object fits as it is, and `secret` may be
 * left out (the web side verified the event before it was queued; a worker verifies nothing).
 */
export type WorkerHandlerOptions<O extends { secret: unknown }> = Omit<O, 'secret'> & {
  secret?: O['secret'];
};

/**
 * Which providers a worker handles: the same options objects as the web side (their `on` / `onEvent`).
 * Several endpoints of one provider on one inbox: give a list, each with its own `namespace`; a job runs
 * the handlers of the endpoint (namespace) that took it.
 */
export interface InboxHandlers {
  chatwoot?:
    WorkerHandlerOptions<ChatwootWebhookOptions> | readonly WorkerHandlerOptions<ChatwootWebhookOptions>[];
  stripe?: WorkerHandlerOptions<StripeWebhookOptions> | readonly WorkerHandlerOptions<StripeWebhookOptions>[];
}

/** Options every inbox worker takes. */
export interface InboxWorkerOptions extends InboxHandlers {
  /**
   * Claims around each run, so a job the engine hands out again (a lock that ran out under a slow handler,
   * a completion the engine could not record) does not run twice. Default: a store on the engine's own
   * server (Redis for BullMQ, PostgreSQL for pg-boss), shared by every worker of the inbox.
   */
  store?: DedupStore;
  /** How long a run may hold its claim; keep it above your slowest handler. Default 60 s. */
  leaseMs?: number;
  /** How long a completed key is remembered. Default 3 days. */
  dedupTtlMs?: number;
  /** Default: warnings and errors to the console; `false` silences. */
  logger?: Logger | false;
  /** One call per run. `status` is what the run would have answered inline (200, 500). */
  onOutcome?: (outcome: WebhookOutcome & { attempt: number }) => void;
  /**
   * Traces and metrics: `openTelemetry(api)` from `hookguard/otel`. Each run gets a `process {queue}` span
   * that continues the trace of the request that queued the job, with the handler's span inside it.
   * Default: the `telemetry` of the handlers' options (the web side's object, shared as it is).
   */
  telemetry?: WebhookTelemetry;
}

/** What a worker counted since it started. */
export type InboxWorkerCounts = Record<'processed' | 'duplicate' | 'ignored' | 'failed' | 'deferred', number>;

/** A running worker. */
export interface InboxWorker {
  /** Counts since it started (`deferred`: jobs given back without using an attempt). */
  stats(): InboxWorkerCounts;
  /**
   * Stops taking jobs and waits for the running ones, at most `timeoutMs` (default 30 s); then it stops
   * anyway: a run still going is abandoned, and the engine hands its job out again after its lock or
   * expiry (the claim in the store keeps it from running twice if it did finish).
   */
  close(timeoutMs?: number): Promise<void>;
}

/** A job kept as failed after its last attempt. */
export interface FailedInboxJob {
  id: string;
  provider: string;
  event: string | undefined;
  /** The dedup key, as the web side computed it (namespace included). */
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
  /** Runs again every job that was failed when it was called; resolves with how many. */
  retryAll(): Promise<number>;
  /**
   * Closes this inbox's workers (each bounded by `timeoutMs`, as `worker.close()`), then its connections
   * (at most a second more, whether the engine answers or not).
   */
  close(timeoutMs?: number): Promise<void>;
}

/** Why a run gave its job back to the engine without using an attempt. */
export type DeferReason = 'in-flight' | 'no-handler' | 'ordered';

/** Thrown by a run that must wait: another worker holds the key, or this worker has no handler for it. */
export class JobDeferred extends Error {
  constructor(readonly reason: DeferReason) {
    super(
      reason === 'in-flight'
        ? 'Another worker is processing this event; the job will be looked at again later.'
        : reason === 'ordered'
          ? 'An earlier event with the same ordering key has not finished; this one waits for it.'
          : 'This worker has no handlers for the job; it is left for another worker.',
    );
    this.name = 'JobDeferred';
  }
}

/** What a worker resolved once: the specs of the providers it handles, the store, the logger. */
export interface JobRunner {
  /** `final`: this is the job's last attempt (for the log line: retried, or dead-lettered). */
  run(job: InboxJob, attempt: number, final: boolean): Promise<'processed' | 'duplicate' | 'ignored'>;
  /** Counts a deferral the engine carried out. */
  deferred(job: InboxJob, reason: DeferReason): void;
  readonly counts: InboxWorkerCounts;
  /** Gives up retrying completions still pending (called when a close ran out of time). */
  abandon(): void;
  readonly log: Required<Logger>;
}

/** Is this an event job the web side wrote (rather than someone else's job on the same queue)? */
export function isInboxJob(data: unknown): data is InboxJob {
  const provider = field(data, 'provider');
  return provider === 'chatwoot' || provider === 'stripe';
}

/** A job a worker may run: ours, with its event (the web side writes only events that parsed as objects). */
export function isRunnableJob(data: unknown): data is InboxJob {
  const event = field(data, 'event');
  return isInboxJob(data) && typeof event === 'object' && event !== null && !Array.isArray(event);
}

/**
 * Builds the function a worker calls for each job: pick the endpoint's handlers, claim the key, run the
 * handler with the context and the attempt, then record the completion until it sticks (or release and
 * rethrow, so the engine retries with backoff). `defaultStore` is the engine's own shared store.
 */
export function createJobRunner(
  options: InboxWorkerOptions,
  defaultStore: () => DedupStore,
  marks?: Marks,
  lanes?: LaneView,
  messaging?: InboxMessaging,
): JobRunner {
  const endpoints = endpointsOf(options);
  const store = options.store ?? defaultStore();
  const leaseMs = positive(options.leaseMs, DEFAULTS.leaseMs);
  const ttlMs = positive(options.dedupTtlMs, DEFAULTS.dedupTtlMs);
  const counts: InboxWorkerCounts = { processed: 0, duplicate: 0, ignored: 0, failed: 0, deferred: 0 };
  const report = reporter(options, counts);
  const log = safeLogger(options.logger, {});
  const completions = persistently();
  const freshness = freshnessOf(marks, ttlMs, completions);

  async function runJob(job: InboxJob, attempt: number, final: boolean, traced: Traced | undefined) {
    const started = performance.now();
    const trace = traced?.trace;
    const spec = endpoints.get(endpointOf(job.provider, job.namespace));
    if (spec === undefined) throw new JobDeferred('no-handler');
    const handler = spec.handlerFor(job.event);
    const { provider, name: event, key, deliveryId } = job;
    const bindings = { provider, event, key, deliveryId, attempt };
    const jobLog = safeLogger(options.logger, bindings);
    if (handler === undefined) return report(job, attempt, started, 'ignored');
    const reading = freshness.begin(job); // beside the claim
    const storeFailed = (err: unknown): never => {
      report(job, attempt, started, 'failed', 'STORE_UNAVAILABLE');
      throw err;
    };
    let token: string | undefined;
    if (job.key !== undefined) {
      trace?.step('claim');
      const claim = await Promise.resolve()
        .then(() => store.claim(job.key!, leaseMs))
        .catch(storeFailed);
      if (claim.status === 'duplicate') return report(job, attempt, started, 'duplicate');
      if (claim.status === 'in-flight') throw new JobDeferred('in-flight');
      token = claim.token;
    }
    const release = async () => {
      if (token !== undefined) await Promise.resolve(store.release(job.key!, token)).catch(() => undefined);
    };
    const ctx = contextOf(job, handlerLogger(options.logger, jobLog, bindings), attempt);
    const fresh = await reading(release).catch(storeFailed);
    if (fresh !== undefined) ctx.stale = fresh.stale;
    let batch: Claimed[];
    try {
      const joins = (other: InboxJob) => joinsBatch(job, other, spec.handlerFor(other.event) === handler);
      const call = () => invoke(handler, job, ctx, lanes && { lanes, store, leaseMs, joins, final }, trace);
      trace?.step('handler');
      batch = await (trace === undefined ? call() : trace.within(call));
    } catch (err) {
      if (!(err instanceof JobDeferred)) trace?.step(undefined, 'HANDLER_FAILED', err);
      await release();
      if (err instanceof JobDeferred) throw err; // a coalesced call waits for an earlier run's claims
      if (traced !== undefined) traced.handlerFailed = true;
      logFailure(jobLog, err, final);
      report(job, attempt, started, 'failed');
      throw err;
    }
    trace?.step();
    warnPastLease(jobLog, performance.now() - started, leaseMs);
    // The mark first: a run cut off between the two runs again and finds its own mark (not stale).
    if (fresh !== undefined) await freshness.raise(fresh.marked, jobLog);
    // The work is done: the completion must stick, or a redelivery would run it again. A coalesced call's
    // keys are recorded all at once (a process killed in between leaves as few of them as can be).
    const done = [...(token === undefined ? [] : [{ job, token }]), ...batch];
    await Promise.all(
      done.map((c) => completions.record(() => store.complete(c.job.key!, c.token, ttlMs), jobLog)),
    );
    for (const other of batch) report(other.job, attempt, started, 'processed');
    return report(job, attempt, started, 'processed');
  }

  const run = followed(telemetryOf(options), messaging, runJob);
  return { run, deferred: deferrals(counts, log), counts, abandon: completions.abandon, log };
}

/**
 * The worker's `telemetry`, else one given with an endpoint's handlers (the web side's options object,
 * shared with the worker as it is).
 */
function telemetryOf(options: InboxWorkerOptions): WebhookTelemetry | undefined {
  const endpoints: readonly { telemetry?: WebhookTelemetry }[] = [
    ...listOf(options.chatwoot),
    ...listOf(options.stripe),
  ];
  return options.telemetry ?? endpoints.find((e) => e.telemetry !== undefined)?.telemetry;
}

/** A run's telemetry, and whether its handler failed (rather than the store). */
interface Traced {
  readonly trace: TelemetryRun;
  handlerFailed: boolean;
}

/** Runs jobs, followed by the telemetry when there is one. */
function followed(
  telemetry: WebhookTelemetry | undefined,
  messaging: InboxMessaging | undefined,
  runJob: (
    job: InboxJob,
    attempt: number,
    final: boolean,
    traced: Traced | undefined,
  ) => ReturnType<JobRunner['run']>,
): JobRunner['run'] {
  if (telemetry === undefined) return (job, attempt, final) => runJob(job, attempt, final, undefined);
  return async (job, attempt, final) => {
    const trace = telemetry.job(job, attempt, messaging);
    const started = performance.now();
    const outcome = { provider: job.provider, event: job.name };
    const traced: Traced = { trace, handlerFailed: false };
    try {
      const result = await runJob(job, attempt, final, traced);
      trace.end({ ...outcome, result, status: 200, durationMs: performance.now() - started });
      return result;
    } catch (err) {
      const durationMs = performance.now() - started;
      if (err instanceof JobDeferred) trace.end({ ...outcome, result: 'deferred', status: 200, durationMs });
      else {
        const code = traced.handlerFailed ? 'HANDLER_FAILED' : 'STORE_UNAVAILABLE';
        trace.end({ ...outcome, result: 'failed', status: 500, code, durationMs });
      }
      throw err;
    }
  };
}

function warnPastLease(jobLog: Required<Logger>, elapsed: number, leaseMs: number): void {
  if (elapsed <= leaseMs) return;
  jobLog.warn(
    { durationMs: Math.round(elapsed), leaseMs },
    'the handler outlived its lease: another worker could have run it too; raise leaseMs',
  );
}

/**
 * Calls the handler with the event; a coalesced one (`coalesce()`) in an ordered worker with the burst the
 * job heads. Resolves with the messages claimed beside the job.
 */
async function invoke(
  handler: (event: unknown, ctx: InboxContext) => unknown,
  job: InboxJob,
  ctx: InboxContext,
  ordered: Omit<Parameters<typeof runBurst>[0], 'burst' | 'head' | 'ctx'> | undefined,
  trace: TelemetryRun | undefined,
): Promise<Claimed[]> {
  const burst = ordered === undefined ? undefined : burstOf(handler);
  if (burst === undefined || typeof job.orderKey !== 'string' || job.key === undefined) {
    const result = handler(job.event, ctx);
    if (isThenable(result)) await result;
    return [];
  }
  const claimed = await runBurst({ ...ordered!, burst, head: job, ctx });
  trace?.link(claimed.map((c) => c.job.traceContext));
  return claimed;
}

function logFailure(jobLog: Required<Logger>, err: unknown, final: boolean): void {
  jobLog.error(
    { err: describeError(err) },
    final
      ? 'handler failed on its last attempt: the job is kept as failed (dead letter); retry it with `hookguard inbox retry`'
      : 'handler failed in the inbox worker; the engine will retry it with backoff',
  );
}

/** Does `other` (behind `head` in its lane) join the head's coalesced call: same endpoint and handler, a key? */
function joinsBatch(head: InboxJob, other: InboxJob, sameHandler: boolean): boolean {
  return (
    sameHandler &&
    isRunnableJob(other) &&
    other.provider === head.provider &&
    other.namespace === head.namespace &&
    other.key !== undefined
  );
}

/** Counts a deferral; warns once per endpoint that reaches a worker without its handlers. */
function deferrals(counts: InboxWorkerCounts, log: Required<Logger>) {
  const warnedNoHandler = new Set<string>();
  return (job: InboxJob, reason: DeferReason): void => {
    counts.deferred++;
    if (reason !== 'no-handler') return;
    const endpoint = endpointOf(job.provider, job.namespace);
    if (warnedNoHandler.has(endpoint)) return;
    warnedNoHandler.add(endpoint);
    log.warn(
      { provider: job.provider, namespace: job.namespace },
      `A ${job.provider} job${job.namespace === undefined ? '' : ` of namespace "${job.namespace}"`} reached a worker without handlers for it: it is given back (no attempt used) for a worker that has them. If none does, start one with these handlers.`,
    );
  };
}

/** `ctx.stale` of a Stripe run (see freshness.ts), and its object's mark once the handler returned. */
function freshnessOf(marks: Marks | undefined, ttlMs: number, completions: ReturnType<typeof persistently>) {
  const read = async (job: InboxJob) => {
    const marked = marks === undefined ? undefined : markOf(job);
    if (marked === undefined) return undefined;
    return { marked, stale: stalenessOf(marked.mark, await marks!.read(marked.object)) };
  };
  return {
    /**
     * Starts reading the job's mark, beside its claim (a round trip of latency saved: in an ordered inbox
     * no other run of the object can be raising the mark now). The function it returns waits for the
     * read; a failed read calls `release` and throws, and the job is retried like a failed handler.
     */
    begin(job: InboxJob) {
      const reading = read(job).then(
        (fresh) => ({ fresh }),
        (err: unknown) => ({ err }),
      );
      return async (release: () => Promise<void>) => {
        const result = await reading;
        if ('fresh' in result) return result.fresh;
        await release();
        throw result.err;
      };
    },
    raise: (marked: NonNullable<ReturnType<typeof markOf>>, jobLog: Required<Logger>) =>
      completions.record(() => marks!.raise(marked.object, marked.mark, ttlMs), jobLog, 'the stale mark'),
  };
}

/** The handlers of each endpoint (provider and namespace) a worker serves. */
function endpointsOf(options: InboxHandlers): Map<string, ProviderSpec<unknown>> {
  const endpoints = new Map<string, ProviderSpec<unknown>>();
  const add = (provider: Provider, list: readonly { namespace?: string }[], make: (o: never) => unknown) => {
    for (const own of list) {
      const endpoint = endpointOf(provider, own.namespace);
      if (endpoints.has(endpoint)) {
        throw new TypeError(
          `Two ${provider} handler sets of this worker have the same namespace: give each endpoint its own namespace (as on the web side).`,
        );
      }
      endpoints.set(endpoint, make(own as never) as ProviderSpec<unknown>);
    }
  };
  add('chatwoot', listOf(options.chatwoot), chatwootSpec);
  add('stripe', listOf(options.stripe), stripeSpec);
  return endpoints;
}

const listOf = <T>(value: T | readonly T[] | undefined): readonly T[] =>
  value === undefined ? [] : Array.isArray(value) ? (value as readonly T[]) : [value as T];

const endpointOf = (provider: string, namespace: string | undefined) =>
  `${provider}\u0000${typeof namespace === 'string' ? namespace : ''}`;

function contextOf(job: InboxJob, log: Required<Logger>, attempt: number): InboxContext {
  return {
    attempt,
    provider: job.provider,
    key: job.key,
    deliveryId: job.deliveryId,
    headers: {},
    log,
    req: undefined,
  };
}

/** Completions recorded until they stick (see `createPersistence`), with what the log needs to say. */
function persistently() {
  const persistence = createPersistence();
  async function record(
    complete: () => unknown,
    jobLog: Required<Logger>,
    what = 'completion',
  ): Promise<void> {
    const result = await persistence.untilItSticks(complete, (err) =>
      jobLog.error(
        { err: describeError(err) },
        `could not record ${what} in the store; retrying until it sticks`,
      ),
    );
    if (result.stuck && result.tries > 1) {
      jobLog.warn({ tries: result.tries }, 'completion recorded in the dedup store after it came back');
    } else if (!result.stuck) {
      jobLog.error(
        { err: describeError(result.err), tries: result.tries },
        'the worker stopped before the dedup store took this completion: a redelivery may run it again',
      );
    }
  }
  return { record, abandon: persistence.abandon };
}

/** Counts a run's outcome and reports it to `onOutcome` (which must not fail the job). */
function reporter(options: InboxWorkerOptions, counts: InboxWorkerCounts) {
  return <R extends 'processed' | 'duplicate' | 'ignored' | 'failed'>(
    job: InboxJob,
    attempt: number,
    started: number,
    result: R,
    code: 'HANDLER_FAILED' | 'STORE_UNAVAILABLE' = 'HANDLER_FAILED',
  ): R => {
    counts[result]++;
    try {
      options.onOutcome?.({
        provider: job.provider,
        result,
        status: result === 'failed' ? 500 : 200,
        ...(result === 'failed' ? { code } : {}),
        ...(job.name === undefined ? {} : { event: job.name }),
        ...(job.key === undefined ? {} : { key: job.key }),
        durationMs: performance.now() - started,
        attempt,
      });
    } catch {
      // A metrics hook must not fail the job.
    }
    return result;
  };
}
