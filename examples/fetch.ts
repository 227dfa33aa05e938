// The same two endpoints as Fetch routes. In Next.js each is one file:
//   app/api/cw/route.ts:                export const POST = chatwootWebhook({ ... });
//   app/webhook/payments/route.ts:      export const POST = stripeWebhook({ ... });
// Here they are mounted in Hono, which hands them the standard Request as c.req.raw; run it on Node
// with `npx tsx examples/fetch.ts`.
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { pathToFileURL } from 'node:url';
import { describeChatwootEvent } from 'hookguard';
import { chatwootWebhook, stripeWebhook } from 'hookguard/fetch';

export function createRoutes(secrets: { chatwoot: string | undefined; stripe: string | undefined }) {
  return {
    chatwoot: chatwootWebhook({
      secret: secrets.chatwoot,
      on: { message_created: (event) => console.log(describeChatwootEvent(event)) },
    }),
    stripe: stripeWebhook({
      secret: secrets.stripe,
      on: { 'checkout.session.completed': (event) => console.log('paid', event.data.object.id) },
    }),
  };
}

export function createHonoApp(secrets: { chatwoot: string | undefined; stripe: string | undefined }): Hono {
  const routes = createRoutes(secrets);
  const app = new Hono();
  app.post('/cw', (c) => routes.chatwoot(c.req.raw));
  app.post('/webhook/payments', (c) => routes.stripe(c.req.raw));
  return app;
}

// Bun and Deno serve a Hono app directly (`export default app`); Node needs @hono/node-server.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const app = createHonoApp({
    chatwoot: process.env.CW_HMAC_SECRET,
    stripe: process.env.STRIPE_WEBHOOK_SECRET,
  });
  const port = Number(process.env.PORT ?? 3000);
  serve({ fetch: app.fetch, port }, () => console.log(`listening on http://localhost:${port}`));
}
