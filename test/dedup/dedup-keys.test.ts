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

  it('falls back to the delivery id for a conversation_created without an account', () => {
    expect(chatwootDedupKey({ event: 'conversation_created', id: 7 }, DELIVERY)).toBe(
      `chatwoot:delivery:${DELIVERY['X-Chatwoot-Delivery']}`,
    );
    expect(chatwootDedupKey({ event: 'conversation_created', id: 7 })).toBeUndefined();
  });

  it.each([
    'message_updated',
    'conversation_updated',
    'conversation_status_changed',
    'contact_updated',
    'webwidget_triggered',
  ])('%s legitimately repeats, so it keys on X-Chatwoot-Delivery', (event) => {
    const payload = { event, id: 12, account: { id: 1 } };
    expect(chatwootDedupKey(payload, DELIVERY)).toBe(`chatwoot:delivery:${DELIVERY['X-Chatwoot-Delivery']}`);
    expect(chatwootDedupKey(payload, { 'x-chatwoot-delivery': 'other' })).toBe('chatwoot:delivery:other');
  });

  it('reads the delivery id from a Fetch Headers too', () => {
    expect(chatwootDedupKey({ event: 'message_updated' }, new Headers(DELIVERY))).toBe(
      `chatwoot:delivery:${DELIVERY['X-Chatwoot-Delivery']}`,
    );
  });

  it('is undefined when nothing identifies the delivery', () => {
    expect(chatwootDedupKey({ event: 'message_updated', id: 1 })).toBeUndefined();
    expect(chatwootDedupKey({ event: 'message_created' })).toBeUndefined();
    for (const payload of [null, undefined, 42, 'message_created', [], { id: 1 }]) {
      expect(chatwootDedupKey(payload)).toBeUndefined();
    }
  });

  it('ignores ids that are not integers or strings, and uses "_" for an unknown account', () => {
    expect(chatwootDedupKey({ event: 'message_created', id: 1.5 })).toBeUndefined();
    expect(chatwootDedupKey({ event: 'message_created', id: { x: 1 } })).toBeUndefined();
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
    const key = chatwootDedupKey(
      { event: 'message_updated' },
      { 'x-chatwoot-delivery': long.slice(0, 250) },
    )!;
    expect(key.length).toBeLessThanOrEqual(200);
    expect(key.startsWith('chatwoot:sha256:')).toBe(true);
    const a = chatwootDedupKey({ event: 'message_created', id: `${long}a` })!;
    const b = chatwootDedupKey({ event: 'message_created', id: `${long}b` })!;
    expect(a.length).toBeLessThanOrEqual(200);
    expect(a).not.toBe(b);
    expect(chatwootDedupKey({ event: 'message_created', id: `${long}a` })).toBe(a);
  });

  it('ignores an absurdly long delivery header instead of keying on it', () => {
    expect(
      chatwootDedupKey({ event: 'message_updated' }, { 'x-chatwoot-delivery': 'x'.repeat(5000) }),
    ).toBeUndefined();
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
