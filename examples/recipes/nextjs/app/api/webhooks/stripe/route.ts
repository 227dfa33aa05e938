// A Next.js App Router route handler for Stripe: save as app/api/webhooks/stripe/route.ts. Tested in
// test/recipes.test.ts.
import { stripeWebhook } from 'hookguard/fetch';

export const runtime = 'nodejs';

export const POST = stripeWebhook({
  secret: process.env.STRIPE_WEBHOOK_SECRET,
  on: {
    'checkout.session.completed': async (event, ctx) => {
      const session = event.data.object;
      ctx.log.info({ session: session.id, amount: session.amount_total }, 'paid');
    },
  },
});
