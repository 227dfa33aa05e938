// The same two endpoints on Fastify: `npx tsx examples/fastify.ts`.
import Fastify, { type FastifyInstance } from 'fastify';
import { pathToFileURL } from 'node:url';
import { describeChatwootEvent } from 'hookguard';
import { chatwootWebhook, stripeWebhook } from 'hookguard/fastify';

export async function createFastifyApp(secrets: {
  chatwoot: string | undefined;
  stripe: string | undefined;
}): Promise<FastifyInstance> {
  const app = Fastify({ logger: false });
  await app.register(
    chatwootWebhook({
      path: '/cw',
      secret: secrets.chatwoot,
      on: { message_created: (event) => console.log(describeChatwootEvent(event)) },
    }),
  );
  await app.register(
    stripeWebhook({
      path: '/webhook/payments',
      secret: secrets.stripe,
      on: { 'checkout.session.completed': (event) => console.log('paid', event.data.object.id) },
    }),
  );
  // Sibling routes keep Fastify's JSON parsing: the plugins' raw-body parser is encapsulated.
  app.post('/api/echo', async (request) => request.body);
  return app;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const app = await createFastifyApp({
    chatwoot: process.env.CW_HMAC_SECRET,
    stripe: process.env.STRIPE_WEBHOOK_SECRET,
  });
  const address = await app.listen({ port: Number(process.env.PORT ?? 3000) });
  console.log(`listening on ${address}`);
}
