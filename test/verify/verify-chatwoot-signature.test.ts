import { describe, expect, it } from 'vitest';
import { verifyChatwootSignature, type ChatwootVerifyOptions } from '../../src/index.js';
import { expectCode, fixture, hmacHex } from '../helpers/assertions.js';

const SECRET = 'cw-secret-4f9a';
const NOW_S = 1_767_225_600; // 2026-01-01T00:00:00Z
const now = () => NOW_S * 1000;
const body = fixture('chatwoot-message-created.json');
const DELIVERY = '0b3c2f6e-3f1d-4c8e-9a55-6f0d2b1c9e77';

function signed(options: { secret?: string; ts?: number | string; body?: string | Uint8Array } = {}) {
  const ts = String(options.ts ?? NOW_S);
  const raw = options.body ?? body;
  const bytes = typeof raw === 'string' ? Buffer.from(raw) : raw;
  const sig = hmacHex(options.secret ?? SECRET, Buffer.concat([Buffer.from(`${ts}.`), bytes]));
  return {
    'x-chatwoot-signature': `sha256=${sig}`,
    'x-chatwoot-timestamp': ts,
    'x-chatwoot-delivery': DELIVERY,
  } as Record<string, string>;
}

const opts = (extra: Partial<ChatwootVerifyOptions> = {}): ChatwootVerifyOptions => ({
  secret: SECRET,
  now,
  ...extra,
});

