// Issue #20: the Node build (platform/node.ts: node:crypto, Buffer) and the Web Crypto build
// (platform/web.ts: crypto.subtle, TextEncoder/TextDecoder) must give one verdict for every input. This
// compares them on the primitives a verdict rests on (hex signatures, body text) and, above all, on the
// whole answer to a signed Chatwoot or Stripe delivery: the core is loaded twice, once with `#platform`
// mocked to each build (Node 20 has crypto.subtle, so the web build runs here as it does on workerd).
import { createHmac } from 'node:crypto';
import fc from 'fast-check';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import type * as Core from '../../src/index.js';
import * as node from '../../src/platform/node.js';
import * as web from '../../src/platform/web.js';
import { chatwootEvent, stripeEvent } from '../../src/testing/index.js';

type Build = typeof Core;
type Side = 'node' | 'web';

const SEED = 2020;
const NOW_S = 1_767_225_600;
const now = () => NOW_S * 1000;
const CW_SECRET = 'cw-differential-secret';
const WH_SECRET = 'whsec_differential';
const HEX64 = /^[0-9a-fA-F]{64}$/;
const BOM = [0xef, 0xbb, 0xbf];

const utf8 = (text: string) => new Uint8Array(Buffer.from(text, 'utf8'));
const concat = (...parts: (string | readonly number[] | Uint8Array)[]) =>
  new Uint8Array(parts.flatMap((part) => [...(typeof part === 'string' ? utf8(part) : part)]));
/** A Buffer (node.ts) or a Uint8Array (web.ts) as a plain Uint8Array, so the two compare equal. */
const plain = (bytes: Uint8Array | undefined) => (bytes === undefined ? undefined : new Uint8Array(bytes));

async function loadBuild(platform: typeof node | typeof web): Promise<Build> {
  vi.resetModules();
  vi.doMock('#platform', () => platform);
  try {
    return await import('../../src/index.js');
  } finally {
    vi.doUnmock('#platform');
  }
}

let builds: Record<Side, Build>;
beforeAll(async () => {
  builds = { node: await loadBuild(node), web: await loadBuild(web) };
});

// ---- deliveries, signed over the exact bytes (any bytes, valid UTF-8 or not) ----

type Provider = 'chatwoot' | 'stripe';
interface Delivery {
  provider: Provider;
  body: string | Uint8Array;
  /** The hex digest that goes into the header; `sign` fills in the right one. */
  hex: string;
}

function hmacHex(secret: string, prefix: string, body: string | Uint8Array): string {
  return createHmac('sha256', secret).update(prefix).update(body).digest('hex');
}

function sign(provider: Provider, body: string | Uint8Array): Delivery {
  const secret = provider === 'chatwoot' ? CW_SECRET : WH_SECRET;
  return { provider, body, hex: hmacHex(secret, `${NOW_S}.`, body) };
}

function headersOf(d: Delivery): Record<string, string> {
  return d.provider === 'chatwoot'
    ? {
        'content-type': 'application/json',
        'x-chatwoot-delivery': 'd6b1a3c0-0000-4000-8000-000000000020',
        'x-chatwoot-timestamp': String(NOW_S),
        'x-chatwoot-signature': `sha256=${d.hex}`,
      }
    : { 'content-type': 'application/json', 'stripe-signature': `t=${NOW_S},v1=${d.hex}` };
}

/** What one build makes of a delivery: the verifier's outcome and the pipeline's whole answer. */
interface Verdict {
  verifier: string;
  status: number;
  /** The code the answer names, or 'ok'. */
  code: string;
  answer: string;
  handlerRuns: number;
}

async function verdictOf(build: Build, d: Delivery): Promise<Verdict> {
  const headers = headersOf(d);
  let verifier: string;
  try {
    await (d.provider === 'chatwoot'
      ? build.verifyChatwootSignatureAsync(d.body, headers, { secret: CW_SECRET, now })
      : build.verifyStripeEventAsync(d.body, headers, { secret: WH_SECRET, now }));
    verifier = 'ok';
  } catch (err) {
    verifier = build.isWebhookError(err) ? err.code : `threw ${String(err)}`;
  }
  let handlerRuns = 0;
  const onEvent = () => void handlerRuns++;
  const handle =
    d.provider === 'chatwoot'
      ? build.createChatwootHandler({ secret: CW_SECRET, now, logger: false, onEvent })
      : build.createStripeHandler({ secret: WH_SECRET, now, logger: false, onEvent });
  const res = await handle({ method: 'POST', headers, body: d.body });
  const { error } = JSON.parse(res.body) as { error?: { code: string } };
  return { verifier, status: res.status, code: error?.code ?? 'ok', answer: res.body, handlerRuns };
}

