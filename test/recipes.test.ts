// The recipes in examples/recipes run here as a reader would use them: real servers, real HTTP, Stripe
// signatures from the official stripe package. (chatwoot-reply.ts is exercised by its own test file,
// examples/recipes/testing-your-handler.test.ts.)
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import express from 'express';
import Stripe from 'stripe';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { chatwootEvent, signChatwootPayload, stripeEvent } from '../src/testing/index.js';
import { createApp as createAfter } from '../examples/recipes/migrate-from-construct-event/after.js';
import { createApp as createBefore } from '../examples/recipes/migrate-from-construct-event/before.js';
import { subscriptionSync } from '../examples/recipes/stripe-subscription-sync.js';
import { createBullMQInbox } from '../src/inbox/bullmq.js';
import { stripeWebhook } from '../src/adapters/express.js';
import { sleep } from './helpers/http.js';
import { listening, serveFetch, type Running } from './helpers/servers.js';
import { redisUp, requireService } from './helpers/services.js';

const redisAvailable = await redisUp();

const CW = 'recipe-cw-secret';
const WH = 'whsec_recipe';
const stripe = new Stripe('sk_test_unused');
let running: Running | undefined;
let closeApp: (() => Promise<unknown>) | undefined;

afterEach(async () => {
  await running?.close();
  await closeApp?.();
  running = undefined;
  closeApp = undefined;
  vi.restoreAllMocks();
});

function stripeDelivery(event: object, secret = WH): { body: string; headers: Record<string, string> } {
  const body = JSON.stringify(event);
  const header = stripe.webhooks.generateTestHeaderString({ payload: body, secret });
  return { body, headers: { 'content-type': 'application/json', 'stripe-signature': header } };
}

async function post(path: string, signed: { body: string; headers: Record<string, string> }) {
  const res = await fetch(running!.url(path), { method: 'POST', headers: signed.headers, body: signed.body });
  const text = await res.text();
  return { status: res.status, text };
}

describe('Next.js App Router routes (examples/recipes/nextjs)', () => {
  let routes: Map<string, (request: Request) => Promise<Response>>;
  beforeAll(async () => {
    // Next.js loads route modules with the environment already set.
    vi.stubEnv('CW_HMAC_SECRET', CW);
    vi.stubEnv('STRIPE_WEBHOOK_SECRET', WH);
    const chatwoot = await import('../examples/recipes/nextjs/app/api/webhooks/chatwoot/route.js');
    const stripeRoute = await import('../examples/recipes/nextjs/app/api/webhooks/stripe/route.js');
    vi.unstubAllEnvs();
    expect([chatwoot.runtime, stripeRoute.runtime]).toEqual(['nodejs', 'nodejs']);
    routes = new Map([
      ['/api/webhooks/chatwoot', chatwoot.POST],
      ['/api/webhooks/stripe', stripeRoute.POST],
    ]);
  });

  function serve(): Promise<Running> {
    // As Next.js calls a route handler: the exported POST gets the Request for its path.
    return listening(
      serveFetch(async (request) => {
        const handler = routes.get(new URL(request.url).pathname);
        return handler ? handler(request) : new Response(null, { status: 404 });
      }),
    );
  }

  it('processes a Chatwoot message once and refuses a forged one', async () => {
    running = await serve();
    const logs = vi.spyOn(console, 'info');
    const signed = signChatwootPayload(chatwootEvent('message_created'), CW);
    expect((await post('/api/webhooks/chatwoot', signed)).text).toBe('{"ok":true}');
    expect((await post('/api/webhooks/chatwoot', signed)).text).toBe('{"ok":true,"duplicate":true}');
    const forged = signChatwootPayload(chatwootEvent('message_created'), 'wrong');
    expect((await post('/api/webhooks/chatwoot', forged)).status).toBe(401);
    // The default logger prints the route's own ctx.log.info line, once (the duplicate and the forgery
    // never reach the handler), and none of hookguard's own info lines.
    expect(logs.mock.calls.map(([line]) => String(line))).toEqual([
      expect.stringMatching(/^hookguard info: user wrote provider=chatwoot event=message_created /),
    ]);
  });

  it('processes a Stripe event signed by the stripe package once', async () => {
    running = await serve();
    const signed = stripeDelivery(stripeEvent('checkout.session.completed'));
    expect(await post('/api/webhooks/stripe', signed)).toEqual({ status: 200, text: '{"ok":true}' });
    expect((await post('/api/webhooks/stripe', signed)).text).toBe('{"ok":true,"duplicate":true}');
  });
});

describe('NestJS (examples/recipes/nestjs.ts)', () => {
  async function start(rawBody: boolean, seen: string[] = []): Promise<void> {
    const { createNestApp } = await import('../examples/recipes/nestjs.js');
    const app = await createNestApp({ chatwoot: CW, stripe: WH }, { rawBody, seen });
    await app.listen(0, '127.0.0.1');
    closeApp = () => app.close();
    running = await listening(app.getHttpServer());
  }

  it('verifies with the raw body Nest kept, and processes each event once', async () => {
    const seen: string[] = [];
    await start(true, seen);
    const message = chatwootEvent('message_created');
    const signed = signChatwootPayload(message, CW);
    expect((await post('/webhooks/chatwoot', signed)).text).toBe('{"ok":true}');
    expect((await post('/webhooks/chatwoot', signed)).text).toBe('{"ok":true,"duplicate":true}');
    const session = stripeEvent('checkout.session.completed');
    expect((await post('/webhooks/stripe', stripeDelivery(session))).status).toBe(200);
    expect(seen).toEqual([`chatwoot ${message.id}`, `stripe ${session.id}`]);
  });

  it("takes Chatwoot's largest message, ~2.7 MB (Nest alone refuses bodies over 100 KB)", async () => {
    await start(true);
    // 150,000 characters, each escaped to 6 bytes by Rails and carried three times, as Chatwoot sends it.
    const largest = chatwootEvent('message_created', { content: '<'.repeat(150_000) });
    const big = signChatwootPayload(largest, CW);
    expect(big.body.length).toBeGreaterThan(2_700_000);
    expect(await post('/webhooks/chatwoot', big)).toEqual({ status: 200, text: '{"ok":true}' });
  });

  it('without rawBody: true answers 500 RAW_BODY_UNAVAILABLE and logs the fix', async () => {
    const errors = vi.spyOn(console, 'error').mockImplementation(() => {});
    await start(false);
    const signed = signChatwootPayload(chatwootEvent('message_created'), CW);
    expect(await post('/webhooks/chatwoot', signed)).toEqual({
      status: 500,
      text: '{"error":{"code":"RAW_BODY_UNAVAILABLE"}}',
    });
    expect(String(errors.mock.calls[0]?.[0])).toMatch(/rawBody/);
  });
});

