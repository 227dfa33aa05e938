import { field, idOf } from '../util/values.js';
import { syncOnly, type Maybe } from '../platform/index.js';
import { boundedKey } from './bounded-key.js';

/**
 * The dedup key of a Stripe event: `stripe:{event.id}`; for a thin event (`object: "v2.core.event"`),
 * `stripe:{snapshot_event}` when present, so the thin and classic copies of one change dedupe together
 * during a migration. `undefined` without a usable id.
 *
 * @example
 * ```ts
 * import { stripeDedupKey } from 'hookguard';
 * stripeDedupKey({ id: 'evt_123' }); // 'stripe:evt_123'
 * ```
 */
export function stripeDedupKey(event: {
  id?: unknown;
  object?: unknown;
  snapshot_event?: unknown;
}): string | undefined {
  return syncOnly(stripeKey(event), 'stripeDedupKey', 'the pipeline (hookguard/fetch)');
}

/** {@link stripeDedupKey} on every runtime: a promise only where a long id is hashed with Web Crypto. */
export function stripeKey(event: {
  id?: unknown;
  object?: unknown;
  snapshot_event?: unknown;
}): Maybe<string | undefined> {
  const snapshot =
    field(event, 'object') === 'v2.core.event' ? idOf(field(event, 'snapshot_event')) : undefined;
  const id = snapshot ?? idOf(field(event, 'id'));
  return id === undefined ? undefined : boundedKey('stripe', [id]);
}
