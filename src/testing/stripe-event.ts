import { randomBytes } from 'node:crypto';
import type Stripe from 'stripe';
import { deepMerge } from './deep-merge.js';
import { STRIPE_OBJECTS, statusByType, type StripeObjectIds } from './stripe-objects.js';

// Object id prefixes Stripe uses, so test payloads look like the real thing in logs.
const ID_PREFIX: Record<string, string> = {
  customer: 'cus_test_',
  subscription_schedule: 'sub_sched_test_',
  product: 'prod_test_',
  price: 'price_test_',
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

function freshIds(): StripeObjectIds {
  return {
    id: (prefix) => `${prefix}${suffix()}`,
    customer: `cus_test_${suffix()}`,
    paymentIntent: `pi_test_${suffix()}`,
    charge: `ch_test_${suffix()}`,
    invoice: `in_test_${suffix()}`,
    subscription: `sub_test_${suffix()}`,
    price: `price_test_${suffix()}`,
    product: `prod_test_${suffix()}`,
    now: Math.floor(Date.now() / 1000),
  };
}

/**
 * A classic Stripe event of `type` with a fresh `evt_test_…` id, and `overrides` deep-merged in.
 *
 * For checkout sessions, payment intents, charges, refunds, invoices and subscriptions `data.object` is
 * complete: every field stripe-node's types require, with the values of a paid 20.00 USD card payment in
 * test mode, ids that point at each other (the session's `payment_intent` is the payment intent's `id`), and
 * the status the event type implies (`payment_intent.payment_failed` carries a declined card,
 * `customer.subscription.deleted` is `canceled`). For any other type `data.object` holds its `id` and
 * `object` only: pass the fields your code reads.
 *
 * @example
 * ```ts
 * import { stripeEvent } from 'hookguard/testing';
 * const event = stripeEvent('checkout.session.completed', { data: { object: { amount_total: 4500 } } });
 * ```
 */
export function stripeEvent<T extends Stripe.Event['type']>(
  type: T,
  overrides?: object,
): Extract<Stripe.Event, { type: T }> {
  const name = objectName(type);
  const ids = freshIds();
  const build = STRIPE_OBJECTS[name];
  const object = build
    ? deepMerge(build(ids), statusByType(ids.now)[type])
    : {
        id: ids.id(ID_PREFIX[name] ?? 'obj_test_'),
        object: name === 'customer.subscription' ? 'subscription' : name,
        livemode: false,
      };
  const base = {
    id: `evt_test_${suffix()}`,
    object: 'event',
    api_version: '2026-10-28.endive',
    created: ids.now,
    data: { object },
    livemode: false,
    pending_webhooks: 1,
    request: { id: null, idempotency_key: null },
    type,
  };
  return deepMerge(base, overrides) as unknown as Extract<Stripe.Event, { type: T }>;
}
