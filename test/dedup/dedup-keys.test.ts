import { describe, expect, it } from 'vitest';
import { chatwootDedupKey, stripeDedupKey } from '../../src/index.js';
import { fixture } from '../helpers/assertions.js';

const DELIVERY = { 'X-Chatwoot-Delivery': '7d1c5e2a-0f4b-4b9e-8c3d-2a1b0c9d8e7f' };

describe('chatwootDedupKey', () => {
  it('keys message_created on account and message id (a fixture from Chatwoot)', () => {
    const payload = JSON.parse(fixture('chatwoot-message-created.json')) as unknown;
    expect(chatwootDedupKey(payload, DELIVERY)).toBe('chatwoot:2:message_created:4821');
  });

  it('catches a double emit of one message with two delivery ids (chatwoot#11901)', () => {
    const payload = { event: 'message_created', id: 9, account: { id: 3 } };
    const first = chatwootDedupKey(payload, { 'x-chatwoot-delivery': 'aaaa' });
    const second = chatwootDedupKey(payload, { 'x-chatwoot-delivery': 'bbbb' });
    expect(first).toBe('chatwoot:3:message_created:9');
    expect(second).toBe(first);
  });

  it('reads the message id from message.id, as relays send it', () => {
    expect(chatwootDedupKey({ event: 'message_created', message: { id: 77, account_id: 5 } })).toBe(
      'chatwoot:5:message_created:77',
    );
  });

  it('keys conversation_created on account and conversation, taking the account from messages[0]', () => {
    const payload = JSON.parse(fixture('chatwoot-conversation-created.json')) as unknown;
    expect(chatwootDedupKey(payload, DELIVERY)).toBe('chatwoot:2:conversation_created:58');
    expect(chatwootDedupKey({ event: 'conversation_created', id: 58, account: { id: 9 } })).toBe(
      'chatwoot:9:conversation_created:58',
    );
  });

  it('keeps conversation 7 of account 1 apart from conversation 7 of account 2', () => {
    const a = chatwootDedupKey({ event: 'conversation_created', id: 7, messages: [{ account_id: 1 }] });
    const b = chatwootDedupKey({ event: 'conversation_created', id: 7, messages: [{ account_id: 2 }] });
    expect(a).not.toBe(b);
  });

  it('keys a conversation_created without any account on inbox_id + id (inbox ids are global)', () => {
    expect(
      chatwootDedupKey({ event: 'conversation_created', id: 7, inbox_id: 3, messages: [] }, DELIVERY),
    ).toBe('chatwoot:inbox:3:conversation_created:7');
    // Conversation 7 of inbox 3 and of inbox 4 are different conversations.
    expect(chatwootDedupKey({ event: 'conversation_created', id: 7, inbox_id: 4 })).toBe(
      'chatwoot:inbox:4:conversation_created:7',
    );
  });

  it.each([
    'message_updated',
    'conversation_updated',
    'conversation_status_changed',
    'contact_updated',
    'webwidget_triggered',
    'inbox_updated',
  ])('%s legitimately repeats, so it keys on its signed content, never on X-Chatwoot-Delivery', (event) => {
    const payload = { event, id: 12, account: { id: 1 }, changed_attributes: [{ status: 'open' }] };
    const key = chatwootDedupKey(payload, DELIVERY)!;
    expect(key).toMatch(new RegExp(`^chatwoot:1:${event}:content-[A-Za-z0-9_-]{43}$`));
    // A retry (same body, any delivery id) has the same key ...
    expect(chatwootDedupKey(payload, { 'x-chatwoot-delivery': 'other' })).toBe(key);
    expect(chatwootDedupKey(JSON.parse(JSON.stringify(payload)) as unknown)).toBe(key);
    // ... a new update of the same object has a new one.
    expect(chatwootDedupKey({ ...payload, changed_attributes: [{ status: 'resolved' }] })).not.toBe(key);
  });

  it('is undefined only when the payload is not an object', () => {
    for (const payload of [null, undefined, 42, 'message_created']) {
      expect(chatwootDedupKey(payload)).toBeUndefined();
    }
    // Without an id, a message is keyed on its content like any other event.
    expect(chatwootDedupKey({ event: 'message_created' })).toMatch(/^chatwoot:_:message_created:content-/);
  });

  it('ignores ids that are not integers or strings, and uses "_" for an unknown account', () => {
    expect(chatwootDedupKey({ event: 'message_created', id: 1.5 })).toMatch(/:content-/);
    expect(chatwootDedupKey({ event: 'message_created', id: { x: 1 } })).toMatch(/:content-/);
    expect(chatwootDedupKey({ event: 'message_created', id: 3 })).toBe('chatwoot:_:message_created:3');
  });

  it('escapes ":" inside ids so one key cannot impersonate another', () => {
    const tricky = chatwootDedupKey({
      event: 'message_created',
      id: '1',
      account: { id: '2:message_created' },
    });
    const plain = chatwootDedupKey({ event: 'message_created', id: 'message_created:1', account: { id: 2 } });
    expect(tricky).not.toBe(plain);
  });

  it('bounds key length by hashing long ids, still distinct and stable', () => {
    const long = 'x'.repeat(10_000);
    const a = chatwootDedupKey({ event: 'message_created', id: `${long}a` })!;
    const b = chatwootDedupKey({ event: 'message_created', id: `${long}b` })!;
    expect(a.length).toBeLessThanOrEqual(200);
    expect(a.startsWith('chatwoot:sha256:')).toBe(true);
    expect(a).not.toBe(b);
    expect(chatwootDedupKey({ event: 'message_created', id: `${long}a` })).toBe(a);
    expect(chatwootDedupKey({ event: `message_updated${long}`, id: 1 })!.length).toBeLessThanOrEqual(200);
  });
});

describe('stripeDedupKey', () => {
  it('keys classic events on their id', () => {
    expect(stripeDedupKey({ id: 'evt_1' })).toBe('stripe:evt_1');
    expect(stripeDedupKey({ id: 'evt_1', object: 'event', snapshot_event: 'evt_other' })).toBe(
      'stripe:evt_1',
    );
  });

  it('keys thin events on snapshot_event, so thin and classic copies of one change collapse', () => {
    const thin = { id: 'evt_thin', object: 'v2.core.event', snapshot_event: 'evt_1' };
    expect(stripeDedupKey(thin)).toBe(stripeDedupKey({ id: 'evt_1' }));
    expect(stripeDedupKey({ id: 'evt_thin', object: 'v2.core.event' })).toBe('stripe:evt_thin');
    expect(stripeDedupKey({ id: 'evt_thin', object: 'v2.core.event', snapshot_event: null })).toBe(
      'stripe:evt_thin',
    );
  });

  it('is undefined without a usable id', () => {
    for (const event of [{}, { id: '' }, { id: null }, { id: {} }, null, 'evt_1']) {
      expect(stripeDedupKey(event as { id?: unknown })).toBeUndefined();
    }
  });
});
