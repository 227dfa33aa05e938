import type Stripe from 'stripe';
import { stripeKey } from '../dedup/stripe-dedup-key.js';
import type { Maybe } from '../platform/index.js';
import { isThenable } from '../util/values.js';
import { oneLine } from '../text/one-line.js';
import type { StripeThinEvent, StripeWebhookEvent } from '../types/stripe.js';
import { hasUsableSecret } from '../util/secrets.js';
import { resolveVerifyOptions } from '../verify/verify-options.js';
import { checkStripeEvent, parseStripeEvent } from '../verify/verify-stripe-event.js';
import { createPipeline } from './create-pipeline.js';
import type { EventHandler, ProviderSpec } from './provider-spec.js';
import type { WebhookContext, WebhookHandler, WebhookOptions } from './types.js';

/**
 * One handler per Stripe event type, each receiving the event narrowed to that type (so
 * `on['checkout.session.completed']` gets a `Stripe.Checkout.Session` in `data.object`). Thin event types
 * (`v1.…`, `v2.…`) receive a {@link StripeThinEvent}.
 */
export type StripeHandlers<R = unknown> = {
  [T in Stripe.Event['type']]?: (
    event: Extract<Stripe.Event, { type: T }>,
    ctx: WebhookContext<R>,
  ) => unknown;
} & {
  [T in StripeThinEvent['type']]?: (event: StripeThinEvent, ctx: WebhookContext<R>) => unknown;
};

/**
 * Options for {@link createStripeHandler} and the Stripe adapters.
 */
export interface StripeWebhookOptions<R = unknown> extends WebhookOptions<StripeWebhookEvent, R> {
  /** Handlers by event type; events without one go to `onEvent`, or are acknowledged and ignored. */
  on?: StripeHandlers<R>;
}

/**
 * The framework-agnostic Stripe pipeline: verify, parse, dedupe on the event id, run your handler, answer.
 * Adapters wrap it; use it directly for a framework hookguard has no adapter for.
 *
 * @example
 * ```ts
 * import { createStripeHandler } from 'hookguard';
 * const handle = createStripeHandler({ secret: process.env.STRIPE_WEBHOOK_SECRET, onEvent: (e) => console.log(e.type) });
 * const res = await handle({ method: 'POST', headers: req.headers, body: rawBody });
 * ```
 */
export function createStripeHandler<R = unknown>(options: StripeWebhookOptions<R>): WebhookHandler {
  // The pipeline hands each handler the `req` its request carried: of type R when an adapter built it.
  const own = options as StripeWebhookOptions;
  return createPipeline<StripeWebhookEvent>(own, stripeSpec(own));
}

/** The verified event as the pipeline reads it (no closure on the synchronous, Node, path). */
function read(event: Maybe<StripeWebhookEvent>): Maybe<{ event: StripeWebhookEvent; deliveryId: undefined }> {
  if (!isThenable(event)) return { event, deliveryId: undefined };
  return event.then((verified) => ({ event: verified, deliveryId: undefined }));
}

/** How the pipeline (and an inbox worker) reads Stripe requests and routes their events. */
export function stripeSpec(options: StripeWebhookOptions): ProviderSpec<StripeWebhookEvent> {
  const on = (options.on ?? {}) as Record<string, EventHandler<StripeWebhookEvent> | undefined>;
  // Resolved once per handler, not per request (see createChatwootHandler).
  const verifier = hasUsableSecret(options.secret) ? resolveVerifyOptions(options, 'Stripe') : undefined;
  return {
    provider: 'stripe',
    verifies: verifier !== undefined,
    // Stripe sends no delivery id; the event id is what identifies a delivery.
    read: (body, headers) =>
      verifier === undefined
        ? { event: parseStripeEvent(body), deliveryId: undefined }
        : read(checkStripeEvent(body, headers, verifier)),
    eventName: (event) => event.type,
    defaultKey: (event) => stripeKey(event),
    handlerFor: (event) => (Object.hasOwn(on, event.type) ? on[event.type] : undefined) ?? options.onEvent,
    ignore: () => false,
    describe: (event) => `${oneLine(event.type, 80)} ${oneLine(event.id, 80)}`,
  };
}
