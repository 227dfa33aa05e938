// A wrong Stripe secret that looks wrong says what it looks like instead (never echoing it).
import { describe, expect, it } from 'vitest';
import { isWebhookError, verifyStripeEvent } from '../../src/index.js';
import { signStripePayload, stripeEvent } from '../../src/testing/index.js';

const signed = signStripePayload(stripeEvent('invoice.paid'), 'whsec_the_real_one');

function messageFor(secret: string | string[]): string {
  try {
    verifyStripeEvent(signed.body, signed.headers, { secret });
  } catch (err) {
    if (isWebhookError(err)) return err.message;
  }
  throw new Error('expected a WebhookError');
}

describe('Stripe secret hints on SIGNATURE_MISMATCH', () => {
  it.each([
    [
      'sk_live_51Habcdefghijklmnop',
      /The secret is a secret API key \(sk_live_…\), not the endpoint's signing secret: use the whsec_… secret/,
    ],
    ['rk_test_51Habcdefghijklmnop', /The secret is a restricted API key \(rk_test_…\)/],
    ['pk_live_51Habcdefghijklmnop', /The secret is a publishable key \(pk_live_…\)/],
    [
      '0123456789abcdef',
      /The secret does not start with whsec_, as every Stripe endpoint signing secret does/,
    ],
  ])('%s', (secret, hint) => {
    const message = messageFor(secret);
    expect(message).toMatch(hint);
    expect(message).not.toContain(secret);
  });

  it('names the secret by position during a rotation, and says nothing for a plausible whsec_ secret', () => {
    const message = messageFor(['whsec_old_one', 'sk_test_oops']);
    expect(message).toMatch(/Secret #2 is a secret API key/);
    expect(message).not.toMatch(/Secret #1/);
    expect(messageFor('whsec_wrong_but_plausible')).not.toMatch(/API key|does not start with whsec_/);
  });
});