describe('migrating from constructEvent + express.raw (examples/recipes/migrate-from-construct-event)', () => {
  it.each(['before', 'after'] as const)(
    '%s: accepts what Stripe signs and refuses a bad signature',
    async (which) => {
      const createApp = which === 'before' ? createBefore : createAfter;
      const fulfilled: string[] = [];
      running = await listening(createApp(WH, (s) => void fulfilled.push(s.id)).listen(0, '127.0.0.1'));
      const event = stripeEvent('checkout.session.completed');
      const signed = stripeDelivery(event);
      const first = await post('/webhook/payments', signed);
      const retry = await post('/webhook/payments', signed);
      const forged = await post('/webhook/payments', stripeDelivery(event, 'whsec_wrong'));
      expect([first.status, retry.status]).toEqual([200, 200]);
      if (which === 'before') {
        // The retry fulfils the order a second time, and the refusal echoes the verification error.
        expect(fulfilled).toEqual([event.data.object.id, event.data.object.id]);
        expect(forged.status).toBe(400);
        expect(forged.text).toMatch(/^Webhook Error: /);
      } else {
        expect(fulfilled).toEqual([event.data.object.id]);
        expect(retry.text).toBe('{"ok":true,"duplicate":true}');
        expect(forged).toEqual({ status: 401, text: '{"error":{"code":"SIGNATURE_MISMATCH"}}' });
      }
    },
  );
});

describe('keeping subscriptions in sync from events in no order (examples/recipes/stripe-subscription-sync.ts)', () => {
  const up = requireService('Redis', redisAvailable);

  it.runIf(up)(
    'ends with each subscription as Stripe has it, after 200 lifecycles delivered shuffled',
    async () => {
      // Stripe's API, as the recipe's refetch reaches it: every lifecycle already happened, so it answers
      // each subscription's final state.
      const final = new Map<string, Stripe.Subscription>();
      let refetches = 0;
      const api = await listening(
        createServer((req, res) => {
          const id = /^\/v1\/subscriptions\/([\w-]+)$/.exec(req.url ?? '')?.[1];
          const subscription = id === undefined ? undefined : final.get(id);
          refetches++;
          res.writeHead(subscription ? 200 : 404, { 'content-type': 'application/json' });
          res.end(JSON.stringify(subscription ?? { error: { type: 'invalid_request_error' } }));
        }).listen(0, '127.0.0.1'),
      );
      const client = new Stripe('sk_test_recipe', {
        host: '127.0.0.1',
        port: Number(new URL(api.url('/')).port),
        protocol: 'http',
      });
      const inbox = createBullMQInbox({
        connection: { host: '127.0.0.1', port: 6379 },
        queueName: `hg-recipe-sync-${randomUUID()}`,
        ordered: true,
        logger: false,
      });
      const table = new Map<string, Stripe.Subscription>();
      const options = subscriptionSync({
        secret: WH,
        inbox,
        stripe: client,
        table: { save: async (subscription) => void table.set(subscription.id, subscription) },
      });
      const app = express();
      app.post('/stripe', stripeWebhook(options));
      running = await listening(app.listen(0, '127.0.0.1'));
      closeApp = async () => {
        await inbox.close(2000);
        await inbox.queue.obliterate({ force: true }).catch(() => undefined);
        await api.close();
      };

      const deliveries: object[] = [];
      for (let i = 0; i < 200; i++) {
        const created = 1_790_000_000 + i * 10;
        const steps = [
          ['customer.subscription.created', created, 'incomplete'],
          ['customer.subscription.updated', created, 'active'], // paid in the same second
          ['customer.subscription.updated', created + 60, 'past_due'],
          ['customer.subscription.updated', created + 120, 'active'],
          ['customer.subscription.deleted', created + 180, 'canceled'],
        ] as const;
        for (const [type, at, status] of steps) {
          const event = stripeEvent(type, { created: at, data: { object: { id: `sub_sync_${i}`, status } } });
          deliveries.push(event);
          final.set(`sub_sync_${i}`, event.data.object);
        }
      }
      deliveries.sort(() => Math.random() - 0.5);
      for (const event of deliveries) expect((await post('/stripe', stripeDelivery(event))).status).toBe(200);
      const worker = inbox.worker({ stripe: options, concurrency: 8 });
      const end = Date.now() + 60_000;
      while (worker.stats().processed < deliveries.length && Date.now() < end) await sleep(50);
      expect(worker.stats().processed).toBe(deliveries.length);
      expect([...final.keys()].filter((id) => table.get(id)?.status !== 'canceled')).toEqual([]);
      expect(refetches).toBeGreaterThan(0);
    },
    90_000,
  );
});