async function bothVerdicts(d: Delivery): Promise<Record<Side, Verdict>> {
  return { node: await verdictOf(builds.node, d), web: await verdictOf(builds.web, d) };
}

// ---- inputs ----

const chatwootJson = JSON.stringify(chatwootEvent('message_created'));
const stripeJson = JSON.stringify(stripeEvent('invoice.paid'));
const jsonOf = (provider: Provider) => (provider === 'chatwoot' ? chatwootJson : stripeJson);
/** Just inside the first string value of `json` (after `{"key":"`). */
const valueStart = (json: string) => json.indexOf('"', json.indexOf(':') + 1) + 1;
/** The provider's JSON with `bytes` spliced raw into its first string value. */
const splicedInto = (provider: Provider, bytes: readonly number[] | Uint8Array) => {
  const json = jsonOf(provider);
  return concat(json.slice(0, valueStart(json)), bytes, json.slice(valueStart(json)));
};
/** The same with text (a string body, lone surrogates and all, encoded by the verifier). */
const textInto = (provider: Provider, text: string) => {
  const json = jsonOf(provider);
  return json.slice(0, valueStart(json)) + text + json.slice(valueStart(json));
};

/** Characters a hex reader may mistake for hex digits: Node's Buffer reads the low byte of each unit. */
const NOT_HEX = [
  '٣',
  'ａ',
  'Ａ',
  '０',
  '\u0661',
  '\u0130',
  'g',
  'G',
  ' ',
  '\0',
  '\ud800',
  '\udc00',
  'é',
  '-',
];
/** The same digit as a non-ASCII character whose low byte is that digit ('c' → U+0663 '٣'). */
const twin = (digit: string) => String.fromCharCode(0x0600 | digit.charCodeAt(0));

// Every case with the verdict chosen for it; each must also be the same on both builds.
type Expected = Pick<Verdict, 'code' | 'status' | 'handlerRuns'>;
const OK: Expected = { code: 'ok', status: 200, handlerRuns: 1 };
const INVALID_JSON: Expected = { code: 'INVALID_JSON', status: 400, handlerRuns: 0 };
const MALFORMED: Expected = { code: 'MALFORMED_SIGNATURE', status: 401, handlerRuns: 0 };
const MISMATCH: Expected = { code: 'SIGNATURE_MISMATCH', status: 401, handlerRuns: 0 };

function bodyCases(provider: Provider): [string, Delivery, Expected][] {
  const json = jsonOf(provider);
  return [
    ['plain JSON', sign(provider, json), OK],
    ['plain JSON as bytes', sign(provider, utf8(json)), OK],
    // No provider sends a BOM (RFC 8259 §8.1: senders MUST NOT), JSON.parse refuses one in every engine,
    // and stripe-node refuses it too (a string: JSON.parse throws; bytes: its TextDecoder drops the BOM
    // before hashing, so the signature over the bytes sent does not match).
    ['UTF-8 BOM then JSON (bytes)', sign(provider, concat(BOM, json)), INVALID_JSON],
    ['U+FEFF then JSON (string)', sign(provider, `\ufeff${json}`), INVALID_JSON],
    ['two BOMs then JSON', sign(provider, concat(BOM, BOM, json)), INVALID_JSON],
    ['a BOM inside a string value', sign(provider, splicedInto(provider, BOM)), OK],
    ['a BOM after the JSON', sign(provider, concat(json, BOM)), INVALID_JSON],
    ['invalid UTF-8 inside a string value', sign(provider, splicedInto(provider, [0xff, 0xc3, 0x28])), OK],
    [
      'overlong NUL and a UTF-16 surrogate as UTF-8',
      sign(provider, splicedInto(provider, [0xc0, 0x80, 0xed, 0xa0, 0x80])),
      OK,
    ],
    [
      'a truncated 4-byte sequence at the end',
      sign(provider, concat(json, [0xf0, 0x9f, 0x98])),
      INVALID_JSON,
    ],
    ['invalid UTF-8 before the JSON', sign(provider, concat([0xfe], json)), INVALID_JSON],
    [
      'a lone surrogate inside a string value (string body)',
      sign(provider, textInto(provider, '\ud800 \udc00x')),
      OK,
    ],
    ['a raw NUL inside a string value', sign(provider, splicedInto(provider, [0])), INVALID_JSON],
    ['empty', sign(provider, ''), INVALID_JSON],
  ];
}

