import Stripe from 'stripe';
import { describe, expect, it } from 'vitest';
import { verifyStripeEvent, type VerifyOptions } from '../../src/index.js';
import { expectCode, hmacHex } from '../helpers/assertions.js';

const SECRET = 'whsec_test_9b2e7c1d';
const NOW_S = 1_767_225_600;
const now = () => NOW_S * 1000;
const event = {
  id: 'evt_1QxYz2AbCdEfGh',
  object: 'event',
  api_version: '2026-10-28.endive',
  created: NOW_S,
  data: { object: { id: 'cs_test_a1', object: 'checkout.session', amount_total: 2000, currency: 'eur' } },
  livemode: false,
  pending_webhooks: 1,
  request: { id: null, idempotency_key: null },
  type: 'checkout.session.completed',
};
const payload = JSON.stringify(event, null, 2);

/** The official SDK's own test header: the reference we are checked against. */
const official = (secret = SECRET, timestamp = NOW_S, body = payload) =>
  Stripe.webhooks.generateTestHeaderString({ payload: body, secret, timestamp });
const v1Of = (header: string) =>
  header
    .split(',')
    .find((p) => p.startsWith('v1='))!
    .slice(3);
const opts = (extra: Partial<VerifyOptions> = {}): VerifyOptions => ({ secret: SECRET, now, ...extra });

