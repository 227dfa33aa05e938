// Differential test: our verifyStripeEvent against the official Stripe.webhooks.constructEvent on
// thousands of generated (body, header, secret, time) cases. They must agree on accept/reject, and on
// the returned event, except for the differences we document (each checked to be exactly that).
import fc from 'fast-check';
import Stripe from 'stripe';
import { describe, expect, it } from 'vitest';
import { isWebhookError, verifyStripeEvent, type WebhookErrorCode } from '../../src/index.js';
import { hmacHex } from '../helpers/assertions.js';

const NOW_S = 1_767_225_600;

type Outcome = { ok: true; value: unknown } | { ok: false; code?: WebhookErrorCode; error: unknown };

function run<T>(fn: () => T): Outcome {
  try {
    return { ok: true, value: fn() };
  } catch (error) {
    return { ok: false, error, ...(isWebhookError(error) ? { code: error.code } : {}) };
  }
}

function weighted<A, B>(wa: number, a: fc.Arbitrary<A>, wb: number, b: fc.Arbitrary<B>): fc.Arbitrary<A | B> {
  return fc.oneof({ weight: wa, arbitrary: a }, { weight: wb, arbitrary: b });
}

const secretArb = fc.oneof(
  { weight: 6, arbitrary: fc.string({ minLength: 1, maxLength: 40 }).map((s) => `whsec_${s}`) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 24 }) },
  { weight: 1, arbitrary: fc.constantFrom('', ' ', '\t\n', ' whsec_padded ', 'whsec_a') },
);

const eventBodyArb = fc
  .record(
    {
      id: weighted(
        8,
        fc.string({ maxLength: 30 }).map((s) => `evt_${s}`),
        1,
        fc.oneof(fc.integer(), fc.constant(null)),
      ),
      object: weighted(8, fc.constant('event'), 1, fc.constantFrom('v2.core.event', 'thing')),
      type: weighted(
        8,
        fc.constantFrom('checkout.session.completed', 'v1.invoice.paid', 'invoice.paid'),
        1,
        fc.integer(),
      ),
      data: fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 2 })),
    },
    { requiredKeys: ['id', 'object', 'type'] },
  )
  .map((e) => JSON.stringify(e));

const bodyArb = fc.oneof(
  { weight: 6, arbitrary: eventBodyArb },
  { weight: 1, arbitrary: fc.json({ maxDepth: 2 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 60 }) },
  { weight: 1, arbitrary: fc.constantFrom('', '{}', 'null', '[]', '{"id":"evt_1","type":"x"}') },
);

// Timestamps around the edges of the window in both directions, and far away.
const offsetArb = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: -300, max: 300 }) },
  { weight: 2, arbitrary: fc.constantFrom(0, -299, -300, -301, 299, 300, 301, -1000, 1000, -86_400, 86_400) },
  { weight: 1, arbitrary: fc.integer({ min: -10_000_000, max: 10_000_000 }) },
);
const weirdTimestampArb = fc.constantFrom(
  '',
  'abc',
  '-1',
  '-5',
  '0',
  `0${NOW_S}`,
  ` ${NOW_S}`,
  `${NOW_S}.5`,
  `+${NOW_S}`,
  `${NOW_S}abc`,
  '1e9',
  '9'.repeat(400),
);

interface Case {
  body: string;
  asBuffer: boolean;
  signingSecret: string;
  verifySecret: string;
  header: string;
  tolerance: number | undefined;
  nowMs: number;
}

const caseArb: fc.Arbitrary<Case> = fc
  .record({
    body: bodyArb,
    asBuffer: fc.boolean(),
    signingSecret: secretArb,
    otherSecret: secretArb,
    sameSecret: weighted(6, fc.constant(true), 1, fc.constant(false)),
    offset: offsetArb,
    weirdT: weighted(10, fc.constant(null), 1, weirdTimestampArb),
    extraT: weighted(
      12,
      fc.constant(null),
      1,
      fc.oneof(
        weirdTimestampArb,
        offsetArb.map((o) => String(NOW_S + o)),
      ),
    ),
    parts: fc.array(
      fc.oneof(
        { weight: 8, arbitrary: fc.constant('good') },
        { weight: 6, arbitrary: fc.constantFrom('random', 'v0', 'other-secret') },
        {
          weight: 2,
          arbitrary: fc.constantFrom('good-upper', 'good-suffix', 'good-space', 'empty', 'bare', 'garbage'),
        },
      ),
      { minLength: 0, maxLength: 4 },
    ),
    randomHex: fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: 64, maxLength: 64 }),
    garbage: fc.string({ maxLength: 12 }),
    tolerance: fc.constantFrom(undefined, 0, 10, 300, 1000),
    nowJitterMs: fc.integer({ min: 0, max: 999 }),
  })
  .map((r) => {
    const tText = r.weirdT ?? String(NOW_S + r.offset);
    // What stripe-node will hash: the last t= parsed with parseInt.
    const lastT = r.extraT ?? tText;
    const signedT = `${Number.parseInt(lastT, 10)}.`;
    const sig = (secret: string) =>
      r.weirdT === null && r.extraT === null && secret.length > 0
        ? // The common case is signed by the official SDK itself.
          Stripe.webhooks
            .generateTestHeaderString({ payload: r.body, secret, timestamp: NOW_S + r.offset })
            .split('v1=')[1]!
        : hmacHex(secret, `${signedT}${r.body}`);
    const pieces = [`t=${tText}`];
    for (const part of r.parts.length === 0 ? ['good'] : r.parts) {
      if (part === 'good') pieces.push(`v1=${sig(r.signingSecret)}`);
      if (part === 'good-upper') pieces.push(`v1=${sig(r.signingSecret).toUpperCase()}`);
      if (part === 'good-suffix') pieces.push(`v1=${sig(r.signingSecret)}=x`);
      if (part === 'good-space') pieces.push(` v1=${sig(r.signingSecret)}`);
      if (part === 'random') pieces.push(`v1=${r.randomHex}`);
      if (part === 'empty') pieces.push('v1=');
      if (part === 'bare') pieces.push('v1');
      if (part === 'v0') pieces.push(`v0=${sig(r.signingSecret)}`);
      if (part === 'garbage') pieces.push(r.garbage);
      if (part === 'other-secret') pieces.push(`v1=${sig(r.otherSecret)}`);
    }
    if (r.extraT !== null) pieces.push(`t=${r.extraT}`);
    return {
      body: r.body,
      asBuffer: r.asBuffer,
      signingSecret: r.signingSecret,
      verifySecret: r.sameSecret ? r.signingSecret : r.otherSecret,
      header: pieces.join(','),
      tolerance: r.tolerance,
      nowMs: NOW_S * 1000 + r.nowJitterMs,
    };
  });

