import type Stripe from 'stripe';
import type { DeepPartial } from './deep-merge.js';

// Complete `data.object`s for the event types a payments backend handles most: every field the `stripe`
// types require is present (`satisfies` checks them against the installed stripe-node), with the values
// Stripe sends for a paid 20.00 USD card payment in test mode. The event type then sets the status
// (`statusByType`); the caller's overrides go on top.

/** Fresh ids for one event, so the objects inside it point at each other as Stripe's do. */
export interface StripeObjectIds {
  id(prefix: string): string;
  customer: string;
  paymentIntent: string;
  charge: string;
  invoice: string;
  subscription: string;
  price: string;
  product: string;
  now: number;
}

const AMOUNT = 2000;
const CURRENCY = 'usd';
const EMAIL = 'jenny.rosen@example.com';
const NAME = 'Jenny Rosen';
const ADDRESS = {
  city: 'San Francisco',
  country: 'US',
  line1: '510 Townsend St',
  line2: null,
  postal_code: '94103',
  state: 'CA',
} satisfies Stripe.Address;

/** `{ a: null, b: null }` for the fields Stripe sends as null here (their types are checked on use). */
function nulls<K extends string>(...keys: K[]): Record<K, null> {
  const out = {} as Record<K, null>;
  for (const key of keys) out[key] = null;
  return out;
}

const list = <T>(data: T[], url: string): Stripe.ApiList<T> => ({
  object: 'list',
  data,
  has_more: false,
  url,
});

const SESSION_NULLS = nulls(
  'adaptive_pricing',
  'after_expiration',
  'allow_promotion_codes',
  'allowed_payment_method_types',
  'billing_address_collection',
  'cancel_url',
  'client_secret',
  'collected_information',
  'consent',
  'consent_collection',
  'currency_conversion',
  'customer_account',
  'discounts',
  'integration_identifier',
  'invoice',
  'locale',
  'managed_payments',
  'origin_context',
  'payment_link',
  'payment_method_configuration_details',
  'permissions',
  'recovered_from',
  'saved_payment_method_options',
  'setup_intent',
  'shipping_address_collection',
  'shipping_cost',
  'submit_type',
  'subscription',
  'url',
  'wallet_options',
);

function checkoutSession(ids: StripeObjectIds): Stripe.Checkout.Session {
  return {
    ...SESSION_NULLS,
    id: ids.id('cs_test_'),
    object: 'checkout.session',
    amount_subtotal: AMOUNT,
    amount_total: AMOUNT,
    automatic_tax: { enabled: false, liability: null, provider: null, status: null },
    client_reference_id: 'order_1234',
    created: ids.now - 60,
    currency: CURRENCY,
    custom_fields: [],
    custom_text: {
      after_submit: null,
      shipping_address: null,
      submit: null,
      terms_of_service_acceptance: null,
    },
    customer: ids.customer,
    customer_creation: 'if_required',
    customer_details: {
      ...nulls('business_name', 'individual_name', 'phone'),
      address: ADDRESS,
      email: EMAIL,
      name: NAME,
      tax_exempt: 'none',
      tax_ids: [],
    },
    customer_email: EMAIL,
    expires_at: ids.now + 23 * 3600,
    invoice_creation: {
      enabled: false,
      invoice_data: {
        ...nulls('custom_fields', 'description', 'footer', 'issuer', 'rendering_options'),
        account_tax_ids: null,
        metadata: {},
      },
    },
    livemode: false,
    metadata: {},
    mode: 'payment',
    payment_intent: ids.paymentIntent,
    payment_method_collection: 'if_required',
    payment_method_options: { card: { request_three_d_secure: 'automatic' } },
    payment_method_types: ['card'],
    payment_status: 'paid',
    shipping_options: [],
    status: 'complete',
    success_url: 'https://example.com/success',
    total_details: { amount_discount: 0, amount_shipping: 0, amount_tax: 0 },
    ui_mode: 'hosted',
  } satisfies Stripe.Checkout.Session;
}