describe('verifyChatwootSignature, chatwoot scheme', () => {
  it('accepts a valid signature and reports secret, timestamp and delivery id', () => {
    expect(verifyChatwootSignature(body, signed(), opts())).toEqual({
      secretIndex: 0,
      timestamp: NOW_S,
      deliveryId: DELIVERY,
    });
  });

  it.each([
    ['string', (s: string): string | Uint8Array | ArrayBuffer => s],
    ['Buffer', (s: string) => Buffer.from(s)],
    ['Uint8Array', (s: string) => new Uint8Array(Buffer.from(s))],
    ['ArrayBuffer', (s: string) => new Uint8Array(Buffer.from(s)).buffer],
    [
      'Uint8Array view into a larger buffer',
      (s: string) => new Uint8Array(Buffer.from(`xx${s}yy`)).subarray(2, 2 + Buffer.byteLength(s)),
    ],
  ])('accepts the body as a %s', (_name, convert) => {
    expect(verifyChatwootSignature(convert(body), signed(), opts()).secretIndex).toBe(0);
  });

  it('hashes multi-byte UTF-8 bodies as bytes (the fixture has an emoji)', () => {
    expect(body).toMatch(/🙂/);
    const latin1Sig = hmacHex(SECRET, `${NOW_S}.${Buffer.from(body).toString('latin1')}`);
    expect(verifyChatwootSignature(body, signed(), opts()).secretIndex).toBe(0);
    // A sender that re-encoded the text differently would not match.
    expectCode(
      () =>
        verifyChatwootSignature(body, { ...signed(), 'x-chatwoot-signature': `sha256=${latin1Sig}` }, opts()),
      'SIGNATURE_MISMATCH',
    );
  });

  it('hashes invalid UTF-8 exactly as received, without a decode/re-encode round trip', () => {
    const invalid = Buffer.concat([
      Buffer.from('{"event":"message_created","content":"'),
      Buffer.from([0xff, 0xfe, 0xc3]),
      Buffer.from('"}'),
    ]);
    expect(verifyChatwootSignature(invalid, signed({ body: invalid }), opts()).secretIndex).toBe(0);
    const roundTripped = Buffer.from(invalid.toString('utf8'));
    expect(roundTripped.equals(invalid)).toBe(false);
    expectCode(
      () => verifyChatwootSignature(roundTripped, signed({ body: invalid }), opts()),
      'SIGNATURE_MISMATCH',
    );
  });

  it('accepts upper-case hex and a signature without the sha256= prefix', () => {
    const headers = signed();
    const hex = headers['x-chatwoot-signature']!.slice('sha256='.length);
    expect(
      verifyChatwootSignature(
        body,
        { ...headers, 'x-chatwoot-signature': `sha256=${hex.toUpperCase()}` },
        opts(),
      ).secretIndex,
    ).toBe(0);
    expect(
      verifyChatwootSignature(body, { ...headers, 'x-chatwoot-signature': hex }, opts()).secretIndex,
    ).toBe(0);
    expect(
      verifyChatwootSignature(body, { ...headers, 'x-chatwoot-signature': `SHA256=${hex}` }, opts())
        .secretIndex,
    ).toBe(0);
  });

  it('reads header names in any case, from a plain object and from a Fetch Headers', () => {
    const headers = signed();
    const shouty = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toUpperCase(), v]));
    const mixed = {
      'X-Chatwoot-Signature': headers['x-chatwoot-signature'],
      'X-Chatwoot-Timestamp': headers['x-chatwoot-timestamp'],
      'X-Chatwoot-Delivery': headers['x-chatwoot-delivery'],
    };
    expect(verifyChatwootSignature(body, shouty, opts()).deliveryId).toBe(DELIVERY);
    expect(verifyChatwootSignature(body, mixed, opts()).deliveryId).toBe(DELIVERY);
    expect(verifyChatwootSignature(body, new Headers(headers), opts()).deliveryId).toBe(DELIVERY);
  });

  it('accepts a header given as a one-element array (Node header objects can hold arrays)', () => {
    const headers = signed();
    expect(
      verifyChatwootSignature(
        body,
        { ...headers, 'x-chatwoot-signature': [headers['x-chatwoot-signature']!] },
        opts(),
      ).secretIndex,
    ).toBe(0);
  });

  it('tries several secrets in order and reports which one matched', () => {
    const headers = signed({ secret: 'new-secret' });
    expect(
      verifyChatwootSignature(body, headers, opts({ secret: ['old-secret', 'new-secret'] })).secretIndex,
    ).toBe(1);
    expect(
      verifyChatwootSignature(body, headers, opts({ secret: ['new-secret', 'old-secret'] })).secretIndex,
    ).toBe(0);
    // A blank entry is skipped but indices still refer to the configured list.
    expect(verifyChatwootSignature(body, headers, opts({ secret: ['', 'new-secret'] })).secretIndex).toBe(1);
  });

  describe('tolerance window, both directions', () => {
    it.each([
      ['exactly at the limit in the past', NOW_S - 300, true],
      ['one second too old', NOW_S - 301, false],
      ['exactly at the limit in the future', NOW_S + 300, true],
      ['one second too far in the future', NOW_S + 301, false],
    ])('%s', (_name, ts, ok) => {
      const run = () => verifyChatwootSignature(body, signed({ ts }), opts());
      if (ok) expect(run().timestamp).toBe(ts);
      else expectCode(run, 'TIMESTAMP_OUT_OF_TOLERANCE');
    });

    it('says how far off the clock is, and in which direction', () => {
      expect(
        expectCode(
          () => verifyChatwootSignature(body, signed({ ts: NOW_S - 1000 }), opts()),
          'TIMESTAMP_OUT_OF_TOLERANCE',
        ),
      ).toMatch(/1000 s old/);
      expect(
        expectCode(
          () => verifyChatwootSignature(body, signed({ ts: NOW_S + 900 }), opts()),
          'TIMESTAMP_OUT_OF_TOLERANCE',
        ),
      ).toMatch(/900 s in the future/);
    });

    it('says a millisecond timestamp looks like milliseconds, rather than blaming the clock', () => {
      const message = expectCode(
        () => verifyChatwootSignature(body, signed({ ts: NOW_S * 1000 + 1234 }), opts()),
        'TIMESTAMP_OUT_OF_TOLERANCE',
      );
      expect(message).toMatch(/looks like milliseconds .*unix time in seconds/);
      expect(message).not.toMatch(/NTP/);
    });

    it('honours a custom tolerance', () => {
      expect(
        verifyChatwootSignature(body, signed({ ts: NOW_S - 10 }), opts({ toleranceSeconds: 10 })).timestamp,
      ).toBe(NOW_S - 10);
      expectCode(
        () => verifyChatwootSignature(body, signed({ ts: NOW_S - 11 }), opts({ toleranceSeconds: 10 })),
        'TIMESTAMP_OUT_OF_TOLERANCE',
      );
    });

    it('toleranceSeconds: 0 turns the time check off but still requires a signed timestamp', () => {
      expect(verifyChatwootSignature(body, signed({ ts: 1 }), opts({ toleranceSeconds: 0 })).timestamp).toBe(
        1,
      );
      const { 'x-chatwoot-timestamp': _t, ...noTimestamp } = signed();
      expectCode(
        () => verifyChatwootSignature(body, noTimestamp, opts({ toleranceSeconds: 0 })),
        'MISSING_TIMESTAMP',
      );
    });

    it('a negative or non-finite tolerance falls back to the default instead of disabling the check', () => {
      for (const toleranceSeconds of [-1, Number.NaN, Infinity]) {
        expectCode(
          () => verifyChatwootSignature(body, signed({ ts: NOW_S - 301 }), opts({ toleranceSeconds })),
          'TIMESTAMP_OUT_OF_TOLERANCE',
        );
      }
    });

    it('fails closed when the injected clock is broken', () => {
      expectCode(
        () => verifyChatwootSignature(body, signed(), opts({ now: () => Number.NaN })),
        'TIMESTAMP_OUT_OF_TOLERANCE',
      );
    });

    it('uses Date.now by default', () => {
      const ts = Math.floor(Date.now() / 1000);
      expect(verifyChatwootSignature(body, signed({ ts }), { secret: SECRET }).timestamp).toBe(ts);
    });
  });

  describe('every error code', () => {
    it('MISSING_SECRET for undefined, blank and empty-list secrets', () => {
      for (const secret of [undefined, '', '   ', [], ['', ' \n']] as unknown[]) {
        expectCode(
          () => verifyChatwootSignature(body, signed(), { secret } as ChatwootVerifyOptions),
          'MISSING_SECRET',
        );
      }
    });

    it('MISSING_SIGNATURE without the header or with an empty one', () => {
      const { 'x-chatwoot-signature': _s, ...rest } = signed();
      expectCode(() => verifyChatwootSignature(body, rest, opts()), 'MISSING_SIGNATURE');
      expectCode(
        () => verifyChatwootSignature(body, { ...rest, 'x-chatwoot-signature': '' }, opts()),
        'MISSING_SIGNATURE',
      );
      expectCode(() => verifyChatwootSignature(body, {}, opts()), 'MISSING_SIGNATURE');
    });

    it.each([
      ['not hex', 'sha256=' + 'z'.repeat(64)],
      ['too short', 'sha256=abcd'],
      ['odd length', 'sha256=' + 'a'.repeat(63)],
      ['too long', 'sha256=' + 'a'.repeat(66)],
      ['another algorithm', 'sha1=' + 'a'.repeat(40)],
    ])('MALFORMED_SIGNATURE when the signature is %s', (_name, value) => {
      expectCode(
        () => verifyChatwootSignature(body, { ...signed(), 'x-chatwoot-signature': value }, opts()),
        'MALFORMED_SIGNATURE',
      );
    });

    it('MALFORMED_SIGNATURE when the signature header is sent twice', () => {
      const headers = signed();
      const twice = [headers['x-chatwoot-signature']!, headers['x-chatwoot-signature']!];
      expectCode(
        () => verifyChatwootSignature(body, { ...headers, 'x-chatwoot-signature': twice }, opts()),
        'MALFORMED_SIGNATURE',
      );
    });

    it('MISSING_TIMESTAMP without X-Chatwoot-Timestamp', () => {
      const { 'x-chatwoot-timestamp': _t, ...rest } = signed();
      expect(expectCode(() => verifyChatwootSignature(body, rest, opts()), 'MISSING_TIMESTAMP')).toMatch(
        /legacy-body/,
      );
    });

    it.each(['12a', '-5', '1.5', ' 1767225600', '1e9', '9'.repeat(16)])(
      'MALFORMED_SIGNATURE for the timestamp %j',
      (ts) => {
        expectCode(
          () => verifyChatwootSignature(body, { ...signed(), 'x-chatwoot-timestamp': ts }, opts()),
          'MALFORMED_SIGNATURE',
        );
      },
    );

    it('SIGNATURE_MISMATCH for a wrong secret, a changed body and a changed timestamp', () => {
      expectCode(
        () => verifyChatwootSignature(body, signed({ secret: 'other' }), opts()),
        'SIGNATURE_MISMATCH',
      );
      expectCode(
        () => verifyChatwootSignature(body.replace('trial', 'trail'), signed(), opts()),
        'SIGNATURE_MISMATCH',
      );
      expectCode(
        () =>
          verifyChatwootSignature(body, { ...signed(), 'x-chatwoot-timestamp': String(NOW_S + 1) }, opts()),
        'SIGNATURE_MISMATCH',
      );
    });

    it('checks the signature before the clock: a forged stale request is a mismatch, not a clock problem', () => {
      const stale = { ...signed({ ts: NOW_S - 10_000, secret: 'forger' }) };
      expectCode(() => verifyChatwootSignature(body, stale, opts()), 'SIGNATURE_MISMATCH');
    });

    it('RAW_BODY_UNAVAILABLE when given a parsed object instead of bytes', () => {
      const message = expectCode(
        () => verifyChatwootSignature(JSON.parse(body) as never, signed(), opts()),
        'RAW_BODY_UNAVAILABLE',
      );
      expect(message).toMatch(/raw/);
    });
  });

  describe('diagnosis without leaking', () => {
    it('hints at whitespace in a secret', () => {
      const message = expectCode(
        () => verifyChatwootSignature(body, signed(), opts({ secret: `${SECRET}\n` })),
        'SIGNATURE_MISMATCH',
      );
      expect(message).toMatch(/whitespace/);
    });

    it('spots a body-only signature and names the legacy scheme', () => {
      const headers = { ...signed(), 'x-chatwoot-signature': hmacHex(SECRET, body) };
      expect(expectCode(() => verifyChatwootSignature(body, headers, opts()), 'SIGNATURE_MISMATCH')).toMatch(
        /legacy-body/,
      );
    });

    it('never puts the secret, the signatures or the payload in the message', () => {
      const headers = signed({ secret: 'wrong-secret' });
      const expected = signed()['x-chatwoot-signature']!;
      const message = expectCode(() => verifyChatwootSignature(body, headers, opts()), 'SIGNATURE_MISMATCH');
      for (const secretish of [
        SECRET,
        'wrong-secret',
        headers['x-chatwoot-signature']!.slice(7),
        expected.slice(7),
        'trial lesson',
      ]) {
        expect(message).not.toContain(secretish);
      }
    });
  });
});

