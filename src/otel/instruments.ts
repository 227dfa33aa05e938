import type * as Api from '@opentelemetry/api';
import type { InboxStats } from '../inbox/inbox-stats.js';
import type { InboxMessaging, TelemetryOutcome } from '../pipeline/telemetry.js';
import type { Provider, WebhookStats } from '../pipeline/types.js';
import { settleWithin } from '../util/values.js';

// The metrics of `hookguard/otel`. A meter taken before the SDK registers stays a no-op for good (the API
// has no proxy for meters), so the instruments are built on first use and again whenever the global meter
// provider changes. Attributes are low-cardinality only: provider, outcome, code, status, queue; never an
// event id, a key, a conversation or an account.

/** What a run reports, and the gauges a process registers. */
export interface Instruments {
  outcome(outcome: TelemetryOutcome, where: 'inline' | 'worker'): void;
  handler(provider: Provider, where: 'inline' | 'worker', ok: boolean, ms: number): void;
  observeInbox(
    inbox: { stats(): Promise<InboxStats>; readonly messaging?: InboxMessaging },
    options?: { timeoutMs?: number },
  ): () => void;
  observeHandler(handler: { stats(): WebhookStats }): () => void;
}

/** The boundaries semconv advises for `http.server.request.duration`, then longer handler runs (an LLM call). */
const SECONDS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 30, 60];

/** How often the global meter provider is looked up again while gauges are observed. */
const PROVIDER_RECHECK_MS = 1000;

/** Attribute sets kept for reuse (a code no table knows, repeated, must not grow memory). */
const MAX_ATTRIBUTE_SETS = 256;

/** The states `hookguard.inbox.jobs` reports. */
const STATES = ['waiting', 'active', 'delayed', 'failed'] as const;

/** An observed inbox, with its reading under way (at most one at a time). */
interface InboxSource {
  read(): Promise<InboxStats | undefined>;
  readonly attributes: Api.Attributes;
}

type Built = ReturnType<typeof build>;

export function createInstruments(
  api: { metrics: typeof Api.metrics },
  meterProvider: Api.MeterProvider | undefined,
): Instruments {
  const inboxes = new Set<InboxSource>();
  const handlers = new Set<{ stats(): WebhookStats }>();
  let current: Built | undefined;
  let checkedAt = Number.NEGATIVE_INFINITY;
  // The global provider is looked up at most once a second (the lookup costs more than the recording).
  const get = (force = false): Built => {
    const now = performance.now();
    if (
      current !== undefined &&
      !force &&
      (meterProvider !== undefined || now - checkedAt < PROVIDER_RECHECK_MS)
    ) {
      return current;
    }
    checkedAt = now;
    const provider = meterProvider ?? api.metrics.getMeterProvider();
    if (current?.provider !== provider) {
      const retired = current;
      current = build(provider, inboxes, handlers);
      retired?.retire();
    }
    return current;
  };
  const attributes = attributeSets();
  // Gauges are only read by collections, never by a request: a process that observes a queue and serves
  // no request (a worker on an idle queue) would keep gauges on the meter it found first. While something
  // is observed, the global provider is looked up again now and then.
  let watch: ReturnType<typeof setInterval> | undefined;
  const observed = () => {
    get();
    const watching = meterProvider === undefined && inboxes.size + handlers.size > 0;
    if (watching && watch === undefined) {
      watch = setInterval(() => {
        try {
          get(true);
        } catch {
          // A meter provider that throws reports nothing; the next look-up tries again.
        }
      }, PROVIDER_RECHECK_MS);
      (watch as { unref?: () => void }).unref?.();
    } else if (!watching && watch !== undefined) {
      clearInterval(watch);
      watch = undefined;
    }
  };
  return {
    outcome(outcome, where) {
      const built = get();
      const { result, withStatus } = attributes.outcome(outcome);
      if (where === 'worker') return built.runs.add(1, result);
      built.duration.record(outcome.durationMs / 1000, result);
      built.requests.add(1, withStatus);
    },
    handler(provider, where, ok, ms) {
      get().handlerDuration.record(ms / 1000, attributes.handler(provider, where, ok));
    },
    observeInbox(inbox, options = {}) {
      const source = inboxSource(inbox, options.timeoutMs ?? 2000);
      inboxes.add(source);
      observed();
      return () => {
        inboxes.delete(source);
        observed();
      };
    },
    observeHandler(handler) {
      handlers.add(handler);
      observed();
      return () => {
        handlers.delete(handler);
        observed();
      };
    },
  };
}

/**
 * The attribute sets of the instruments, made once per combination (there are few: providers, outcomes,
 * codes, statuses) rather than once per request.
 */
