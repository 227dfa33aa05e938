import { describeError } from '../util/values.js';
import type { InboxMessaging } from './telemetry.js';
import type { Provider, WebhookResponse } from './types.js';
import { answerStage, type Delivery, type Pipeline } from './stages.js';

// The last stage with an inbox: the event is written durably (deduplicated by the engine on the key) and
// not run here. The engines (`src/inbox/`) implement `Inbox`; the pipeline knows nothing else of them.

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
  /** The endpoint's `namespace` option: workers pick the handlers of the endpoint that took the event. */
  namespace?: string;
  /**
   * The endpoint's own ordering key (`orderKey`), or `null` when it turned ordering off or gave none for
   * this event; absent: the provider's default, which the engine computes (an inbox created with
   * `ordered: true` runs one event per key at a time).
   */
  orderKey?: string | null;
  /**
   * The trace context of the request that queued it (W3C `traceparent`, and what else the application's
   * propagator writes), with the `telemetry` option: the worker's span continues that trace.
   */
  traceContext?: Record<string, string>;
}

/**
 * A durable inbox as the pipeline sees it. `enqueue` resolves only once the engine acknowledged the write:
 * `'queued'`, or `'duplicate'` when a job with this key is already queued, running, done or dead-lettered.
 * It rejects when the engine did not confirm in time or too much already waits on it; a write that timed
 * out may still land (the sender's retry is then answered `duplicate`).
 */
export interface Inbox {
  /** `size`: the raw body's bytes, for the bound on what may wait on the engine. */
  enqueue(job: InboxJob, size?: number): Promise<'queued' | 'duplicate'>;
  /** The engine and queue, for the spans of the `telemetry` option. */
  readonly messaging?: InboxMessaging;
}

/** With an inbox: write the event, then answer `queued` / `duplicate`, or INBOX_UNAVAILABLE. */
export async function enqueueStage<E>(
  p: Pipeline<E>,
  d: Delivery<E>,
  inbox: Inbox,
  size: number,
): Promise<WebhookResponse> {
  const job: InboxJob = {
    provider: p.spec.provider,
    event: d.event,
    key: d.key,
    deliveryId: d.deliveryId,
    name: d.name,
  };
  if (p.namespace !== '') job.namespace = p.namespace;
  const own = p.options.orderKey;
  try {
    // The endpoint's own key (the engine checks it and computes the default): null for none.
    if (own !== undefined) job.orderKey = own === false ? null : (own(d.event as E) ?? null);
  } catch (err) {
    // Queued without its key, the event could overtake the ones before it: refused, so the retry is.
    d.log.error({ err: describeError(err) }, 'orderKey threw');
    return answerStage(p, d, 'HANDLER_FAILED');
  }
  const carrier = d.trace?.send(d.key);
  if (carrier !== undefined) job.traceContext = carrier;
  return inbox.enqueue(job, size).then(
    (result) => {
      d.log.info({ outcome: result }, result === 'queued' ? 'queued' : 'already in the inbox');
      return answerStage(p, d, result);
    },
    (err: unknown) => {
      const answer = p.answers.INBOX_UNAVAILABLE;
      d.log.error(
        { outcome: answer.result, code: 'INBOX_UNAVAILABLE', status: answer.status, err: describeError(err) },
        'The inbox did not confirm the event; the sender will retry it (if the write still lands, the retry is answered duplicate and the event runs once).',
      );
      return answerStage(p, d, 'INBOX_UNAVAILABLE');
    },
  );
}