const INTENT_NULLS = nulls(
  'allowed_payment_method_types',
  'application',
  'application_fee_amount',
  'canceled_at',
  'cancellation_reason',
  'client_secret',
  'customer_account',
  'excluded_payment_method_types',
  'last_payment_error',
  'managed_payments',
  'next_action',
  'on_behalf_of',
  'payment_method_configuration_details',
  'payment_record',
  'processing',
  'review',
  'setup_future_usage',
  'shipping',
  'source',
  'statement_descriptor',
  'statement_descriptor_suffix',
  'transfer_group',
);

function paymentIntent(ids: StripeObjectIds): Stripe.PaymentIntent {
  return {
    ...INTENT_NULLS,
    id: ids.paymentIntent,
    object: 'payment_intent',
    amount: AMOUNT,
    amount_capturable: 0,
    amount_received: AMOUNT,
    automatic_payment_methods: { allow_redirects: 'always', enabled: true },
    capture_method: 'automatic_async',
    confirmation_method: 'automatic',
    created: ids.now - 30,
    currency: CURRENCY,
    customer: ids.customer,
    description: 'Order 1234',
    latest_charge: ids.charge,
    livemode: false,
    metadata: {},
    payment_method: ids.id('pm_test_'),
    payment_method_options: {
      card: {
        installments: null,
        mandate_options: null,
        network: null,
        request_three_d_secure: 'automatic',
      },
    },
    payment_method_types: ['card'],
    receipt_email: EMAIL,
    status: 'succeeded',
  } satisfies Stripe.PaymentIntent;
}

const CHARGE_NULLS = nulls(
  'application',
  'application_fee',
  'application_fee_amount',
  'failure_balance_transaction',
  'failure_code',
  'failure_message',
  'on_behalf_of',
  'receipt_number',
  'review',
  'shipping',
  'source',
  'source_transfer',
  'statement_descriptor',
  'statement_descriptor_suffix',
  'transfer_data',
  'transfer_group',
);

function charge(ids: StripeObjectIds): Stripe.Charge {
  return {
    ...CHARGE_NULLS,
    id: ids.charge,
    object: 'charge',
    amount: AMOUNT,
    amount_captured: AMOUNT,
    amount_refunded: 0,
    balance_transaction: ids.id('txn_test_'),
    billing_details: { address: ADDRESS, email: EMAIL, name: NAME, phone: null, tax_id: null },
    calculated_statement_descriptor: 'EXAMPLE.COM',
    captured: true,
    created: ids.now - 20,
    currency: CURRENCY,
    customer: ids.customer,
    description: 'Order 1234',
    disputed: false,
    fraud_details: {},
    livemode: false,
    metadata: {},
    outcome: {
      ...nulls('advice_code', 'network_advice_code', 'network_decline_code', 'reason'),
      network_status: 'approved_by_network',
      risk_level: 'normal',
      risk_score: 32,
      seller_message: 'Payment complete.',
      type: 'authorized',
    },
    paid: true,
    payment_intent: ids.paymentIntent,
    payment_method: ids.id('pm_test_'),
    payment_method_details: null,
    receipt_email: EMAIL,
    receipt_url: `https://pay.stripe.com/receipts/payment/${ids.charge}`,
    refunded: false,
    status: 'succeeded',
  } satisfies Stripe.Charge;
}

function refund(ids: StripeObjectIds): Stripe.Refund {
  return {
    ...nulls('customer_account', 'receipt_number', 'source_transfer_reversal', 'transfer_reversal'),
    id: ids.id('re_test_'),
    object: 'refund',
    amount: AMOUNT,
    balance_transaction: ids.id('txn_test_'),
    charge: ids.charge,
    created: ids.now,
    currency: CURRENCY,
    customer: ids.customer,
    metadata: {},
    payment_intent: ids.paymentIntent,
    payment_method: ids.id('pm_test_'),
    reason: 'requested_by_customer',
    status: 'succeeded',
  } satisfies Stripe.Refund;
}

