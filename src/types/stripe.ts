import type Stripe from 'stripe';

/**
 * A Stripe "thin" event (event destinations, `object: "v2.core.event"`): a notification that names what
 * changed; fetch the details through the API. The official `constructEvent` refuses these; hookguard returns
 * them so one endpoint can take both formats during a migration.
 */
export interface StripeThinEvent {
  id: string;
  object: 'v2.core.event';
  /** Thin event types are namespaced: `v1.checkout.session.completed`, `v2.core.account.updated`, ... */
  type: `v1.${string}` | `v2.${string}`;
  /** ISO-8601 string (classic events use unix seconds). */
  created: string;
  livemode?: boolean;
  context?: string | null;
  /** The classic event this thin event mirrors; deduplicate both formats on it. */
  snapshot_event?: string | null;
  related_object?: { id: string; type: string; url: string } | null;
  reason?: unknown;
}

/**
 * What {@link verifyStripeEvent} returns: a classic `Stripe.Event`, or a thin event notification.
 * Narrow with `event.object === 'event'`, or by comparing `event.type` with a classic type name.
 */
export type StripeWebhookEvent = Stripe.Event | StripeThinEvent;
