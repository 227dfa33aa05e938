import { randomBytes } from 'node:crypto';
import type Stripe from 'stripe';
import { deepMerge } from './deep-merge.js';

// Object id prefixes Stripe uses, so test payloads look like the real thing in logs.
const ID_PREFIX: Record<string, string> = {
  'checkout.session': 'cs_test_',
  payment_intent: 'pi_test_',
  charge: 'ch_test_',
  invoice: 'in_test_',
  customer: 'cus_test_',
  'customer.subscription': 'sub_test_',
  subscription_schedule: 'sub_sched_test_',
  product: 'prod_test_',
  price: 'price_test_',
  refund: 're_test_',
  payout: 'po_test_',
  setup_intent: 'seti_test_',
  payment_method: 'pm_test_',
};

const suffix = (): string => randomBytes(12).toString('base64url');

/** The object a classic event type is about: `checkout.session.completed` → `checkout.session`. */
function objectName(type: string): string {
  const cut = type.lastIndexOf('.');
  return cut === -1 ? type : type.slice(0, cut);
}

/**
 * A classic Stripe event of `type` with a fresh `evt_test_…` id and a minimal `data.object` (its `id` and
 * `object`), with `overrides` deep-merged in: pass the fields your code reads.
 *
 * @example
 * ```ts
 * import { stripeEvent } from 'hookguard/testing';
 * const event = stripeEvent('checkout.session.completed', { data: { object: { amount_total: 2000 } } });
 * ```
 */
export function stripeEvent<T extends Stripe.Event['type']>(
  type: T,
  overrides?: object,
): Extract<Stripe.Event, { type: T }> {
  const name = objectName(type);
  const object = name === 'customer.subscription' ? 'subscription' : name;
  const base = {
    id: `evt_test_${suffix()}`,
    object: 'event',
    api_version: '2026-10-28.endive',
    created: Math.floor(Date.now() / 1000),
    data: { object: { id: `${ID_PREFIX[name] ?? 'obj_test_'}${suffix()}`, object, livemode: false } },
    livemode: false,
    pending_webhooks: 1,
    request: { id: null, idempotency_key: null },
    type,
  };
  return deepMerge(base, overrides) as unknown as Extract<Stripe.Event, { type: T }>;
}
