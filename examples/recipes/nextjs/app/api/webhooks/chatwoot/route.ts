// A Next.js App Router route handler: save as app/api/webhooks/chatwoot/route.ts and point the Chatwoot
// agent bot (or webhook) at https://<your host>/api/webhooks/chatwoot.
//
// The App Router does not parse route-handler bodies, so the adapter reads the raw bytes itself: nothing to
// configure. On serverless hosts each instance has its own memory: give every route the same Redis or
// PostgreSQL store (hookguard/redis, hookguard/postgres) so a retry landing on another instance is still a
// duplicate. Tested in test/recipes.test.ts.
import { chatwootWebhook } from 'hookguard/fetch';

// The Node.js runtime (Next.js's default): hookguard verifies with node:crypto. The Edge runtime works too,
// with Web Crypto: see ../edge/route.ts.
export const runtime = 'nodejs';

export const POST = chatwootWebhook({
  secret: process.env.CW_HMAC_SECRET,
  on: {
    message_created: async (event, ctx) => {
      // ctx.req is the Request Next.js passed in: its URL, cookies, headers.
      ctx.log.info(
        { conversation: event.conversation?.id, path: new URL(ctx.req.url).pathname },
        'user wrote',
      );
    },
  },
});
