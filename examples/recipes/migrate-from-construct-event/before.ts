// BEFORE: the usual stripe-node webhook route, with `express.raw` and `stripe.webhooks.constructEvent`.
// What it leaves to you: Stripe delivers at least once, so `fulfil` runs again for every retry and
// duplicate; a handler that throws gives Express's HTML 500; the 400 echoes the verification error; thin
// events are refused. See after.ts; test/recipes.test.ts runs both side by side.
import express, { type Express } from 'express';
import Stripe from 'stripe';

export function createApp(secret: string, fulfil: (session: Stripe.Checkout.Session) => void): Express {
  const stripe = new Stripe(process.env.STRIPE_SECRET_KEY ?? 'sk_test_unused');
  const app = express();
  app.post('/webhook/payments', express.raw({ type: 'application/json' }), (req, res) => {
    let event: Stripe.Event;
    try {
      event = stripe.webhooks.constructEvent(
        req.body as Buffer,
        req.headers['stripe-signature'] ?? '',
        secret,
      );
    } catch (err) {
      res.status(400).send(`Webhook Error: ${(err as Error).message}`);
      return;
    }
    if (event.type === 'checkout.session.completed') fulfil(event.data.object);
    res.json({ received: true });
  });
  return app;
}
