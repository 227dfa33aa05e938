// Signature comparisons are constant-time (timingSafeEqual on equal-length digests), and a wrong-length
// signature is refused without comparing.
import type * as nodeCrypto from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it, vi } from 'vitest';

const compare = vi.hoisted(() => ({ calls: [] as [number, number][] }));
vi.mock('node:crypto', async (importOriginal) => {
  const actual = await importOriginal<typeof nodeCrypto>();
  return {
    ...actual,
    timingSafeEqual: (a: NodeJS.ArrayBufferView, b: NodeJS.ArrayBufferView) => {
      compare.calls.push([a.byteLength, b.byteLength]);
      return actual.timingSafeEqual(a, b);
    },
  };
});

const { verifyChatwootSignature, verifyStripeEvent } = await import('../../src/index.js');
const { signChatwootPayload, signStripePayload } = await import('../../src/testing/index.js');

const NOW_S = 1_767_225_600;
const now = () => NOW_S * 1000;

describe('constant-time comparison', () => {
  it('compares Chatwoot digests with timingSafeEqual, 32 bytes against 32 bytes', () => {
    compare.calls = [];
    const signed = signChatwootPayload('{"event":"message_created"}', 's', { timestamp: NOW_S });
    verifyChatwootSignature(signed.body, signed.headers, { secret: 's', now });
    expect(() => verifyChatwootSignature(signed.body, signed.headers, { secret: 'other', now })).toThrow();
    expect(compare.calls.length).toBeGreaterThanOrEqual(2);
    expect(compare.calls.every(([a, b]) => a === 32 && b === 32)).toBe(true);
  });

  it('compares Stripe digests with timingSafeEqual, and refuses a wrong-length v1 without comparing', () => {
    const signed = signStripePayload('{"id":"evt_1","type":"x"}', 'whsec_s', { timestamp: NOW_S });
    compare.calls = [];
    verifyStripeEvent(signed.body, signed.headers, { secret: 'whsec_s', now });
    expect(compare.calls).toEqual([[32, 32]]);
    compare.calls = [];
    expect(() => verifyStripeEvent(signed.body, `t=${NOW_S},v1=abcd`, { secret: 'whsec_s', now })).toThrow();
    expect(compare.calls).toEqual([]);
  });

  it('the verifiers never compare signatures or digests with === or !==', () => {
    const dir = new URL('../../src/verify/', import.meta.url);
    const offenders = readdirSync(dir)
      .flatMap((file) =>
        readFileSync(new URL(file, dir), 'utf8')
          .split('\n')
          .map((line, i) => ({ file, line, n: i + 1 })),
      )
      .filter(({ line }) =>
        /\b(expected|received|digest|signature|hex|sig)\w*\s*(?:===|!==)\s*(?![\s=]|undefined|null|'|"|\d)/i.test(
          line,
        ),
      )
      .filter(({ line }) => !/\.(length|byteLength)\b/.test(line));
    expect(offenders).toEqual([]);
  });
});
