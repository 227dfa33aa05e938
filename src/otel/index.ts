import type * as Api from '@opentelemetry/api';
import type { InboxStats } from '../inbox/inbox-stats.js';
import type { InboxJob } from '../pipeline/enqueue-stage.js';
import type {
  InboxMessaging,
  TelemetryOutcome,
  TelemetryRun,
  TelemetryStep,
  WebhookTelemetry,
} from '../pipeline/telemetry.js';
import type { Provider, WebhookStats } from '../pipeline/types.js';
import { boundedEventName } from '../text/event-name.js';
import { createInstruments, type Instruments } from './instruments.js';

export type {
  InboxMessaging,
  TelemetryOutcome,
  TelemetryRun,
  TelemetryStep,
  WebhookTelemetry,
} from '../pipeline/telemetry.js';

// `hookguard/otel`: the `telemetry` option over the OpenTelemetry API the application passes in (its own
// copy, so the spans reach its SDK whatever version of the API it runs). Spans follow the semantic
// conventions where one applies (messaging: `send` and `process`, `messaging.*`; `error.type`) and carry
// `hookguard.*` attributes elsewhere; never a payload, a header, a signature, a secret or a key.

/** The parts of the OpenTelemetry API used here: pass `import * as api from '@opentelemetry/api'`. */
export type OpenTelemetryApi = Pick<
  typeof Api,
  'trace' | 'context' | 'propagation' | 'metrics' | 'ROOT_CONTEXT'
>;

/** Options of {@link openTelemetry}. */
export interface OpenTelemetryOptions {
  /** Where spans go; default the global one (`trace.getTracerProvider()`, set by your SDK). */
  tracerProvider?: Api.TracerProvider;
  /** Where metrics go; default the global one, looked up again when it changes (an SDK started later). */
  meterProvider?: Api.MeterProvider;
  /** `false`: no spans. */
  traces?: boolean;
  /** `false`: no metrics. */
  metrics?: boolean;
}

/** The `telemetry` option, and the gauges of what a process can look at. */
export interface HookguardTelemetry extends WebhookTelemetry {
  /**
   * Reports an inbox's queue as gauges, read from `inbox.stats()` at each collection (at most one reading
   * at a time, bounded by `timeoutMs`, default 2 s; a reading that fails or is late reports nothing).
   * `hookguard.inbox.jobs` (by `hookguard.inbox.state`: waiting, active, delayed, failed) and
   * `hookguard.inbox.oldest_waiting_age` (s). Call it in one process per queue (a worker): each process
   * that observes a queue reports it, and their sum would count it twice. Returns a function that stops it.
   */
  observeInbox(
    inbox: { stats(): Promise<InboxStats>; readonly messaging?: InboxMessaging },
    options?: { timeoutMs?: number },
  ): () => void;
  /**
   * Reports the keys a handler's store holds (`hookguard.store.keys`, the memory store's size), by
   * provider. Returns a function that stops it.
   */
  observeHandler(handler: { stats(): WebhookStats }): () => void;
}

/** Longest trace context kept from a job, per entry, and how many entries. */
const CARRIER_LIMITS = { entries: 8, keyLength: 64, valueLength: 512 } as const;

const SPAN_KIND = { INTERNAL: 0, PRODUCER: 3, CONSUMER: 4 } as const;
/** Most links a coalesced run's span gets (one per message of the burst). */
const MAX_LINKS = 128;
const STATUS_ERROR = 2;

/**
 * Traces and metrics for hookguard through OpenTelemetry. Start your SDK first, then pass the API in:
 *
 * @example
 * ```ts
 * import * as api from '@opentelemetry/api';
 * import { openTelemetry } from 'hookguard/otel';
 * import { chatwootWebhook } from 'hookguard/express';
 * const telemetry = openTelemetry(api);
 * app.post('/cw', chatwootWebhook({ secret: process.env.CHATWOOT_SECRET, inbox, telemetry, on: {} }));
 * inbox.worker({ chatwoot: { on: {} }, telemetry }); // the worker's spans continue each request's trace
 * telemetry.observeInbox(inbox); // queue gauges, in one process per queue
 * ```
 */