describe('verifyChatwootSignature, legacy-body scheme', () => {
  const legacy = (extra: Partial<ChatwootVerifyOptions> = {}) => opts({ scheme: 'legacy-body', ...extra });

  it('accepts a hex HMAC of the raw body with no timestamp, and returns timestamp undefined', () => {
    const headers = { 'x-chatwoot-signature': hmacHex(SECRET, body), 'x-chatwoot-delivery': DELIVERY };
    expect(verifyChatwootSignature(body, headers, legacy())).toEqual({
      secretIndex: 0,
      timestamp: undefined,
      deliveryId: DELIVERY,
    });
  });

  it('is opt-in: the default scheme refuses a body-only signature', () => {
    const headers = { 'x-chatwoot-signature': hmacHex(SECRET, body) };
    expectCode(() => verifyChatwootSignature(body, headers, opts()), 'MISSING_TIMESTAMP');
  });

  it('rejects a tampered body and a wrong secret, and rotates secrets', () => {
    const headers = { 'x-chatwoot-signature': hmacHex('new', body) };
    expectCode(
      () => verifyChatwootSignature(`${body} `, headers, legacy({ secret: 'new' })),
      'SIGNATURE_MISMATCH',
    );
    expectCode(() => verifyChatwootSignature(body, headers, legacy({ secret: 'old' })), 'SIGNATURE_MISMATCH');
    expect(verifyChatwootSignature(body, headers, legacy({ secret: ['old', 'new'] })).secretIndex).toBe(1);
  });

  it('tells a user on legacy-body that the sender uses the timestamped scheme', () => {
    const message = expectCode(() => verifyChatwootSignature(body, signed(), legacy()), 'SIGNATURE_MISMATCH');
    expect(message).toMatch(/current scheme/);
  });

  it('accepts upper-case hex and a sha256= prefix', () => {
    const hex = hmacHex(SECRET, body);
    expect(
      verifyChatwootSignature(body, { 'x-chatwoot-signature': hex.toUpperCase() }, legacy()).secretIndex,
    ).toBe(0);
    expect(
      verifyChatwootSignature(body, { 'x-chatwoot-signature': `sha256=${hex}` }, legacy()).secretIndex,
    ).toBe(0);
  });
});
