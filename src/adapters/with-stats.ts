import type { WebhookHandler } from '../pipeline/types.js';

/**
 * An adapter's handler, with the counts and the graceful `close()` of the pipeline behind it.
 */
export type WithStats<T> = T & Pick<WebhookHandler, 'stats' | 'close'>;

/** Gives an adapter's handler the `stats()` and `close()` of the pipeline it wraps. */
export function withStats<T extends object>(adapter: T, handle: WebhookHandler): WithStats<T> {
  return Object.assign(adapter, { stats: handle.stats, close: handle.close });
}
