import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isWebhookError, verifyChatwootSignature, verifyStripeEvent } from '../../src/index.js';
import { signChatwootPayload, signStripePayload } from '../../src/testing/index.js';

const NOW_S = 1_767_225_600;
const now = () => NOW_S * 1000;
const SEED = 424_242;

/** Anything at all, including the wrong types a JavaScript caller could pass. */
const anything = fc.oneof(
  fc.anything(),
  fc.string({ maxLength: 200 }),
  fc.uint8Array({ maxLength: 200 }),
  fc.constantFrom(null, undefined, 0, Number.NaN, Symbol('x'), () => 'fn', new Map(), 'x'.repeat(20_000)),
);
const headerValue = fc.oneof(
  fc.string({ maxLength: 100 }),
  fc.array(fc.string({ maxLength: 40 }), { maxLength: 3 }),
  fc.constantFrom(undefined, 'sha256=' + 'a'.repeat(64), 't=1,v1=' + 'a'.repeat(64), 'x'.repeat(10_240)),
);
const headersArb = fc.oneof(
  fc.record({
    'x-chatwoot-signature': headerValue,
    'x-chatwoot-timestamp': headerValue,
    'x-chatwoot-delivery': headerValue,
    'stripe-signature': headerValue,
  }),
  anything,
);

function throwsOnlyWebhookError(fn: () => unknown): void {
  try {
    fn();
  } catch (err) {
    expect(isWebhookError(err), `threw a non-WebhookError: ${String(err)}`).toBe(true);
  }
}

describe('verifiers under arbitrary input', () => {
  it('throw WebhookError and nothing else, whatever the body, headers and options', () => {
    fc.assert(
      fc.property(
        anything,
        headersArb,
        fc.oneof(anything, fc.constant('s3cret'), fc.array(fc.string())),
        fc.constantFrom('chatwoot', 'legacy-body', 'bogus'),
        (body, headers, secret, scheme) => {
          const options = { secret, scheme, now } as never;
          throwsOnlyWebhookError(() => verifyChatwootSignature(body as never, headers as never, options));
          throwsOnlyWebhookError(() => verifyStripeEvent(body as never, headers as never, options));
          throwsOnlyWebhookError(() =>
            verifyStripeEvent(
              body as never,
              (headers as Record<string, never> | null)?.['stripe-signature'] as never,
              options,
            ),
          );
        },
      ),
      { numRuns: 2_000, seed: SEED },
    );
  });

  it('throw WebhookError even when the options themselves are not an object', () => {
    for (const options of [null, undefined, 42, 'secret']) {
      throwsOnlyWebhookError(() => verifyChatwootSignature('{}', {}, options as never));
      throwsOnlyWebhookError(() => verifyStripeEvent('{}', {}, options as never));
    }
  });
});

describe('a single flipped byte is always rejected', () => {
  const bodyArb = fc
    .string({ unit: 'binary', minLength: 1, maxLength: 300 })
    .map((s) => JSON.stringify({ id: 'evt_x', type: 't', s }));
  const secretArb = fc.string({ minLength: 1, maxLength: 30 });
  const maskArb = fc.integer({ min: 1, max: 255 });
  /** A copy of `bytes` with the byte at `pos` (wrapped) XOR-ed by a non-zero mask. */
  const flip = (bytes: Uint8Array, pos: number, mask: number): Buffer => {
    const copy = Buffer.from(bytes);
    copy[pos % copy.length]! ^= mask;
    return copy;
  };

  it('Chatwoot: in the body or in the signature', () => {
    fc.assert(
      fc.property(bodyArb, secretArb, fc.nat(), maskArb, (text, secret, pos, mask) => {
        fc.pre(secret.trim() !== '');
        const signed = signChatwootPayload(text, secret, { timestamp: NOW_S });
        const bytes = Buffer.from(signed.body);
        expect(verifyChatwootSignature(bytes, signed.headers, { secret, now }).secretIndex).toBe(0);

        const flippedBody = flip(bytes, pos, mask);
        expect(() => verifyChatwootSignature(flippedBody, signed.headers, { secret, now })).toThrow(
          expect.objectContaining({ code: 'SIGNATURE_MISMATCH' }),
        );

        const hex = signed.headers['x-chatwoot-signature']!.slice(7);
        const digest = flip(Buffer.from(hex, 'hex'), pos, mask);
        const flippedSig = {
          ...signed.headers,
          'x-chatwoot-signature': `sha256=${digest.toString('hex')}`,
        };
        expect(() => verifyChatwootSignature(bytes, flippedSig, { secret, now })).toThrow(
          expect.objectContaining({ code: 'SIGNATURE_MISMATCH' }),
        );
      }),
      { numRuns: 1_000, seed: SEED },
    );
  });

  it('Stripe: in the body or in the signature', () => {
    fc.assert(
      fc.property(bodyArb, secretArb, fc.nat(), maskArb, (text, secret, pos, mask) => {
        fc.pre(!/^[ \t\r\n\f\v]*$/.test(secret));
        const signed = signStripePayload(text, secret, { timestamp: NOW_S });
        const bytes = Buffer.from(signed.body);
        expect(verifyStripeEvent(bytes, signed.headers, { secret, now }).id).toBe('evt_x');

        const flippedBody = flip(bytes, pos, mask);
        expect(() => verifyStripeEvent(flippedBody, signed.headers, { secret, now })).toThrow(
          expect.objectContaining({ code: 'SIGNATURE_MISMATCH' }),
        );

        const header = signed.headers['stripe-signature']!;
        const digest = flip(Buffer.from(header.split('v1=')[1]!, 'hex'), pos, mask);
        const flippedSig = header.replace(/v1=.*/, `v1=${digest.toString('hex')}`);
        expect(() => verifyStripeEvent(bytes, flippedSig, { secret, now })).toThrow(
          expect.objectContaining({ code: 'SIGNATURE_MISMATCH' }),
        );
      }),
      { numRuns: 1_000, seed: SEED },
    );
  });
});
