import Stripe from 'stripe';
import { describe, expect, it } from 'vitest';
import { chatwootDedupKey, verifyChatwootSignature, verifyStripeEvent } from '../../src/index.js';
import {
  chatwootEvent,
  signChatwootPayload,
  signStripePayload,
  stripeEvent,
} from '../../src/testing/index.js';
import { hmacHex } from '../helpers/assertions.js';

const NOW_S = 1_767_225_600;

describe('signStripePayload', () => {
  it('produces exactly the header the official SDK generates, and the SDK accepts it', () => {
    const body = JSON.stringify(stripeEvent('payment_intent.succeeded'));
    const signed = signStripePayload(body, 'whsec_abc', { timestamp: NOW_S });
    expect(signed.body).toBe(body);
    expect(signed.headers['stripe-signature']).toBe(
      Stripe.webhooks.generateTestHeaderString({ payload: body, secret: 'whsec_abc', timestamp: NOW_S }),
    );
    expect(
      Stripe.webhooks.constructEvent(
        signed.body,
        signed.headers['stripe-signature']!,
        'whsec_abc',
        300,
        undefined,
        NOW_S * 1000,
      ).type,
    ).toBe('payment_intent.succeeded');
    expect(signed.headers['content-type']).toBe('application/json');
  });

  it('serialises objects and defaults the timestamp to now (accepted by the SDK with its clock)', () => {
    const event = stripeEvent('checkout.session.completed');
    const signed = signStripePayload(event, 'whsec_abc');
    expect(JSON.parse(signed.body)).toEqual(event);
    expect(
      Stripe.webhooks.constructEvent(signed.body, signed.headers['stripe-signature']!, 'whsec_abc').id,
    ).toBe(event.id);
    expect(verifyStripeEvent(signed.body, signed.headers, { secret: 'whsec_abc' }).id).toBe(event.id);
  });
});

describe('signChatwootPayload', () => {
  it('signs "{timestamp}.{body}" with a sha256= prefix, and sends timestamp and delivery id', () => {
    const signed = signChatwootPayload('{"event":"message_created"}', 'cw', {
      timestamp: NOW_S,
      deliveryId: 'd-1',
    });
    expect(signed.headers).toEqual({
      'content-type': 'application/json',
      'x-chatwoot-delivery': 'd-1',
      'x-chatwoot-timestamp': String(NOW_S),
      'x-chatwoot-signature': `sha256=${hmacHex('cw', `${NOW_S}.{"event":"message_created"}`)}`,
    });
  });

  it('signs the body alone under legacy-body, with no timestamp', () => {
    const signed = signChatwootPayload({ event: 'message_created' }, 'cw', { scheme: 'legacy-body' });
    expect(signed.headers['x-chatwoot-signature']).toBe(hmacHex('cw', signed.body));
    expect(signed.headers['x-chatwoot-timestamp']).toBeUndefined();
    expect(
      verifyChatwootSignature(signed.body, signed.headers, { secret: 'cw', scheme: 'legacy-body' }).timestamp,
    ).toBeUndefined();
  });

  it('defaults to now and a fresh UUID delivery id per call', () => {
    const a = signChatwootPayload({ event: 'message_created' }, 'cw');
    const b = signChatwootPayload({ event: 'message_created' }, 'cw');
    expect(a.headers['x-chatwoot-delivery']).toMatch(/^[0-9a-f-]{36}$/);
    expect(a.headers['x-chatwoot-delivery']).not.toBe(b.headers['x-chatwoot-delivery']);
    expect(verifyChatwootSignature(a.body, a.headers, { secret: 'cw' }).deliveryId).toBe(
      a.headers['x-chatwoot-delivery'],
    );
  });
});

