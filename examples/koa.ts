// The same two endpoints on Koa: `npx tsx examples/koa.ts`.
import Koa from 'koa';
import { pathToFileURL } from 'node:url';
import { describeChatwootEvent } from 'hookguard';
import { chatwootWebhook, stripeWebhook } from 'hookguard/koa';

export function createKoaApp(secrets: { chatwoot: string | undefined; stripe: string | undefined }): Koa {
  const app = new Koa();
  app.use(
    chatwootWebhook({
      path: '/cw',
      secret: secrets.chatwoot,
      on: { message_created: (event) => console.log(describeChatwootEvent(event)) },
    }),
  );
  app.use(
    stripeWebhook({
      path: '/webhook/payments',
      secret: secrets.stripe,
      on: { 'checkout.session.completed': (event) => console.log('paid', event.data.object.id) },
    }),
  );
  return app;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const port = Number(process.env.PORT ?? 3000);
  createKoaApp({ chatwoot: process.env.CW_HMAC_SECRET, stripe: process.env.STRIPE_WEBHOOK_SECRET }).listen(
    port,
    () => console.log(`listening on http://localhost:${port}`),
  );
}
