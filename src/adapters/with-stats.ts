import type { WebhookHandler, WebhookStats } from '../pipeline/types.js';

/**
 * An adapter's handler, with the counts of the pipeline behind it.
 */
export type WithStats<T> = T & { stats(): WebhookStats };

/** Gives an adapter's handler the `stats()` of the pipeline it wraps. */
export function withStats<T extends object>(adapter: T, handle: WebhookHandler): WithStats<T> {
  return Object.assign(adapter, { stats: handle.stats });
}