describe('chatwootEvent', () => {
  it("carries a message's content three times, as Chatwoot's body does, unless the overrides place it", () => {
    const e = chatwootEvent('message_created', { content: 'Where is my order?' });
    expect(e.conversation?.messages?.[0]).toMatchObject({
      content: 'Where is my order?',
      processed_message_content: 'Where is my order?',
    });
    const placed = chatwootEvent('message_updated', { content: 'edited', conversation: { messages: [] } });
    expect(placed.conversation?.messages).toEqual([]);
  });

  it('is signed as Rails serialises it: <, >, &, U+2028 and U+2029 escaped, 6 bytes each', () => {
    const content = '<b>Tom & Jerry</b>\u2028';
    const signed = signChatwootPayload(chatwootEvent('message_created', { content }), 'cw');
    expect(signed.body).toContain('"content":"\\u003cb\\u003eTom \\u0026 Jerry\\u003c/b\\u003e\\u2028"');
    expect(signed.body).not.toMatch(/[<>&\u2028]/);
    expect(JSON.parse(signed.body)).toMatchObject({
      content,
      conversation: { messages: [{ content, processed_message_content: content }] },
    });
    expect(verifyChatwootSignature(signed.body, signed.headers, { secret: 'cw' }).deliveryId).toBeDefined();
  });

  it('builds an incoming, public message with fresh ids that the dedup key understands', () => {
    const a = chatwootEvent('message_created');
    const b = chatwootEvent('message_created');
    expect(a.event).toBe('message_created');
    expect(a.message_type).toBe('incoming');
    expect(a.private).toBe(false);
    expect(a.id).not.toBe(b.id);
    expect(chatwootDedupKey(a)).toBe(`chatwoot:1:message_created:${a.id}`);
  });

  it('deep-merges overrides: objects merged, scalars and arrays replaced', () => {
    const e = chatwootEvent('message_created', {
      message_type: 'outgoing',
      conversation: { id: 42 },
      attachments: [],
    });
    expect(e.message_type).toBe('outgoing');
    expect(e.conversation?.id).toBe(42);
    expect(e.conversation?.inbox_id).toBe(1); // kept from the default
    expect(e.attachments).toEqual([]);
  });

  it('builds conversation payloads without a top-level account, as Chatwoot sends them', () => {
    const e = chatwootEvent('conversation_created');
    expect(e).not.toHaveProperty('account');
    expect(e.messages?.[0]?.account_id).toBe(1);
    expect(chatwootDedupKey(e)).toBe(`chatwoot:1:conversation_created:${e.id}`);
    expect(chatwootEvent('conversation_status_changed').changed_attributes).toHaveLength(1);
  });

  it.each([
    'message_updated',
    'conversation_updated',
    'conversation_opened',
    'conversation_resolved',
    'conversation_typing_on',
    'conversation_typing_off',
    'contact_created',
    'contact_updated',
    'webwidget_triggered',
  ] as const)('builds %s', (name) => {
    const e = chatwootEvent(name);
    expect(e.event).toBe(name);
    expect(JSON.parse(JSON.stringify(e))).toEqual(e);
  });
});

describe('stripeEvent', () => {
  it('builds a classic event with a fresh id and the object the type is about', () => {
    const a = stripeEvent('checkout.session.completed');
    const b = stripeEvent('checkout.session.completed');
    expect(a.id).toMatch(/^evt_test_/);
    expect(a.id).not.toBe(b.id);
    expect(a.object).toBe('event');
    expect(a.data.object.object).toBe('checkout.session');
    expect(a.data.object.id).toMatch(/^cs_test_/);
    expect(stripeEvent('customer.subscription.updated').data.object.object).toBe('subscription');
  });

  it('merges overrides into data.object', () => {
    const e = stripeEvent('checkout.session.completed', {
      id: 'evt_fixed',
      data: { object: { amount_total: 1999 } },
    });
    expect(e.id).toBe('evt_fixed');
    expect(e.data.object.amount_total).toBe(1999);
    expect(e.data.object.object).toBe('checkout.session');
  });
});