const MONTH = 30 * 24 * 3600;

/**
 * Decimal fields travel as strings (`"2000"`); stripe-node 23 types them as its `Decimal` class, which only
 * its API client creates, so a parsed webhook carries the string under that type.
 */
const wireDecimal = (value: number): Stripe.Decimal => String(value) as unknown as Stripe.Decimal;

/** The legacy mirror of a recurring price that Stripe still sends on subscription items. */
function plan(ids: StripeObjectIds): Stripe.Plan {
  return {
    ...nulls('aggregate_usage', 'meter', 'nickname', 'tiers_mode', 'transform_usage', 'trial_period_days'),
    id: ids.price,
    object: 'plan',
    active: true,
    amount: AMOUNT,
    amount_decimal: wireDecimal(AMOUNT),
    billing_scheme: 'per_unit',
    created: ids.now - 90 * 24 * 3600,
    currency: CURRENCY,
    interval: 'month',
    interval_count: 1,
    livemode: false,
    metadata: {},
    product: ids.product,
    usage_type: 'licensed',
  } satisfies Stripe.Plan;
}

function price(ids: StripeObjectIds): Stripe.Price {
  return {
    ...nulls(
      'custom_unit_amount',
      'lookup_key',
      'nickname',
      'tax_behavior',
      'tiers_mode',
      'transform_quantity',
    ),
    id: ids.price,
    object: 'price',
    active: true,
    billing_scheme: 'per_unit',
    created: ids.now - 90 * 24 * 3600,
    currency: CURRENCY,
    livemode: false,
    metadata: {},
    product: ids.product,
    recurring: {
      interval: 'month',
      interval_count: 1,
      meter: null,
      trial_period_days: null,
      usage_type: 'licensed',
    },
    type: 'recurring',
    unit_amount: AMOUNT,
    unit_amount_decimal: wireDecimal(AMOUNT),
  } satisfies Stripe.Price;
}

const SUBSCRIPTION_NULLS = nulls(
  'application',
  'application_fee_percent',
  'billing_cycle_anchor_config',
  'billing_thresholds',
  'cancel_at',
  'canceled_at',
  'cancellation_details',
  'customer_account',
  'days_until_due',
  'default_source',
  'description',
  'ended_at',
  'managed_payments',
  'next_pending_invoice_item_invoice',
  'on_behalf_of',
  'pause_collection',
  'pending_invoice_item_interval',
  'pending_setup_intent',
  'pending_update',
  'schedule',
  'test_clock',
  'transfer_data',
  'trial_end',
  'trial_settings',
  'trial_start',
);

function subscription(ids: StripeObjectIds): Stripe.Subscription {
  const start = ids.now - MONTH;
  const item = {
    ...nulls('billing_thresholds', 'current_trial', 'tax_rates'),
    id: ids.id('si_test_'),
    object: 'subscription_item',
    created: start,
    current_period_end: ids.now,
    current_period_start: start,
    discounts: [],
    metadata: {},
    plan: plan(ids),
    price: price(ids),
    quantity: 1,
    subscription: ids.subscription,
  } satisfies Stripe.SubscriptionItem;
  return {
    ...SUBSCRIPTION_NULLS,
    id: ids.subscription,
    object: 'subscription',
    automatic_tax: { disabled_reason: null, enabled: false, liability: null },
    billing_cycle_anchor: start,
    billing_mode: { flexible: null, type: 'flexible', updated_at: start },
    billing_schedules: [],
    cancel_at_period_end: false,
    collection_method: 'charge_automatically',
    created: start,
    currency: CURRENCY,
    customer: ids.customer,
    default_payment_method: ids.id('pm_test_'),
    discounts: [],
    invoice_settings: {
      ...nulls('account_tax_ids', 'custom_fields', 'description', 'footer'),
      issuer: { type: 'self' },
    },
    items: list([item], `/v1/subscription_items?subscription=${ids.subscription}`),
    latest_invoice: ids.invoice,
    livemode: false,
    metadata: {},
    payment_settings: {
      payment_method_options: null,
      payment_method_types: null,
      save_default_payment_method: 'off',
    },
    start_date: start,
    status: 'active',
  } satisfies Stripe.Subscription;
}

