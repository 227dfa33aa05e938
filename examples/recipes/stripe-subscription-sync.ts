// Keeping a copy of each Stripe subscription's state, although Stripe sends its events in no particular
// order (an `updated` can arrive after the `deleted`). In an inbox worker `ctx.stale` says how an event
// stands against the newest one of the same subscription already processed:
//
// - `'newer-processed'`: a later event was synced already; this one's `data.object` is out of date: skip it.
// - `'same-second'`: one created in the same second was synced (Stripe's `created` counts whole seconds, so
//   which is newer is unknown): refetch the subscription from Stripe and save what it says now.
// - `false`: nothing newer was processed: save `data.object`.
//
// Exact with `ordered: true` (a subscription's events then run one at a time; Stripe's default ordering key
// is the object). Tested in test/recipes.test.ts with 200 lifecycles shuffled, against a local server that
// plays Stripe's API.
import type Stripe from 'stripe';
import type { StripeWebhookOptions, WebhookContext } from 'hookguard';
import type { Inbox } from 'hookguard/bullmq';

/** Where your app keeps subscriptions (a table, in a real app). */
export interface SubscriptionTable {
  save(subscription: Stripe.Subscription): Promise<void>;
}

export function subscriptionSync(options: {
  secret: string | undefined;
  inbox: Inbox;
  stripe: Stripe;
  table: SubscriptionTable;
}) {
  const sync = async (event: { data: { object: Stripe.Subscription } }, ctx: WebhookContext) => {
    if (ctx.stale === 'newer-processed') {
      ctx.log.info({ subscription: event.data.object.id }, 'skipped: a newer event was synced already');
      return;
    }
    const subscription =
      ctx.stale === 'same-second'
        ? await options.stripe.subscriptions.retrieve(event.data.object.id)
        : event.data.object;
    await options.table.save(subscription);
  };
  return {
    secret: options.secret,
    inbox: options.inbox,
    on: {
      'customer.subscription.created': sync,
      'customer.subscription.updated': sync,
      'customer.subscription.deleted': sync,
    },
  } satisfies StripeWebhookOptions;
}

// The web process: app.post('/stripe', stripeWebhook(options)) (hookguard/express), its inbox created with
// createBullMQInbox({ connection, ordered: true }); the worker: inbox.worker({ stripe: options }).
