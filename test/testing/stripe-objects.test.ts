// stripeEvent's complete objects: the fields a handler reads are there with the values Stripe sends, ids
// point at each other, the event type sets the status, and the whole event verifies like a real delivery.
// (Completeness against stripe-node's types is checked at compile time: `satisfies` in stripe-objects.ts.)
import { describe, expect, it } from 'vitest';
import { verifyStripeEvent } from '../../src/index.js';
import { signStripePayload, stripeEvent } from '../../src/testing/index.js';

describe('stripeEvent objects', () => {
  it('gives a completed checkout session its amounts, customer, payment intent and a paid status', () => {
    const session = stripeEvent('checkout.session.completed').data.object;
    const total: number | null = session.amount_total;
    expect(total).toBe(2000);
    expect(session).toMatchObject({
      object: 'checkout.session',
      amount_subtotal: 2000,
      currency: 'usd',
      mode: 'payment',
      status: 'complete',
      payment_status: 'paid',
      customer_details: { email: 'jenny.rosen@example.com', address: { country: 'US' } },
      livemode: false,
    });
    expect(session.customer).toMatch(/^cus_test_/);
    expect(session.payment_intent).toMatch(/^pi_test_/);
  });

  it('gives each common object the fields its type requires, about one payment', () => {
    const intent = stripeEvent('payment_intent.succeeded').data.object;
    expect(intent).toMatchObject({
      status: 'succeeded',
      amount: 2000,
      amount_received: 2000,
      currency: 'usd',
    });
    expect(intent.latest_charge).toMatch(/^ch_test_/);

    const charge = stripeEvent('charge.succeeded').data.object;
    expect(charge).toMatchObject({ status: 'succeeded', paid: true, captured: true, refunded: false });
    expect(charge.payment_intent).toMatch(/^pi_test_/);
    expect(charge.billing_details.name).toBe('Jenny Rosen');

    const refund = stripeEvent('refund.created').data.object;
    expect(refund).toMatchObject({ object: 'refund', status: 'succeeded', amount: 2000 });
    expect(refund.charge).toMatch(/^ch_test_/);
    expect(stripeEvent('charge.refund.updated').data.object.object).toBe('refund');

    const invoice = stripeEvent('invoice.paid').data.object;
    expect(invoice).toMatchObject({ status: 'paid', amount_paid: 2000, amount_remaining: 0, total: 2000 });
    expect(invoice.lines.data).toHaveLength(1);
    expect(invoice.lines.data[0]!.amount).toBe(2000);
    expect(invoice.parent?.subscription_details?.subscription).toMatch(/^sub_test_/);

    const subscription = stripeEvent('customer.subscription.updated').data.object;
    expect(subscription).toMatchObject({
      object: 'subscription',
      status: 'active',
      cancel_at_period_end: false,
    });
    const item = subscription.items.data[0]!;
    expect(item.price).toMatchObject({ unit_amount: 2000, recurring: { interval: 'month' } });
    expect(item.subscription).toBe(subscription.id);
    expect(item.current_period_end).toBeGreaterThan(item.current_period_start);
  });

  it('links the ids inside one event, and draws fresh ones per event', () => {
    const invoice = stripeEvent('invoice.paid').data.object;
    expect(invoice.lines.data[0]!.invoice).toBe(invoice.id);
    const a = stripeEvent('checkout.session.completed').data.object;
    const b = stripeEvent('checkout.session.completed').data.object;
    expect(a.id).not.toBe(b.id);
    expect(a.customer).not.toBe(b.customer);
  });

  it.each([
    ['payment_intent.payment_failed', { status: 'requires_payment_method', amount_received: 0 }],
    ['payment_intent.canceled', { status: 'canceled', cancellation_reason: 'requested_by_customer' }],
    ['payment_intent.amount_capturable_updated', { status: 'requires_capture', amount_capturable: 2000 }],
    ['checkout.session.expired', { status: 'expired', payment_status: 'unpaid', payment_intent: null }],
    ['checkout.session.async_payment_failed', { status: 'complete', payment_status: 'unpaid' }],
    ['charge.failed', { status: 'failed', paid: false, failure_code: 'card_declined' }],
    ['charge.refunded', { refunded: true, amount_refunded: 2000 }],
    ['refund.failed', { status: 'failed' }],
    ['invoice.payment_failed', { status: 'open', amount_paid: 0, amount_remaining: 2000 }],
    ['invoice.created', { status: 'draft', number: null, attempted: false }],
    ['invoice.voided', { status: 'void' }],
    ['customer.subscription.deleted', { status: 'canceled' }],
    ['customer.subscription.trial_will_end', { status: 'trialing' }],
  ] as const)('sets what %s implies', (type, expected) => {
    expect(stripeEvent(type).data.object).toMatchObject(expected);
  });

  it('says why a payment failed, as Stripe does', () => {
    const intent = stripeEvent('payment_intent.payment_failed').data.object;
    expect(intent.last_payment_error).toMatchObject({ code: 'card_declined', type: 'card_error' });
    const deleted = stripeEvent('customer.subscription.deleted').data.object;
    expect(deleted.ended_at).toBe(deleted.canceled_at);
    expect(deleted.ended_at).toBeGreaterThan(deleted.start_date);
  });

  it('lets overrides win over both the defaults and the status of the type', () => {
    const failed = stripeEvent('invoice.payment_failed', {
      data: { object: { status: 'uncollectible', total: 5 } },
    });
    expect(failed.data.object).toMatchObject({ status: 'uncollectible', total: 5, amount_paid: 0 });
  });

  it('keeps the minimal object for types without a builder', () => {
    const product = stripeEvent('product.created').data.object;
    expect(product.id).toMatch(/^prod_test_/);
    expect(Object.keys(product).sort()).toEqual(['id', 'livemode', 'object']);
  });

  it('signs and verifies as a real delivery (plain JSON, no functions or class instances)', () => {
    for (const type of [
      'checkout.session.completed',
      'invoice.paid',
      'customer.subscription.created',
    ] as const) {
      const event = stripeEvent(type);
      const signed = signStripePayload(event, 'whsec_test');
      expect(verifyStripeEvent(signed.body, signed.headers, { secret: 'whsec_test' })).toEqual(event);
    }
  });
});