function invoiceLine(ids: StripeObjectIds, start: number): Stripe.InvoiceLineItem {
  return {
    ...nulls('description', 'discount_amounts', 'parent', 'pretax_credit_amounts', 'pricing', 'taxes'),
    id: ids.id('il_test_'),
    object: 'line_item',
    amount: AMOUNT,
    currency: CURRENCY,
    discountable: true,
    discounts: [],
    invoice: ids.invoice,
    livemode: false,
    metadata: {},
    period: { end: ids.now, start },
    quantity: 1,
    quantity_decimal: wireDecimal(1),
    subscription: ids.subscription,
    subtotal: AMOUNT,
  } satisfies Stripe.InvoiceLineItem;
}

const INVOICE_NULLS = nulls(
  'account_tax_ids',
  'application',
  'automatically_finalizes_at',
  'custom_fields',
  'customer_account',
  'customer_phone',
  'customer_shipping',
  'default_payment_method',
  'default_source',
  'description',
  'due_date',
  'footer',
  'from_invoice',
  'last_finalization_error',
  'latest_revision',
  'next_payment_attempt',
  'on_behalf_of',
  'receipt_number',
  'rendering',
  'shipping_cost',
  'shipping_details',
  'statement_descriptor',
  'test_clock',
  'total_discount_amounts',
  'total_pretax_credit_amounts',
  'total_taxes',
);

function invoice(ids: StripeObjectIds): Stripe.Invoice {
  const start = ids.now - MONTH;
  return {
    ...INVOICE_NULLS,
    id: ids.invoice,
    object: 'invoice',
    account_country: 'US',
    account_name: 'Example, Inc.',
    amount_due: AMOUNT,
    amount_overpaid: 0,
    amount_paid: AMOUNT,
    amount_remaining: 0,
    amount_shipping: 0,
    attempt_count: 1,
    attempted: true,
    automatic_tax: { disabled_reason: null, enabled: false, liability: null, provider: null, status: null },
    billing_reason: 'subscription_cycle',
    collection_method: 'charge_automatically',
    created: ids.now - 3600,
    currency: CURRENCY,
    customer: ids.customer,
    customer_address: ADDRESS,
    customer_email: EMAIL,
    customer_name: NAME,
    customer_tax_exempt: 'none',
    default_tax_rates: [],
    discounts: [],
    effective_at: ids.now - 3600,
    ending_balance: 0,
    issuer: { type: 'self' },
    lines: list([invoiceLine(ids, start)], `/v1/invoices/${ids.invoice}/lines`),
    livemode: false,
    metadata: {},
    number: 'EXAMPLE-0001',
    parent: {
      quote_details: null,
      subscription_details: { metadata: {}, subscription: ids.subscription },
      type: 'subscription_details',
    },
    payment_settings: { default_mandate: null, payment_method_options: null, payment_method_types: null },
    period_end: ids.now,
    period_start: start,
    post_payment_credit_notes_amount: 0,
    pre_payment_credit_notes_amount: 0,
    starting_balance: 0,
    status: 'paid',
    status_transitions: {
      finalized_at: ids.now - 3600,
      marked_uncollectible_at: null,
      paid_at: ids.now,
      voided_at: null,
    },
    subtotal: AMOUNT,
    subtotal_excluding_tax: AMOUNT,
    total: AMOUNT,
    total_excluding_tax: AMOUNT,
    webhooks_delivered_at: ids.now - 3600,
  } satisfies Stripe.Invoice;
}

/** Builders by object name (the event type without its last segment). */
export const STRIPE_OBJECTS: Record<string, (ids: StripeObjectIds) => object> = {
  'checkout.session': checkoutSession,
  payment_intent: paymentIntent,
  charge,
  'charge.refund': refund,
  refund,
  invoice,
  'customer.subscription': subscription,
};