/** Why our answer may differ from stripe-node's on this case, or undefined if it must not. */
function documentedDifference(c: Case, ours: Outcome, theirs: Outcome): string | undefined {
  const ts = c.header
    .split(',')
    .filter((p) => p.split('=')[0] === 't')
    .map((p) => p.split('=')[1]);
  const lastT = ts.length === 0 ? undefined : Number.parseInt(ts[ts.length - 1] ?? '', 10);
  const tolerance = c.tolerance ?? 300;
  if (
    !ours.ok &&
    ours.code === 'MALFORMED_SIGNATURE' &&
    lastT !== undefined &&
    !(Number.isFinite(lastT) && lastT >= 0)
  ) {
    return 't is not a non-negative integer';
  }
  if (!ours.ok && ours.code === 'TIMESTAMP_OUT_OF_TOLERANCE' && theirs.ok && tolerance > 0) {
    if (lastT !== undefined && lastT - Math.floor(c.nowMs / 1000) > tolerance) return 'future timestamp';
  }
  if (!ours.ok && ours.code === 'INVALID_PAYLOAD' && theirs.ok) {
    const v = theirs.value as Record<string, unknown> | null;
    if (
      typeof v !== 'object' ||
      v === null ||
      Array.isArray(v) ||
      typeof v.id !== 'string' ||
      typeof v.type !== 'string'
    ) {
      return 'not an event object';
    }
  }
  if (ours.ok && !theirs.ok && (ours.value as { object?: unknown }).object === 'v2.core.event') {
    if (String((theirs.error as Error).message).includes('thin event')) return 'thin event';
  }
  return undefined;
}

describe('verifyStripeEvent agrees with Stripe.webhooks.constructEvent', () => {
  it('on 5,000 generated cases, except the documented differences', () => {
    const tally = { agreeAccept: 0, agreeReject: 0, differences: new Map<string, number>() };
    fc.assert(
      fc.property(caseArb, (c) => {
        const payload = c.asBuffer ? Buffer.from(c.body) : c.body;
        const theirs = run(() =>
          Stripe.webhooks.constructEvent(payload, c.header, c.verifySecret, c.tolerance, undefined, c.nowMs),
        );
        const ours = run(() =>
          verifyStripeEvent(payload, c.header, {
            secret: c.verifySecret,
            ...(c.tolerance === undefined ? {} : { toleranceSeconds: c.tolerance }),
            now: () => c.nowMs,
          }),
        );
        // We throw WebhookError and nothing else, whatever the input.
        if (!ours.ok) expect(isWebhookError(ours.error)).toBe(true);
        if (ours.ok === theirs.ok) {
          if (ours.ok && theirs.ok) {
            expect(ours.value).toEqual(theirs.value);
            tally.agreeAccept++;
          } else tally.agreeReject++;
          return;
        }
        const why = documentedDifference(c, ours, theirs);
        expect(
          why,
          `undocumented disagreement: ours=${ours.ok ? 'accept' : ours.code} theirs=${theirs.ok ? 'accept' : 'reject'} header=${c.header}`,
        ).toBeDefined();
        tally.differences.set(why!, (tally.differences.get(why!) ?? 0) + 1);
      }),
      { numRuns: 5_000, seed: 20_261_123 },
    );
    console.log(
      `stripe differential: ${tally.agreeAccept} accepted by both, ${tally.agreeReject} rejected by both, documented differences:`,
      Object.fromEntries(tally.differences),
    );
    // The generator must exercise both sides: a run where nothing verifies would prove nothing.
    expect(tally.agreeAccept).toBeGreaterThan(1_000);
    expect(tally.agreeReject).toBeGreaterThan(500);
    expect(tally.differences.get('future timestamp') ?? 0).toBeGreaterThan(0);
  });
});
