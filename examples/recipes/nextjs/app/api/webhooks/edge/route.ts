// A Next.js route handler on the Edge runtime: save as app/api/webhooks/edge/route.ts. On the Edge runtime
// hookguard verifies with Web Crypto (package "imports" pick it under the edge-light condition); nothing to
// configure. Tested in test/runtimes/runtimes.test.ts, bundled from the packed package and run in Vercel's
// edge-runtime. The memory store lives per instance: share a store across instances for exactly-once.
//
// Next.js deprecates this runtime (vercel/next.js#93369): `next dev` and `next build` warn "The Edge
// Runtime is deprecated", and nextjs.org/docs/messages/edge-runtime-deprecated says to remove
// `runtime = 'edge'`. For a new route, use the Node.js runtime (Next.js's default), as ../stripe/route.ts
// does.
import { stripeWebhook } from 'hookguard/fetch';

export const runtime = 'edge';

export const POST = stripeWebhook({
  secret: process.env.STRIPE_WEBHOOK_SECRET,
  on: {
    'invoice.paid': (event, ctx) => ctx.log.info({ invoice: event.data.object.id }, 'paid'),
  },
});