describe('verifyStripeEvent', () => {
  it('accepts the official test header and returns the parsed event', () => {
    const header = official();
    expect(verifyStripeEvent(payload, header, opts())).toEqual(event);
    expect(Stripe.webhooks.constructEvent(payload, header, SECRET, 300, undefined, now())).toEqual(event);
  });

  it('reads Stripe-Signature from a plain object, Node-style lower case, any case and a Fetch Headers', () => {
    const header = official();
    expect(verifyStripeEvent(Buffer.from(payload), { 'stripe-signature': header }, opts()).id).toBe(event.id);
    expect(verifyStripeEvent(Buffer.from(payload), { 'Stripe-Signature': header }, opts()).id).toBe(event.id);
    expect(verifyStripeEvent(payload, new Headers({ 'Stripe-Signature': header }), opts()).id).toBe(event.id);
    expect(
      verifyStripeEvent(new Uint8Array(Buffer.from(payload)).buffer, { 'stripe-signature': [header] }, opts())
        .id,
    ).toBe(event.id);
  });

  it('accepts any of several v1 signatures (Stripe sends two during a secret roll)', () => {
    const header = `t=${NOW_S},v1=${v1Of(official('whsec_old'))},v1=${v1Of(official('whsec_new'))}`;
    expect(verifyStripeEvent(payload, header, opts({ secret: 'whsec_new' })).id).toBe(event.id);
    expect(verifyStripeEvent(payload, header, opts({ secret: 'whsec_old' })).id).toBe(event.id);
    expectCode(
      () => verifyStripeEvent(payload, header, opts({ secret: 'whsec_other' })),
      'SIGNATURE_MISMATCH',
    );
  });

  it('takes several secrets (one endpoint fed by two Stripe endpoints, or a rotation)', () => {
    const header = official('whsec_b');
    expect(verifyStripeEvent(payload, header, opts({ secret: ['whsec_a', 'whsec_b'] })).id).toBe(event.id);
    expectCode(
      () => verifyStripeEvent(payload, header, opts({ secret: ['whsec_a', 'whsec_c'] })),
      'SIGNATURE_MISMATCH',
    );
  });

  it('ignores v0 entries', () => {
    const header = `${official()},v0=${'0'.repeat(64)}`;
    expect(verifyStripeEvent(payload, header, opts()).id).toBe(event.id);
    const onlyV0 = `t=${NOW_S},v0=${v1Of(official())}`;
    expect(expectCode(() => verifyStripeEvent(payload, onlyV0, opts()), 'MALFORMED_SIGNATURE')).toMatch(/v0/);
    expect(() => Stripe.webhooks.constructEvent(payload, onlyV0, SECRET, 300, undefined, now())).toThrow();
  });

  it('rejects a timestamp too far in the future, which stripe-node accepts', () => {
    const header = official(SECRET, NOW_S + 301);
    expect(Stripe.webhooks.constructEvent(payload, header, SECRET, 300, undefined, now()).id).toBe(event.id);
    expect(
      expectCode(() => verifyStripeEvent(payload, header, opts()), 'TIMESTAMP_OUT_OF_TOLERANCE'),
    ).toMatch(/future/);
    expect(verifyStripeEvent(payload, official(SECRET, NOW_S + 300), opts()).id).toBe(event.id);
  });

  it('rejects a timestamp one second past the tolerance, accepts one at it', () => {
    expect(verifyStripeEvent(payload, official(SECRET, NOW_S - 300), opts()).id).toBe(event.id);
    expectCode(
      () => verifyStripeEvent(payload, official(SECRET, NOW_S - 301), opts()),
      'TIMESTAMP_OUT_OF_TOLERANCE',
    );
  });

  it('toleranceSeconds: 0 turns the time check off', () => {
    expect(verifyStripeEvent(payload, official(SECRET, 1000), opts({ toleranceSeconds: 0 })).id).toBe(
      event.id,
    );
  });

  it.each([
    ['no header at all', undefined, 'MISSING_SIGNATURE'],
    ['an empty header', '', 'MISSING_SIGNATURE'],
    ['no t=', `v1=${'a'.repeat(64)}`, 'MISSING_TIMESTAMP'],
    ['a t= that is not a number', `t=soon,v1=${'a'.repeat(64)}`, 'MALFORMED_SIGNATURE'],
    ['a negative t=', `t=-20,v1=${'a'.repeat(64)}`, 'MALFORMED_SIGNATURE'],
    ['no v1', `t=${NOW_S}`, 'MALFORMED_SIGNATURE'],
    ['an empty v1=', `t=${NOW_S},v1=`, 'MALFORMED_SIGNATURE'],
    ['a bare v1', `t=${NOW_S},v1`, 'MALFORMED_SIGNATURE'],
    ['garbage', 'hello world', 'MISSING_TIMESTAMP'],
  ] as const)('rejects %s', (_name, header, code) => {
    const headers = header === undefined ? {} : { 'stripe-signature': header };
    expectCode(() => verifyStripeEvent(payload, headers, opts()), code);
  });

  it('rejects an empty v1 even beside a valid one, as stripe-node does', () => {
    const header = `${official()},v1=`;
    expect(() => Stripe.webhooks.constructEvent(payload, header, SECRET, 300, undefined, now())).toThrow();
    expectCode(() => verifyStripeEvent(payload, header, opts()), 'MALFORMED_SIGNATURE');
  });

  it('rejects the signature header sent twice', () => {
    const header = official();
    expectCode(
      () => verifyStripeEvent(payload, { 'stripe-signature': [header, header] }, opts()),
      'MALFORMED_SIGNATURE',
    );
  });

  it('rejects upper-case v1 hex, as stripe-node does (Stripe sends lower case)', () => {
    const header = `t=${NOW_S},v1=${v1Of(official()).toUpperCase()}`;
    expect(() => Stripe.webhooks.constructEvent(payload, header, SECRET, 300, undefined, now())).toThrow();
    expectCode(() => verifyStripeEvent(payload, header, opts()), 'SIGNATURE_MISMATCH');
  });

  it('SIGNATURE_MISMATCH for a changed body, a changed t and a wrong secret', () => {
    expectCode(
      () => verifyStripeEvent(payload.replace('2000', '2001'), official(), opts()),
      'SIGNATURE_MISMATCH',
    );
    expectCode(
      () => verifyStripeEvent(payload, official().replace(`t=${NOW_S}`, `t=${NOW_S + 1}`), opts()),
      'SIGNATURE_MISMATCH',
    );
    expectCode(() => verifyStripeEvent(payload, official('whsec_other'), opts()), 'SIGNATURE_MISMATCH');
  });

  it('MISSING_SECRET for blank secrets, like stripe-node', () => {
    for (const secret of ['', ' \t', [] as string[]]) {
      expectCode(() => verifyStripeEvent(payload, official(), { secret }), 'MISSING_SECRET');
    }
    expect(() => Stripe.webhooks.constructEvent(payload, official(), ' \t')).toThrow(/No webhook secret/);
  });

  it('RAW_BODY_UNAVAILABLE for a parsed body, with the fix in the message', () => {
    const message = expectCode(
      () => verifyStripeEvent(event as never, official(), opts()),
      'RAW_BODY_UNAVAILABLE',
    );
    expect(message).toMatch(/express\.raw/);
  });

  it('INVALID_JSON for a signed body that is not JSON; INVALID_PAYLOAD for JSON that is not an event', () => {
    const notJson = 'id=evt_1&type=x';
    expectCode(() => verifyStripeEvent(notJson, official(SECRET, NOW_S, notJson), opts()), 'INVALID_JSON');
    for (const body of ['[]', 'null', '42', '"evt"', '{"id":1,"type":"x"}', '{"id":"evt_1"}']) {
      expectCode(() => verifyStripeEvent(body, official(SECRET, NOW_S, body), opts()), 'INVALID_PAYLOAD');
    }
  });

  it('hashes invalid UTF-8 as received (stripe-node decodes and re-encodes it)', () => {
    const bytes = Buffer.concat([
      Buffer.from('{"id":"evt_x","type":"t","note":"'),
      Buffer.from([0xc3, 0x28]),
      Buffer.from('"}'),
    ]);
    const t = String(NOW_S);
    const header = `t=${t},v1=${hmacHex(SECRET, Buffer.concat([Buffer.from(`${t}.`), bytes]))}`;
    expect(verifyStripeEvent(bytes, header, opts()).id).toBe('evt_x');
    expect(() => Stripe.webhooks.constructEvent(bytes, header, SECRET, 300, undefined, now())).toThrow();
  });

  it('returns thin events (which constructEvent refuses) typed by object', () => {
    const thin = JSON.stringify({
      id: 'evt_thin_1',
      object: 'v2.core.event',
      type: 'v1.checkout.session.completed',
      created: '2026-01-01T00:00:00.000Z',
      snapshot_event: 'evt_1QxYz2AbCdEfGh',
      related_object: { id: 'cs_test_a1', type: 'checkout.session', url: '/v1/checkout/sessions/cs_test_a1' },
    });
    const header = official(SECRET, NOW_S, thin);
    expect(() => Stripe.webhooks.constructEvent(thin, header, SECRET, 300, undefined, now())).toThrow(
      /thin event/,
    );
    const result = verifyStripeEvent(thin, header, opts());
    expect(result.object).toBe('v2.core.event');
    expect(result.object === 'v2.core.event' && result.snapshot_event).toBe('evt_1QxYz2AbCdEfGh');
  });

  it('never puts the secret, a signature or the payload in the message', () => {
    const header = official('whsec_wrong');
    const message = expectCode(() => verifyStripeEvent(payload, header, opts()), 'SIGNATURE_MISMATCH');
    for (const secretish of [SECRET, 'whsec_wrong', v1Of(header), v1Of(official()), 'cs_test_a1']) {
      expect(message).not.toContain(secretish);
    }
    const notJson = '{"card":"4242 4242 4242 4242"';
    const jsonMessage = expectCode(
      () => verifyStripeEvent(notJson, official(SECRET, NOW_S, notJson), opts()),
      'INVALID_JSON',
    );
    expect(jsonMessage).not.toContain('4242');
  });
});