export function openTelemetry(api: OpenTelemetryApi, options: OpenTelemetryOptions = {}): HookguardTelemetry {
  const tracer =
    options.traces === false
      ? undefined
      : (options.tracerProvider ?? api.trace.getTracerProvider()).getTracer('hookguard');
  const instruments = options.metrics === false ? undefined : createInstruments(api, options.meterProvider);
  return {
    request(provider: Provider, inbox: InboxMessaging | undefined): TelemetryRun {
      let started: Started | undefined;
      try {
        if (tracer !== undefined) {
          const parent = api.context.active();
          const attributes = { 'hookguard.provider': provider };
          const span = tracer.startSpan(
            `hookguard.webhook ${provider}`,
            { kind: SPAN_KIND.INTERNAL, attributes },
            parent,
          );
          started = { span, parent };
        }
      } catch {
        // A tracer that throws (a span processor's onStart): this request goes without spans.
      }
      return new Run({ api, tracer, instruments, provider, where: 'inline', inbox }, started);
    },
    job(job: InboxJob, attempt: number, inbox: InboxMessaging | undefined): TelemetryRun {
      let started: Started | undefined;
      try {
        started = tracer === undefined ? undefined : startProcess(api, tracer, job, attempt, inbox);
      } catch {
        // A propagator or tracer that throws: this run goes without spans.
      }
      return new Run({ api, tracer, instruments, provider: job.provider, where: 'worker', inbox }, started);
    },
    observeInbox: (inbox, observeOptions) => instruments?.observeInbox(inbox, observeOptions) ?? noop,
    observeHandler: (handler) => instruments?.observeHandler(handler) ?? noop,
  };
}

const noop = () => undefined;

/** A run's own span and the context it was started in. */
interface Started {
  span: Api.Span;
  parent: Api.Context;
}

/**
 * A worker run's `process {queue}` span. The request's trace context is its parent (semconv allows it for
 * a single message), not the context the worker loop happens to run in.
 */
function startProcess(
  api: OpenTelemetryApi,
  tracer: Api.Tracer,
  job: InboxJob,
  attempt: number,
  inbox: InboxMessaging | undefined,
): Started {
  const parent = api.propagation.extract(api.ROOT_CONTEXT, carrierOf(job.traceContext));
  const attributes: Api.Attributes = {
    ...messagingAttributes(inbox, 'process', 'process', job.key),
    'hookguard.provider': job.provider,
    'hookguard.attempt': attempt,
  };
  const event = boundedEventName(job.name);
  if (event !== undefined) attributes['hookguard.event'] = event;
  const kind = SPAN_KIND.CONSUMER;
  return {
    span: tracer.startSpan(`process ${inbox?.destination ?? 'inbox'}`, { kind, attributes }, parent),
    parent,
  };
}

/** What a run is of, and what it reports to. */
interface RunOf {
  readonly api: OpenTelemetryApi;
  readonly tracer: Api.Tracer | undefined;
  readonly instruments: Instruments | undefined;
  readonly provider: Provider;
  readonly where: 'inline' | 'worker';
  readonly inbox: InboxMessaging | undefined;
}

/** The step under way: its span (when the run records), and when it began. */
interface OpenStep {
  readonly name: TelemetryStep | 'send';
  readonly span: Api.Span | undefined;
  readonly at: number;
}

/**
 * The spans and measures of one request or worker run (a class: one allocation per request, its methods
 * shared). Nothing here may throw into the pipeline or the worker: an SDK part that throws (a span
 * processor, a propagator, a meter) costs its own span or measure, never an answer or an event.
 */
class Run implements TelemetryRun {
  /** The context with this run's span: the parent of its steps. */
  private readonly own: Api.Context | undefined;
  /**
   * Who starts the step spans: none under a span that records nothing (no SDK, or sampled out); the trace
   * context still travels, from the run's own span.
   */
  private readonly steps: Api.Tracer | undefined;
  private open: OpenStep | undefined = undefined;

  constructor(
    private readonly of: RunOf,
    private readonly started: Started | undefined,
  ) {
    let own: Api.Context | undefined;
    let steps: Api.Tracer | undefined;
    try {
      own = started === undefined ? undefined : of.api.trace.setSpan(started.parent, started.span);
      steps = started !== undefined && started.span.isRecording() ? of.tracer : undefined;
    } catch {
      own = steps = undefined;
    }
    this.own = own;
    this.steps = steps;
  }

  step(next?: TelemetryStep, code?: string, error?: unknown): void {
    if (next === undefined) return this.close(code, error);
    this.close();
    let span: Api.Span | undefined;
    try {
      span = this.steps?.startSpan(`hookguard.${next}`, { kind: SPAN_KIND.INTERNAL }, this.own);
    } catch {
      span = undefined;
    }
    this.open = { name: next, span, at: performance.now() };
  }

  within<T>(fn: () => T): T {
    const { own } = this;
    if (own === undefined) return fn();
    let active: Api.Context;
    try {
      const span = this.open?.span;
      active = span === undefined ? own : this.of.api.trace.setSpan(own, span);
    } catch {
      return fn();
    }
    return this.of.api.context.with(active, fn);
  }

