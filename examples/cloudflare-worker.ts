// A Cloudflare Worker receiving Chatwoot and Stripe webhooks; no nodejs_compat needed: on workerd,
// hookguard verifies with Web Crypto. Deploy with wrangler (`main = "examples/cloudflare-worker.ts"`) and set
// the secrets with `wrangler secret put CW_HMAC_SECRET` / `STRIPE_WEBHOOK_SECRET`. Tested in
// test/runtimes/runtimes.test.ts (bundled from the packed package and run in workerd through miniflare).
//
// Workers read secrets from `env`, not process.env, so the handlers are made on the first request. The
// default memory store lives per isolate: a retry that reaches another isolate is processed again. For
// exactly-once across isolates, give `store` a DedupStore over a shared database.
import { chatwootWebhook, stripeWebhook } from 'hookguard/fetch';

export interface Env {
  CW_HMAC_SECRET?: string;
  STRIPE_WEBHOOK_SECRET?: string;
}

let routes: Record<string, (request: Request) => Promise<Response>> | undefined;

function routesFor(env: Env) {
  return {
    '/cw': chatwootWebhook({
      secret: env.CW_HMAC_SECRET,
      on: {
        message_created: (event, ctx) => ctx.log.info({ conversation: event.conversation?.id }, 'user wrote'),
      },
    }),
    '/webhook/payments': stripeWebhook({
      secret: env.STRIPE_WEBHOOK_SECRET,
      on: {
        'checkout.session.completed': (event, ctx) => ctx.log.info({ session: event.data.object.id }, 'paid'),
        'invoice.paid': (event, ctx) => ctx.log.info({ invoice: event.data.object.id }, 'invoice paid'),
      },
    }),
  };
}

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    routes ??= routesFor(env);
    const route = routes[new URL(request.url).pathname];
    return route ? route(request) : new Response('not found', { status: 404 });
  },
};
