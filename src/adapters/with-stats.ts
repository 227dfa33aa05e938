import type { WebhookHandler, WebhookStats } from '../pipeline/types.js';

/**
 * An adapter's handler, with the counts of the pipeline behind it.
 *
 * @example
 * ```ts
 * import type { WithStats } from 'hookguard';
 * const report = (handler: WithStats<unknown>) => handler.stats().counts;
 * ```
 */
export type WithStats<T> = T & { stats(): WebhookStats };

/** Gives an adapter's handler the `stats()` of the pipeline it wraps. */
export function withStats<T extends object>(adapter: T, handle: WebhookHandler): WithStats<T> {
  return Object.assign(adapter, { stats: handle.stats });
}