function signatureCases(provider: Provider): [string, Delivery, Expected][] {
  const good = sign(provider, jsonOf(provider));
  const at = (i: number, char: string) => ({
    ...good,
    hex: good.hex.slice(0, i) + char + good.hex.slice(i + 1),
  });
  // A Chatwoot signature that is not 64 hex digits is malformed; Stripe, as stripe-node, takes any v1
  // and finds it does not match.
  const bad = provider === 'chatwoot' ? MALFORMED : MISMATCH;
  return [
    ['uppercase hex', { ...good, hex: good.hex.toUpperCase() }, provider === 'chatwoot' ? OK : MISMATCH],
    [
      'the right digest in look-alike non-ASCII digits',
      { ...good, hex: [...good.hex].map(twin).join('') },
      bad,
    ],
    ...NOT_HEX.map((char): [string, Delivery, Expected] => [
      `one digit replaced by ${JSON.stringify(char)}`,
      at(17, char),
      bad,
    ]),
    ['63 digits', { ...good, hex: good.hex.slice(1) }, bad],
    ['65 digits', { ...good, hex: `${good.hex}0` }, bad],
  ];
}

// ---- the tests ----

describe('platform/node.ts and platform/web.ts decode signatures alike (issue #20)', () => {
  const hexUnit = fc.oneof(
    { weight: 12, arbitrary: fc.constantFrom(...'0123456789abcdefABCDEF') },
    { weight: 1, arbitrary: fc.constantFrom(...NOT_HEX) },
    { weight: 1, arbitrary: fc.constantFrom(...'0123456789abcdefABCDEF').map(twin) },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) },
  );
  const hexish = fc.string({ unit: hexUnit, minLength: 62, maxLength: 66 });

  it('decodeHex32: the same bytes, and bytes only for exactly 64 ASCII hex digits', () => {
    const digit = 'ab'.repeat(32);
    const explicit = [
      digit,
      digit.toUpperCase(),
      '٣'.repeat(64),
      'ａ'.repeat(64),
      `${digit.slice(0, 62)}a\0`,
      `${digit.slice(0, 63)}\ud800`,
      digit.slice(1),
      `${digit}a`,
      '',
    ];
    for (const hex of [...explicit, ...fc.sample(hexish, { numRuns: 200, seed: SEED })]) {
      const fromNode = plain(node.decodeHex32(hex));
      expect(plain(web.decodeHex32(hex)), JSON.stringify(hex)).toEqual(fromNode);
      expect(fromNode !== undefined, JSON.stringify(hex)).toBe(HEX64.test(hex));
    }
    fc.assert(
      fc.property(hexish, (hex) => {
        expect(plain(web.decodeHex32(hex))).toEqual(plain(node.decodeHex32(hex)));
        expect(node.decodeHex32(hex) !== undefined).toBe(HEX64.test(hex));
      }),
      { numRuns: 2_000, seed: SEED },
    );
  });

  it('a decoded signature compares equal to the digest on both, or on neither', () => {
    const digest = createHmac('sha256', 'k').update('body').digest();
    const hex = digest.toString('hex');
    const variant = fc.oneof(
      fc.constant(hex),
      fc.constant(hex.toUpperCase()),
      fc.constant([...hex].map(twin).join('')),
      fc
        .tuple(fc.nat(63), fc.constantFrom(...NOT_HEX, ...'0123456789abcdef'))
        .map(([i, c]) => hex.slice(0, i) + c + hex.slice(i + 1)),
    );
    fc.assert(
      fc.property(variant, (signature) => {
        const matches = (side: typeof node | typeof web) => {
          const decoded = side.decodeHex32(signature);
          return decoded !== undefined && side.bytesEqual(digest, decoded);
        };
        expect(matches(web)).toBe(matches(node));
        expect(matches(node)).toBe(signature.toLowerCase() === hex);
      }),
      { numRuns: 500, seed: SEED },
    );
  });
});

