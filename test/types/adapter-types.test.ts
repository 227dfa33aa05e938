import express from 'express';
import Fastify from 'fastify';
import Koa from 'koa';
import type Stripe from 'stripe';
import { describe, expectTypeOf, it } from 'vitest';
import * as expressAdapter from '../../src/adapters/express.js';
import * as fastifyAdapter from '../../src/adapters/fastify.js';
import * as fetchAdapter from '../../src/adapters/fetch.js';
import * as koaAdapter from '../../src/adapters/koa.js';
import {
  createChatwootHandler,
  createStripeHandler,
  type ChatwootInboxEvent,
  type ChatwootMessageEvent,
  type ChatwootRef,
  type StripeThinEvent,
  type WebhookContext,
  type WebhookHandler,
  type WebhookRequest,
  type WebhookResponse,
  type WebhookStats,
} from '../../src/index.js';

describe('handler types', () => {
  it('narrow Stripe handlers per event type', () => {
    createStripeHandler({
      secret: 's',
      on: {
        'checkout.session.completed': (event, ctx) => {
          expectTypeOf(event.data.object).toEqualTypeOf<Stripe.Checkout.Session>();
          expectTypeOf(ctx).toEqualTypeOf<WebhookContext>();
        },
        'invoice.paid': (event) => expectTypeOf(event.data.object).toEqualTypeOf<Stripe.Invoice>(),
        'v1.checkout.session.completed': (event) => expectTypeOf(event).toEqualTypeOf<StripeThinEvent>(),
      },
    });
  });

  it('narrow Chatwoot handlers per event name', () => {
    createChatwootHandler({
      secret: 's',
      on: {
        message_created: (event) =>
          expectTypeOf(event).toEqualTypeOf<ChatwootMessageEvent<'message_created'>>(),
        inbox_created: (event) => {
          expectTypeOf(event).toEqualTypeOf<ChatwootInboxEvent<'inbox_created'>>();
          expectTypeOf(event.channel_type).toEqualTypeOf<string | null | undefined>();
        },
        inbox_updated: (event) => expectTypeOf(event.event).toEqualTypeOf<'inbox_updated'>(),
        conversation_created: (event) => {
          // Fields of newer Chatwoot versions, all optional.
          expectTypeOf(event.account).toEqualTypeOf<ChatwootRef | null | undefined>();
          expectTypeOf(event.messages?.[0]?.processed_message_content).toEqualTypeOf<
            string | null | undefined
          >();
          expectTypeOf(event.meta?.assignee_type).toEqualTypeOf<string | null | undefined>();
        },
      },
    });
  });

  it('reject unknown option keys and unknown event names', () => {
    // Never called: these exist for the compiler.
    const typeChecks = [
      // @ts-expect-error unknown option
      () => createStripeHandler({ secret: 's', tolerance: 300 }),
      // @ts-expect-error not a Chatwoot event name
      () => createChatwootHandler({ secret: 's', on: { message_deleted: () => {} } }),
      // @ts-expect-error not a Stripe event type
      () => createStripeHandler({ secret: 's', on: { 'checkout.session.done': () => {} } }),
    ];
    expectTypeOf(typeChecks).toBeArray();
  });

  it('pipeline handlers take a WebhookRequest and give a WebhookResponse', () => {
    expectTypeOf(createChatwootHandler({ secret: 's' })).toEqualTypeOf<WebhookHandler>();
    expectTypeOf(createChatwootHandler({ secret: 's' })).toBeCallableWith({} as WebhookRequest);
    expectTypeOf(createChatwootHandler({ secret: 's' })).returns.resolves.toEqualTypeOf<WebhookResponse>();
  });
});

describe('adapter types fit their frameworks', () => {
  it('express: app.post accepts the handlers', () => {
    const app = express();
    app.post('/cw', expressAdapter.chatwootWebhook({ secret: 's' }));
    app.post(
      '/stripe',
      express.raw({ type: 'application/json' }),
      expressAdapter.stripeWebhook({ secret: 's' }),
    );
  });

  it('fastify: register accepts the plugins, and path is required', async () => {
    const app = Fastify();
    await app.register(fastifyAdapter.chatwootWebhook({ path: '/cw', secret: 's' }));
    // @ts-expect-error path is required
    expectTypeOf(fastifyAdapter.stripeWebhook).toBeCallableWith({ secret: 's' });
  });

  it('koa: app.use accepts the middleware', () => {
    const app = new Koa();
    app.use(koaAdapter.chatwootWebhook({ path: '/cw', secret: 's' }));
  });

  it('fetch: a (Request) => Promise<Response>, and every adapter has stats()', () => {
    const handler = fetchAdapter.stripeWebhook({ secret: 's' });
    expectTypeOf(handler).toBeCallableWith(new Request('http://localhost'));
    expectTypeOf(handler).returns.toEqualTypeOf<Promise<Response>>();
    expectTypeOf(handler.stats).returns.toEqualTypeOf<WebhookStats>();
    expectTypeOf(expressAdapter.chatwootWebhook({ secret: 's' }).stats).returns.toEqualTypeOf<WebhookStats>();
    expectTypeOf(koaAdapter.stripeWebhook({ secret: 's' }).stats).returns.toEqualTypeOf<WebhookStats>();
    expectTypeOf(
      fastifyAdapter.stripeWebhook({ path: '/', secret: 's' }).stats,
    ).returns.toEqualTypeOf<WebhookStats>();
  });
});