  send(key: string | undefined): Record<string, string> | undefined {
    this.close();
    const { inbox, api } = this.of;
    let span: Api.Span | undefined;
    try {
      span = this.steps?.startSpan(
        `send ${inbox?.destination ?? 'inbox'}`,
        { kind: SPAN_KIND.PRODUCER, attributes: messagingAttributes(inbox, 'send', 'send', key) },
        this.own,
      );
    } catch {
      span = undefined;
    }
    this.open = { name: 'send', span, at: performance.now() };
    const sent = span ?? this.started?.span;
    if (sent === undefined) return undefined;
    try {
      // From the root, not the request's context: the sender's own `baggage` header stays out of the job.
      const carrier: Record<string, string> = {};
      api.propagation.inject(api.trace.setSpan(api.ROOT_CONTEXT, sent), carrier);
      return Object.keys(carrier).length === 0 ? undefined : carrier;
    } catch {
      return undefined;
    }
  }

  link(carriers: readonly (Record<string, string> | undefined)[]): void {
    const span = this.started?.span;
    if (span === undefined || this.steps === undefined || typeof span.addLink !== 'function') return;
    const { api } = this.of;
    try {
      for (const carrier of carriers.slice(0, MAX_LINKS)) {
        const context = api.trace.getSpanContext(
          api.propagation.extract(api.ROOT_CONTEXT, carrierOf(carrier)),
        );
        if (context !== undefined && api.trace.isSpanContextValid(context)) span.addLink({ context });
      }
    } catch {
      // A propagator that throws costs the links only.
    }
  }

  end(outcome: TelemetryOutcome): void {
    const failing = outcome.result === 'failed' || outcome.result === 'rejected';
    try {
      const step = this.open?.span;
      if (step !== undefined && !failing) step.setAttribute('hookguard.outcome', outcome.result);
    } catch {
      // The step still ends below.
    }
    this.close(failing ? (outcome.code ?? 'FAILED') : undefined);
    try {
      this.of.instruments?.outcome(outcome, this.of.where);
    } catch {
      // A meter that throws loses this measure only.
    }
    const span = this.started?.span;
    if (span === undefined) return;
    try {
      if (this.steps !== undefined) {
        span.setAttributes(outcomeAttributes(outcome, this.of.where));
        if (outcome.result === 'failed') failed(span, outcome.code ?? 'FAILED', undefined);
      }
    } finally {
      ended(span);
    }
  }

  private close(code?: string, error?: unknown): void {
    const { open } = this;
    if (open === undefined) return;
    this.open = undefined;
    try {
      if (open.name === 'handler') {
        const { instruments, provider, where } = this.of;
        instruments?.handler(provider, where, code === undefined, performance.now() - open.at);
      }
    } catch {
      // A meter that throws loses this measure only.
    }
    if (open.span === undefined) return;
    try {
      if (code !== undefined) failed(open.span, code, error);
    } finally {
      ended(open.span);
    }
  }
}

/** Ends a span; a span processor that throws on the end costs nothing more. */
function ended(span: Api.Span): void {
  try {
    span.end();
  } catch {
    // The span is lost to the exporter, nothing else.
  }
}

/** Marks a span failed with a code (`error.type`); of a handler's error, only its type is kept. */
function failed(span: Api.Span, code: string, error: unknown): void {
  span.setStatus({ code: STATUS_ERROR, message: code });
  span.setAttribute('error.type', code);
  const type = error instanceof Error ? error.name : undefined;
  if (type !== undefined && /^[A-Za-z0-9_.$]{1,64}$/.test(type)) span.setAttribute('exception.type', type);
}

function outcomeAttributes(outcome: TelemetryOutcome, where: 'inline' | 'worker'): Api.Attributes {
  const attributes: Api.Attributes = { 'hookguard.outcome': outcome.result };
  if (where === 'inline') attributes['hookguard.response.status_code'] = outcome.status;
  if (outcome.code !== undefined) attributes['hookguard.error.code'] = outcome.code;
  const event = boundedEventName(outcome.event);
  if (event !== undefined) attributes['hookguard.event'] = event;
  return attributes;
}

/** The messaging semantic conventions' attributes of a send or a process. */
function messagingAttributes(
  inbox: InboxMessaging | undefined,
  type: 'send' | 'process',
  name: string,
  key: string | undefined,
): Api.Attributes {
  const attributes: Api.Attributes = {
    'messaging.system': inbox?.system ?? 'hookguard',
    'messaging.operation.type': type,
    'messaging.operation.name': name,
  };
  if (inbox !== undefined) attributes['messaging.destination.name'] = inbox.destination;
  if (inbox !== undefined && key !== undefined) attributes['messaging.message.id'] = inbox.messageId(key);
  return attributes;
}

/** A job's trace context, as far as it is a small map of strings (a job is data: nothing more is trusted). */
function carrierOf(value: unknown): Record<string, string> {
  const carrier: Record<string, string> = {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return carrier;
  let entries = 0;
  for (const [key, text] of Object.entries(value as Record<string, unknown>)) {
    if (entries === CARRIER_LIMITS.entries) break;
    if (typeof text !== 'string' || key.length > CARRIER_LIMITS.keyLength) continue;
    if (text.length > CARRIER_LIMITS.valueLength) continue;
    carrier[key] = text;
    entries++;
  }
  return carrier;
}