describe('platform/node.ts and platform/web.ts turn bodies into the same text (issue #20)', () => {
  const prefix = fc.constantFrom<number[]>(
    [],
    BOM,
    [...BOM, ...BOM],
    [0xef, 0xbb],
    [0xfe, 0xff],
    [0xff, 0xfe],
    [0],
  );
  const bytes = fc
    .tuple(prefix, fc.uint8Array({ maxLength: 64 }), fc.string({ unit: 'binary', maxLength: 32 }))
    .map(([head, raw, text]) => concat(head, raw, text));

  it('utf8Decode: a leading BOM kept, invalid sequences replaced the same way', () => {
    for (const explicit of [
      concat(BOM, '{}'),
      concat(BOM, BOM),
      new Uint8Array(BOM),
      new Uint8Array([0x61, 0xff, 0xc3, 0x28, 0x62]),
      new Uint8Array([0xc0, 0x80, 0xed, 0xa0, 0x80, 0xf0, 0x9f, 0x98]),
      new Uint8Array([0, 0x7b, 0, 0x7d]),
    ]) {
      expect(web.utf8Decode(explicit)).toBe(node.utf8Decode(explicit));
    }
    expect(web.utf8Decode(concat(BOM, '{}'))).toBe('\ufeff{}');
    fc.assert(
      fc.property(bytes, fc.nat(8), (body, offset) => {
        expect(web.utf8Decode(body)).toBe(node.utf8Decode(body));
        const view = body.subarray(Math.min(offset, body.length)); // an offset view, as a framework may pass
        expect(web.utf8Decode(view)).toBe(node.utf8Decode(view));
      }),
      { numRuns: 2_000, seed: SEED },
    );
  });

  it('utf8Encode and utf8Length: lone surrogates and U+FEFF encoded the same way', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 64 }), fc.boolean(), (text, bom) => {
        const input = bom ? `\ufeff${text}` : text;
        expect(web.utf8Encode(input)).toEqual(plain(node.utf8Encode(input)));
        expect(web.utf8Length(input)).toBe(node.utf8Length(input));
      }),
      { numRuns: 1_000, seed: SEED },
    );
  });
});

describe('a signed delivery gets one verdict on both builds (issue #20)', () => {
  it('the builds really differ: the web one is on Web Crypto', () => {
    const d = sign('chatwoot', chatwootJson);
    const sync = (build: Build) => () =>
      build.verifyChatwootSignature(d.body, headersOf(d), { secret: CW_SECRET, now });
    expect(sync(builds.node)()).toMatchObject({ secretIndex: 0 });
    expect(sync(builds.web)).toThrow(/Web Crypto/);
  });

  for (const provider of ['chatwoot', 'stripe'] as const) {
    describe(provider, () => {
      it.each(bodyCases(provider))('body: %s', async (_name, delivery, expected) => {
        const verdicts = await bothVerdicts(delivery);
        expect(verdicts.web).toEqual(verdicts.node);
        expect(verdicts.node).toMatchObject(expected);
      });

      it.each(signatureCases(provider))('signature: %s', async (_name, delivery, expected) => {
        const verdicts = await bothVerdicts(delivery);
        expect(verdicts.web).toEqual(verdicts.node);
        expect(verdicts.node).toMatchObject(expected);
      });
    });
  }

  it('generated bodies and signatures, Chatwoot and Stripe', async () => {
    const bodyArb = fc.oneof(
      fc.constantFrom(chatwootJson, stripeJson),
      fc
        .tuple(fc.constantFrom<Provider>('chatwoot', 'stripe'), fc.uint8Array({ maxLength: 12 }))
        .map(([provider, raw]) => splicedInto(provider, raw)),
      fc
        .tuple(fc.constantFrom<number[]>([], BOM, [0xef, 0xbb]), fc.constantFrom(chatwootJson, stripeJson))
        .map(([head, json]) => concat(head, json)),
      fc.string({ unit: 'binary', maxLength: 40 }).map((s) => textInto('chatwoot', s)),
      fc.uint8Array({ maxLength: 40 }),
    );
    const hexEdit = fc.oneof(
      fc.constant((hex: string) => hex),
      fc.constant((hex: string) => hex.toUpperCase()),
      fc.constant((hex: string) => [...hex].map(twin).join('')),
      fc
        .tuple(fc.nat(63), fc.oneof(fc.constantFrom(...NOT_HEX), fc.string({ unit: 'binary', maxLength: 2 })))
        .map(
          ([i, c]) =>
            (hex: string) =>
              hex.slice(0, i) + c + hex.slice(i + 1),
        ),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom<Provider>('chatwoot', 'stripe'),
        bodyArb,
        hexEdit,
        async (provider, body, edit) => {
          const signed = sign(provider, body);
          const verdicts = await bothVerdicts({ ...signed, hex: edit(signed.hex) });
          expect(verdicts.web).toEqual(verdicts.node);
        },
      ),
      { numRuns: 300, seed: SEED },
    );
  });
});
