// AFTER: the same route with hookguard. The changes, line for line:
// - `express.raw(...)` and `constructEvent` go: the adapter reads and verifies the raw bytes itself (it also
//   takes the Buffer `express.raw` leaves, so keeping it is harmless).
// - the `if (event.type === ...)` becomes a key in `on`, typed the same way (`event.data.object` is a
//   `Stripe.Checkout.Session`).
// - each event is processed once: a retry or duplicate of a processed event answers 200 "duplicate"
//   without running `fulfil`; pass a Redis or PostgreSQL store when several processes serve the route.
// - a throwing handler answers 500 JSON and releases the event, so Stripe's retry runs it; a bad signature
//   answers 401 `{"error":{"code":"SIGNATURE_MISMATCH"}}` without echoing anything.
// - the Stripe API key is no longer needed to receive webhooks.
import express, { type Express } from 'express';
import type Stripe from 'stripe';
import { stripeWebhook } from 'hookguard/express';

export function createApp(secret: string, fulfil: (session: Stripe.Checkout.Session) => void): Express {
  const app = express();
  app.post(
    '/webhook/payments',
    stripeWebhook({ secret, on: { 'checkout.session.completed': (event) => fulfil(event.data.object) } }),
  );
  return app;
}
