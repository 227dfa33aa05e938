// The inbox's default ordering keys, from the payloads Chatwoot and Stripe send (test/fixtures and
// hookguard/testing's realistic events), and the user's own function.
import { describe, expect, it } from 'vitest';
import { chatwootOrderKey, orderKeyOf, stripeOrderKey } from '../../src/inbox/order-keys.js';
import { chatwootEvent, stripeEvent } from '../../src/testing/index.js';

describe('ordering keys', () => {
  it('puts a message and its conversation events under one key: the inbox and the conversation id', () => {
    const message = chatwootEvent('message_created', { conversation: { id: 7, inbox_id: 3 } });
    const updated = chatwootEvent('conversation_updated', { id: 7, inbox_id: 3 });
    const status = chatwootEvent('conversation_status_changed', { id: 7, inbox_id: 3 });
    expect(chatwootOrderKey(message)).toBe('chatwoot:inbox:3:conversation:7');
    expect(chatwootOrderKey(updated)).toBe('chatwoot:inbox:3:conversation:7');
    expect(chatwootOrderKey(status)).toBe('chatwoot:inbox:3:conversation:7');
    // Conversation 7 of another inbox (another account's display number 7) is another key.
    const other = chatwootEvent('message_created', { conversation: { id: 7, inbox_id: 4 } });
    expect(chatwootOrderKey(other)).toBe('chatwoot:inbox:4:conversation:7');
  });

  it('falls back to the top-level inbox, then the account, and gives none to events of no conversation', () => {
    expect(chatwootOrderKey({ event: 'message_created', conversation: { id: 9 }, inbox: { id: 2 } })).toBe(
      'chatwoot:inbox:2:conversation:9',
    );
    expect(chatwootOrderKey({ event: 'message_created', conversation: { id: 9 }, account: { id: 5 } })).toBe(
      'chatwoot:account:5:conversation:9',
    );
    expect(chatwootOrderKey(chatwootEvent('contact_created'))).toBeUndefined();
    expect(chatwootOrderKey({ event: 'message_created' })).toBeUndefined();
  });

  it("keys a Stripe event on the object it is about, so a subscription's events share one", () => {
    const created = stripeEvent('customer.subscription.created', { data: { object: { id: 'sub_1' } } });
    const updated = stripeEvent('customer.subscription.updated', { data: { object: { id: 'sub_1' } } });
    expect(stripeOrderKey(created)).toBe('stripe:sub_1');
    expect(stripeOrderKey(updated)).toBe('stripe:sub_1');
    expect(stripeOrderKey({ id: 'evt_1', data: {} })).toBeUndefined();
  });

  it("takes the endpoint's own key, null for none, else the provider's default", () => {
    const event = stripeEvent('customer.subscription.updated', { data: { object: { id: 'sub_9' } } });
    const job = { provider: 'stripe' as const, event, key: 'k', deliveryId: undefined, name: event.type };
    expect(orderKeyOf(job)).toBe('stripe:sub_9');
    expect(orderKeyOf({ ...job, orderKey: 'mine' })).toBe('mine');
    expect(orderKeyOf({ ...job, orderKey: null })).toBeUndefined();
    const message = chatwootEvent('message_created', { conversation: { id: 3, inbox_id: 8 } });
    expect(orderKeyOf({ ...job, provider: 'chatwoot', event: message })).toBe(
      'chatwoot:inbox:8:conversation:3',
    );
  });
});