type Patch<T> = (patch: DeepPartial<T>) => DeepPartial<T>;
const patch =
  <T>(): Patch<T> =>
  (value) =>
    value;
const session = patch<Stripe.Checkout.Session>();
const intent = patch<Stripe.PaymentIntent>();
const chargePatch = patch<Stripe.Charge>();
const refundPatch = patch<Stripe.Refund>();
const invoicePatch = patch<Stripe.Invoice>();
const subscriptionPatch = patch<Stripe.Subscription>();
const UNPAID = { amount_paid: 0, amount_remaining: AMOUNT, status_transitions: { paid_at: null } };
const DAY = 86400;

/**
 * What an event type says about its object, on top of the paid defaults above: a failed payment is not
 * `succeeded`, a deleted subscription is `canceled`. Keyed by the full event type; each patch is typed.
 */
export const statusByType = (now: number): Record<string, object> => ({
  'checkout.session.expired': session({ status: 'expired', payment_status: 'unpaid', payment_intent: null }),
  'checkout.session.async_payment_failed': session({ payment_status: 'unpaid' }),
  'payment_intent.created': intent({
    status: 'requires_payment_method',
    amount_received: 0,
    latest_charge: null,
  }),
  'payment_intent.processing': intent({ status: 'processing', amount_received: 0 }),
  'payment_intent.requires_action': intent({ status: 'requires_action', amount_received: 0 }),
  'payment_intent.amount_capturable_updated': intent({
    status: 'requires_capture',
    capture_method: 'manual',
    amount_capturable: AMOUNT,
    amount_received: 0,
  }),
  'payment_intent.canceled': intent({
    status: 'canceled',
    amount_received: 0,
    canceled_at: now,
    cancellation_reason: 'requested_by_customer',
  }),
  'payment_intent.payment_failed': intent({
    status: 'requires_payment_method',
    amount_received: 0,
    last_payment_error: {
      code: 'card_declined',
      decline_code: 'insufficient_funds',
      message: 'Your card has insufficient funds.',
      type: 'card_error',
    },
  }),
  'charge.failed': chargePatch({
    status: 'failed',
    paid: false,
    captured: false,
    amount_captured: 0,
    failure_code: 'card_declined',
    failure_message: 'Your card was declined.',
  }),
  'charge.pending': chargePatch({ status: 'pending' }),
  'charge.refunded': chargePatch({ amount_refunded: AMOUNT, refunded: true }),
  'refund.failed': refundPatch({ status: 'failed', failure_reason: 'expired_or_canceled_card' }),
  'invoice.created': invoicePatch({
    ...UNPAID,
    status: 'draft',
    attempted: false,
    attempt_count: 0,
    number: null,
    status_transitions: { finalized_at: null, paid_at: null },
  }),
  'invoice.finalized': invoicePatch({ ...UNPAID, status: 'open' }),
  'invoice.payment_failed': invoicePatch({ ...UNPAID, status: 'open', next_payment_attempt: now + 3 * DAY }),
  'invoice.voided': invoicePatch({
    ...UNPAID,
    status: 'void',
    status_transitions: { paid_at: null, voided_at: now },
  }),
  'invoice.marked_uncollectible': invoicePatch({
    ...UNPAID,
    status: 'uncollectible',
    status_transitions: { paid_at: null, marked_uncollectible_at: now },
  }),
  'customer.subscription.created': subscriptionPatch({ status: 'incomplete' }),
  'customer.subscription.deleted': subscriptionPatch({ status: 'canceled', ended_at: now, canceled_at: now }),
  'customer.subscription.paused': subscriptionPatch({ status: 'paused' }),
  'customer.subscription.trial_will_end': subscriptionPatch({
    status: 'trialing',
    trial_start: now - 11 * DAY,
    trial_end: now + 3 * DAY,
  }),
});