function attributeSets() {
  const sets = new Map<string, { result: Api.Attributes; withStatus: Api.Attributes }>();
  const handlers = new Map<string, Api.Attributes>();
  return {
    outcome(outcome: TelemetryOutcome) {
      const id = `${outcome.provider}|${outcome.result}|${outcome.code ?? ''}|${outcome.status}`;
      let set = sets.get(id);
      if (set === undefined) {
        const result: Api.Attributes = {
          'hookguard.provider': outcome.provider,
          'hookguard.outcome': outcome.result,
        };
        if (outcome.code !== undefined) result['hookguard.error.code'] = outcome.code;
        set = { result, withStatus: { ...result, 'hookguard.response.status_code': outcome.status } };
        if (sets.size < MAX_ATTRIBUTE_SETS) sets.set(id, set);
      }
      return set;
    },
    handler(provider: Provider, where: 'inline' | 'worker', ok: boolean): Api.Attributes {
      const id = `${provider}|${where}|${ok}`;
      let set = handlers.get(id);
      if (set === undefined) {
        set = {
          'hookguard.provider': provider,
          'hookguard.handler.where': where,
          'hookguard.handler.result': ok ? 'ok' : 'failed',
        };
        handlers.set(id, set);
      }
      return set;
    },
  };
}

function build(
  provider: Api.MeterProvider,
  inboxes: ReadonlySet<InboxSource>,
  handlers: ReadonlySet<{ stats(): WebhookStats }>,
) {
  const meter = provider.getMeter('hookguard');
  const seconds = { unit: 's', advice: { explicitBucketBoundaries: SECONDS } };
  const jobs = meter.createObservableGauge('hookguard.inbox.jobs', {
    description: 'Jobs in the inbox queue, by state (failed: the dead letter)',
    unit: '{job}',
  });
  const oldest = meter.createObservableGauge('hookguard.inbox.oldest_waiting_age', {
    description: 'How long the job that has waited longest to run has waited; absent when none waits',
    unit: 's',
  });
  const keys = meter.createObservableGauge('hookguard.store.keys', {
    description: "Keys held by a handler's dedup store (the memory store)",
    unit: '{key}',
  });
  const observe: Api.BatchObservableCallback = async (result) => {
    // read() never rejects: one engine down or one that throws costs its own gauges only.
    const readings = await Promise.all([...inboxes].map(async (s) => ({ s, stats: await s.read() })));
    for (const { s, stats } of readings) {
      if (stats === undefined) continue;
      const queue = { ...s.attributes, 'messaging.destination.name': stats.queueName };
      for (const state of STATES) {
        result.observe(jobs, stats[state], { ...queue, 'hookguard.inbox.state': state });
      }
      if (stats.oldestWaitingMs !== undefined) result.observe(oldest, stats.oldestWaitingMs / 1000, queue);
    }
    for (const handler of handlers) {
      const stats = handler.stats();
      if (stats.storeSize !== undefined)
        result.observe(keys, stats.storeSize, { 'hookguard.provider': stats.provider });
    }
  };
  const observables = [jobs, oldest, keys];
  meter.addBatchObservableCallback(observe, observables);
  return {
    provider,
    /** Stops reporting the gauges to this meter (its provider was replaced). */
    retire() {
      try {
        meter.removeBatchObservableCallback(observe, observables);
      } catch {
        // A provider being replaced that throws: it keeps a callback that reads the same sources.
      }
    },
    requests: meter.createCounter('hookguard.webhook.requests', {
      description: 'Webhook requests answered, by provider, outcome, code and status',
      unit: '{request}',
    }),
    duration: meter.createHistogram('hookguard.webhook.duration', {
      description: 'Time from the request to its answer (with ackAfterMs, to the end of processing)',
      ...seconds,
    }),
    runs: meter.createCounter('hookguard.inbox.runs', {
      description: 'Inbox worker runs, by provider, outcome and code',
      unit: '{run}',
    }),
    handlerDuration: meter.createHistogram('hookguard.handler.duration', {
      description: "Time spent in the user's handler, inline or in an inbox worker",
      ...seconds,
    }),
  };
}

/** An inbox's readings: one at a time, each bounded; a failed or late one reads as nothing. */
function inboxSource(
  inbox: { stats(): Promise<InboxStats>; readonly messaging?: InboxMessaging },
  timeoutMs: number,
): InboxSource {
  let reading: Promise<InboxStats | undefined> | undefined;
  const attributes: Api.Attributes = {};
  if (inbox.messaging !== undefined) attributes['messaging.system'] = inbox.messaging.system;
  const once = async (): Promise<InboxStats | undefined> => {
    let stats: InboxStats | undefined;
    const asked = Promise.resolve()
      .then(() => inbox.stats())
      .then((read) => void (stats = read));
    return (await settleWithin(asked, timeoutMs)) === 'done' ? stats : undefined;
  };
  return {
    attributes,
    read() {
      reading ??= once().finally(() => {
        reading = undefined;
      });
      return reading;
    },
  };
}
