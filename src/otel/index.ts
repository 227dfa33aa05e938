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
  const follow = (
    start: (tracer: Api.Tracer) => { span: Api.Span; parent: Api.Context },
    run: Omit<RunOf, 'api' | 'tracer' | 'instruments'>,
  ): TelemetryRun => {
    const started = tracer === undefined ? undefined : start(tracer);
    return createRun({ ...run, api, tracer, instruments }, started);
  };
  return {
    request(provider: Provider, inbox: InboxMessaging | undefined): TelemetryRun {
      return follow(
        (t) => {
          const parent = api.context.active();
          const span = t.startSpan(
            `hookguard.webhook ${provider}`,
            { kind: SPAN_KIND.INTERNAL, attributes: { 'hookguard.provider': provider } },
            parent,
          );
          return { span, parent };
        },
        { provider, where: 'inline', inbox },
      );
    },
    job(job: InboxJob, attempt: number, inbox: InboxMessaging | undefined): TelemetryRun {
      return follow(
        (t) => {
          // The request's trace context is the parent (semconv allows it for a single message), not the
          // context the worker loop happens to run in.
          const parent = api.propagation.extract(api.ROOT_CONTEXT, carrierOf(job.traceContext));
          const destination = inbox?.destination ?? 'inbox';
          const attributes: Api.Attributes = {
            ...messagingAttributes(inbox, 'process', 'process', job.key),
            'hookguard.provider': job.provider,
            'hookguard.attempt': attempt,
          };
          if (job.name !== undefined) attributes['hookguard.event'] = job.name;
          const span = t.startSpan(
            `process ${destination}`,
            { kind: SPAN_KIND.CONSUMER, attributes },
            parent,
          );
          return { span, parent };
        },
        { provider: job.provider, where: 'worker', inbox },
      );
    },
    observeInbox: (inbox, observeOptions) => instruments?.observeInbox(inbox, observeOptions) ?? noop,
    observeHandler: (handler) => instruments?.observeHandler(handler) ?? noop,
  };
}

const noop = () => undefined;

/** What a run is of, and what it reports to. */
interface RunOf {
  api: OpenTelemetryApi;
  tracer: Api.Tracer | undefined;
  instruments: Instruments | undefined;
  provider: Provider;
  where: 'inline' | 'worker';
  inbox: InboxMessaging | undefined;
}

/** The spans and measures of one request or worker run. */
function createRun(
  { api, tracer, instruments, provider, where, inbox }: RunOf,
  started: { span: Api.Span; parent: Api.Context } | undefined,
): TelemetryRun {
  const own = started === undefined ? undefined : api.trace.setSpan(started.parent, started.span);
  // A request span that records nothing (no SDK, or sampled out) gets no step spans either: the trace
  // context still travels, from the request span itself.
  const steps = started !== undefined && started.span.isRecording() ? tracer : undefined;
  let open: { name: TelemetryStep | 'send'; span: Api.Span | undefined; at: number } | undefined;

  const close = (code?: string, error?: unknown) => {
    if (open === undefined) return;
    const { span, name, at } = open;
    open = undefined;
    if (name === 'handler') instruments?.handler(provider, where, code === undefined, performance.now() - at);
    if (span === undefined) return;
    if (code !== undefined) failed(span, code, error);
    span.end();
  };
  const begin = (name: TelemetryStep | 'send', spanName: string, spanOptions: () => Api.SpanOptions) => {
    close();
    const span = steps === undefined ? undefined : steps.startSpan(spanName, spanOptions(), own);
    open = { name, span, at: performance.now() };
    return span;
  };

  return {
    step(next, code, error) {
      if (next === undefined) return close(code, error);
      begin(next, `hookguard.${next}`, () => ({ kind: SPAN_KIND.INTERNAL }));
    },
    within<T>(fn: () => T): T {
      if (own === undefined) return fn();
      const span = open?.span;
      return api.context.with(span === undefined ? own : api.trace.setSpan(own, span), fn);
    },
    send(key) {
      const span = begin('send', `send ${inbox?.destination ?? 'inbox'}`, () => ({
        kind: SPAN_KIND.PRODUCER,
        attributes: messagingAttributes(inbox, 'send', 'send', key),
      }));
      if (own === undefined) return undefined;
      const carrier: Record<string, string> = {};
      api.propagation.inject(span === undefined ? own : api.trace.setSpan(own, span), carrier);
      return Object.keys(carrier).length === 0 ? undefined : carrier;
    },
    end(outcome: TelemetryOutcome) {
      const failing = outcome.result === 'failed' || outcome.result === 'rejected';
      if (open?.span !== undefined && !failing) open.span.setAttribute('hookguard.outcome', outcome.result);
      close(failing ? (outcome.code ?? 'FAILED') : undefined);
      instruments?.outcome(outcome, where);
      const span = started?.span;
      if (span === undefined) return;
      if (steps === undefined) return span.end();
      span.setAttributes(outcomeAttributes(outcome, where));
      if (outcome.result === 'failed') failed(span, outcome.code ?? 'FAILED', undefined);
      span.end();
    },
  };
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
  if (outcome.event !== undefined) attributes['hookguard.event'] = outcome.event;
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
