import type Stripe from 'stripe';
import { describe, expectTypeOf, it } from 'vitest';
import {
  chatwootDedupKey,
  createMemoryDedupStore,
  verifyChatwootSignature,
  verifyStripeEvent,
  type ChatwootEvent,
  type ChatwootMessageEvent,
  type ClaimResult,
  type DedupStore,
  type StripeThinEvent,
  type StripeWebhookEvent,
  type WebhookErrorCode,
} from '../../src/index.js';
import { chatwootEvent, stripeEvent } from '../../src/testing/index.js';
import { coalesce, type BurstContext } from '../../src/inbox/bullmq.js';
import { coalesce as coalescePgBoss } from '../../src/inbox/pg-boss.js';
import type { ChatwootWebhookOptions, Staleness, StripeWebhookOptions } from '../../src/index.js';

describe('types of hookguard', () => {
  it('verifyStripeEvent returns classic or thin events, and narrowing by type reaches data.object', () => {
    expectTypeOf(verifyStripeEvent).returns.toEqualTypeOf<StripeWebhookEvent>();
    const event = {} as StripeWebhookEvent;
    if (event.type === 'checkout.session.completed') {
      expectTypeOf(event.data.object).toEqualTypeOf<Stripe.Checkout.Session>();
    }
    if (event.object === 'v2.core.event') expectTypeOf(event).toEqualTypeOf<StripeThinEvent>();
  });

  it('verifyChatwootSignature takes only the two schemes', () => {
    expectTypeOf(verifyChatwootSignature).returns.toEqualTypeOf<{
      secretIndex: number;
      timestamp: number | undefined;
      deliveryId: string | undefined;
    }>();
    // @ts-expect-error unknown scheme
    expectTypeOf(verifyChatwootSignature).toBeCallableWith('', {}, { secret: 's', scheme: 'hmac' });
  });

  it('the memory store is a DedupStore with a size', () => {
    const store = createMemoryDedupStore();
    expectTypeOf(store).toExtend<DedupStore>();
    expectTypeOf(store.size).toEqualTypeOf<number>();
    expectTypeOf<ClaimResult['status']>().toEqualTypeOf<'claimed' | 'duplicate' | 'in-flight'>();
    expectTypeOf(chatwootDedupKey).returns.toEqualTypeOf<string | undefined>();
  });

  it('ChatwootEvent narrows by event name', () => {
    const e = {} as ChatwootEvent;
    if (e.event === 'message_created')
      expectTypeOf(e).toEqualTypeOf<ChatwootMessageEvent<'message_created'>>();
    expectTypeOf<'STORE_UNAVAILABLE'>().toExtend<WebhookErrorCode>();
  });
});

describe('types of hookguard/testing', () => {
  it('builders return the narrowed payload types', () => {
    expectTypeOf(chatwootEvent('message_created')).toEqualTypeOf<ChatwootMessageEvent<'message_created'>>();
    expectTypeOf(stripeEvent('invoice.paid').data.object).toEqualTypeOf<Stripe.Invoice>();
    // @ts-expect-error not a Chatwoot event name
    expectTypeOf(chatwootEvent).toBeCallableWith('message_deleted');
  });

  it('a coalesced handler gets the typed batch of its event, and ctx.stale is typed on every handler', () => {
    const chatwoot = {
      secret: 's',
      on: {
        message_created: coalesce({ windowMs: 1000 }, (messages, ctx) => {
          expectTypeOf(messages).toEqualTypeOf<ChatwootEvent<'message_created'>[]>();
          expectTypeOf(ctx).toEqualTypeOf<BurstContext>();
          expectTypeOf(ctx.signal).toEqualTypeOf<AbortSignal>();
        }),
        conversation_status_changed: coalescePgBoss({}, (events) => {
          expectTypeOf(events).toEqualTypeOf<ChatwootEvent<'conversation_status_changed'>[]>();
        }),
      },
    } satisfies ChatwootWebhookOptions;
    expectTypeOf(chatwoot.on.message_created).toBeFunction();
    const stripe = {
      secret: 'whsec_s',
      on: {
        'customer.subscription.updated': (event, ctx) => {
          expectTypeOf(ctx.stale).toEqualTypeOf<Staleness | undefined>();
          expectTypeOf(event.data.object).toEqualTypeOf<Stripe.Subscription>();
        },
      },
    } satisfies StripeWebhookOptions;
    expectTypeOf(stripe.on).toBeObject();
  });
});
