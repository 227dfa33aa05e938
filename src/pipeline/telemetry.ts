import type { InboxJob } from './enqueue-stage.js';
import type { Provider, WebhookOutcome } from './types.js';

// What the pipeline and the inbox workers tell a tracer and a meter, and nothing more: a handful of calls
// at the stage boundaries. The core holds no telemetry code (it would load on every runtime, used or not);
// `hookguard/otel` implements these over the OpenTelemetry API the application passes in. Without the
// `telemetry` option every call is one `undefined` check.

/** The steps of a request or a worker run that get a span of their own. */
export type TelemetryStep = 'verify' | 'claim' | 'handler';

/** Where an inbox keeps its jobs, for the `messaging.*` attributes of the spans that send and process them. */
export interface InboxMessaging {
  /** `bullmq` or `pg-boss`. */
  readonly system: string;
  /** The queue's name. */
  readonly destination: string;
  /** The engine's job id of a key: a hash of it, never the key itself. */
  messageId(key: string): string;
}

/** One request, or one worker run, as the telemetry follows it. */
export interface TelemetryRun {
  /**
   * Ends the step under way (failed with `code` when one is given; `error`: what the user's handler threw,
   * of which only the type is recorded), then begins `next` when given. The steps of a run follow each
   * other: at most one is open.
   */
  step(next?: TelemetryStep, code?: string, error?: unknown): void;
  /** Calls `fn` (the user's handler) with the open step as the active span, so the handler's own spans nest. */
  within<T>(fn: () => T): T;
  /**
   * Begins the step that writes the job of `key` to the inbox, and gives its trace context, to travel with
   * the job (`InboxJob.traceContext`); undefined: none.
   */
  send(key: string | undefined): Record<string, string> | undefined;
  /**
   * A worker run that coalesced other jobs into its call (`coalesce()`): links its span to theirs (their
   * `traceContext`), as semconv asks of a batch.
   */
  link(carriers: readonly (Record<string, string> | undefined)[]): void;
  /** The outcome: ends the open step and the run. */
  end(outcome: TelemetryOutcome): void;
}

/** What a request or a worker run ended with. `deferred`: a worker gave its job back without running it. */
export interface TelemetryOutcome {
  provider: Provider;
  result: WebhookOutcome['result'] | 'deferred';
  /** What was answered (a worker run: what it would have answered inline). */
  status: number;
  code?: string | undefined;
  /** The event name, bounded. */
  event?: string | undefined;
  durationMs: number;
}

/**
 * What `hookguard/otel`'s `openTelemetry()` returns and the `telemetry` option takes (on the web side and on
 * inbox workers). Build one with `openTelemetry()` rather than by hand: the pipeline calls these without a
 * guard, so an implementation must never throw (`openTelemetry()`'s catch what the SDK throws).
 */
export interface WebhookTelemetry {
  /** A request begins. Called synchronously from the adapter's call, so the framework's span is the active one. */
  request(provider: Provider, inbox: InboxMessaging | undefined): TelemetryRun;
  /** A worker run of `job` begins (its trace continues the request's, from `job.traceContext`). */
  job(job: InboxJob, attempt: number, inbox: InboxMessaging | undefined): TelemetryRun;
}
