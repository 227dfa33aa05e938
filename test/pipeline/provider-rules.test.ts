// The answers, keys, limits and logging that follow from how the providers really deliver
// (what Chatwoot does with each status, unsigned delivery ids, body sizes, shared stores).
import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  chatwootDedupKey,
  createChatwootHandler,
  createMemoryDedupStore,
  createStripeHandler,
  verifyStripeEvent,
  type DedupStore,
} from '../../src/index.js';
import { CHATWOOT_EVENT_NAMES } from '../../src/testing/chatwoot-event.js';
import {
  chatwootEvent,
  signChatwootPayload,
  signStripePayload,
  stripeEvent,
} from '../../src/testing/index.js';

const SECRET = 'cw-provider-rules-secret';
const STRIPE_SECRET = 'whsec_provider_rules';

const EVERY_EVENT = CHATWOOT_EVENT_NAMES;

const post = (signed: { body: string; headers: Record<string, string> }) => ({
  method: 'POST',
  headers: signed.headers,
  body: signed.body,
});

describe('keys come from signed content only', () => {
  it('changing nothing but X-Chatwoot-Delivery never makes a new key, for every event kind', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...EVERY_EVENT),
        fc.array(fc.oneof(fc.uuid(), fc.string({ maxLength: 300 })), { minLength: 1, maxLength: 5 }),
        fc.boolean(),
        (name, deliveryIds, withoutAccount) => {
          const event = chatwootEvent(name) as Record<string, unknown>;
          if (withoutAccount) {
            delete event.account;
            if (Array.isArray(event.messages)) event.messages = [];
          }
          const body = JSON.stringify(event);
          const keys = new Set(
            [undefined, ...deliveryIds].map((id) =>
              chatwootDedupKey(
                JSON.parse(body) as unknown,
                id === undefined ? {} : { 'x-chatwoot-delivery': id },
              ),
            ),
          );
          expect(keys.size).toBe(1);
          expect([...keys][0]).toMatch(/^chatwoot:/);
        },
      ),
      { numRuns: 300 },
    );
  });

  it.each(EVERY_EVENT)(
    'a captured %s replayed 50 times with new delivery ids runs once and adds one key',
    async (name) => {
      let runs = 0;
      const store = createMemoryDedupStore();
      const handle = createChatwootHandler({
        secret: SECRET,
        store,
        logger: false,
        ignore: () => false,
        onEvent: () => void runs++,
      });
      const captured = signChatwootPayload(chatwootEvent(name), SECRET);
      for (let i = 0; i < 51; i++) {
        const headers = { ...captured.headers, 'x-chatwoot-delivery': `forged-${i}` };
        expect((await handle(post({ body: captured.body, headers }))).status).toBe(200);
      }
      expect(runs).toBe(1);
      expect(store.size).toBe(1);
    },
  );

  it('keys a conversation_created with no message and no account on its inbox and id (double emits collapse)', async () => {
    let runs = 0;
    const handle = createChatwootHandler({ secret: SECRET, logger: false, onEvent: () => void runs++ });
    const conversation = chatwootEvent('conversation_created', { messages: [] }) as unknown as Record<
      string,
      unknown
    >;
    delete conversation.account;
    // Chatwoot's double emit: the same event as two deliveries, each with its own delivery id (and the
    // second made a moment later, so its body differs in nothing but could differ in timestamps).
    const first = signChatwootPayload(conversation, SECRET);
    const second = signChatwootPayload(
      { ...conversation, timestamp: Number(conversation.timestamp) + 1 },
      SECRET,
    );
    await handle(post(first));
    expect(JSON.parse((await handle(post(second))).body)).toEqual({ ok: true, duplicate: true });
    expect(runs).toBe(1);
  });
});

describe('answers follow the provider', () => {
  it('answers a Chatwoot in-flight copy 200 and a Stripe one 409, from the same store situation', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const cw = createChatwootHandler({ secret: SECRET, logger: false, onEvent: () => gate });
    const st = createStripeHandler({ secret: STRIPE_SECRET, logger: false, onEvent: () => gate });
    const message = signChatwootPayload(chatwootEvent('message_created'), SECRET);
    const payment = signStripePayload(stripeEvent('invoice.paid'), STRIPE_SECRET);
    const running = [cw(post(message)), st(post(payment))];
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(await cw(post(message))).toMatchObject({ status: 200, body: '{"ok":true,"inFlight":true}' });
    expect(await st(post(payment))).toMatchObject({ status: 409, body: '{"error":{"code":"IN_FLIGHT"}}' });
    release();
    await Promise.all(running);
  });

  it('defaults maxBodyBytes to 4 MiB for Chatwoot and 1 MiB for Stripe', async () => {
    const big = (n: number) => `{"event":"message_created","id":1,"pad":"${'x'.repeat(n)}"}`;
    const cw = createChatwootHandler({ secret: SECRET, logger: false, onEvent: () => {} });
    expect((await cw(post(signChatwootPayload(big(3 * 1024 * 1024), SECRET)))).status).toBe(200);
    expect((await cw(post(signChatwootPayload(big(4 * 1024 * 1024), SECRET)))).status).toBe(413);
    const st = createStripeHandler({ secret: STRIPE_SECRET, logger: false, onEvent: () => {} });
    const event = (n: number) => ({ ...stripeEvent('invoice.paid'), pad: 'x'.repeat(n) });
    expect((await st(post(signStripePayload(event(1000 * 1000), STRIPE_SECRET)))).status).toBe(200);
    expect((await st(post(signStripePayload(event(1024 * 1024), STRIPE_SECRET)))).status).toBe(413);
  });
});

describe('namespace', () => {
  it('lets two endpoints on one store both process one Stripe event, each once', async () => {
    const store = createMemoryDedupStore();
    const runs = { fulfilment: 0, analytics: 0 };
    const fulfilment = createStripeHandler({
      secret: STRIPE_SECRET,
      store,
      namespace: 'fulfilment',
      logger: false,
      onEvent: () => void runs.fulfilment++,
    });
    const analytics = createStripeHandler({
      secret: STRIPE_SECRET,
      store,
      namespace: 'analytics',
      logger: false,
      onEvent: () => void runs.analytics++,
    });
    const keys: (string | undefined)[] = [];
    const signed = signStripePayload(stripeEvent('invoice.paid'), STRIPE_SECRET);
    for (const handle of [fulfilment, analytics, fulfilment, analytics]) await handle(post(signed));
    expect(runs).toEqual({ fulfilment: 1, analytics: 1 });
    expect(store.size).toBe(2);
    const probe = createStripeHandler({
      secret: STRIPE_SECRET,
      store: false,
      namespace: 'probe',
      logger: false,
      onEvent: (_event, ctx) => void keys.push(ctx.key),
    });
    await probe(post(signed));
    expect(keys[0]).toMatch(/^probe:stripe:evt_/);
  });

  it('warns once at creation when two handlers of one provider share a store under one namespace', () => {
    const warnings: string[] = [];
    const logger = {
      info() {},
      warn: (_o: object, msg?: string) => void warnings.push(msg ?? ''),
      error() {},
    };
    const store: DedupStore = createMemoryDedupStore();
    createStripeHandler({ secret: STRIPE_SECRET, store, logger, onEvent() {} });
    expect(warnings).toEqual([]);
    createChatwootHandler({ secret: SECRET, store, logger, onEvent() {} }); // another provider: fine
    createStripeHandler({ secret: STRIPE_SECRET, store, logger, namespace: 'other', onEvent() {} });
    expect(warnings).toEqual([]);
    createStripeHandler({ secret: STRIPE_SECRET, store, logger, onEvent() {} });
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/share one dedup store under the same namespace.*namespace option/);
  });
});

describe('loud by default', () => {
  afterEach(() => vi.restoreAllMocks());

  it('prints warnings and errors to the console, one line each, with no payload; info stays quiet', async () => {
    const lines: string[] = [];
    vi.spyOn(console, 'warn').mockImplementation((line: string) => void lines.push(`W ${line}`));
    vi.spyOn(console, 'error').mockImplementation((line: string) => void lines.push(`E ${line}`));
    vi.spyOn(console, 'info').mockImplementation((line: string) => void lines.push(`I ${line}`));
    vi.spyOn(console, 'log').mockImplementation((line: string) => void lines.push(`L ${line}`));
    const noSecret = createChatwootHandler({ secret: undefined, onEvent() {} });
    expect(lines).toEqual([expect.stringMatching(/^E hookguard error: No chatwoot webhook secret is set/)]);
    const secretText = 'the-card-number-4242';
    const failing = createStripeHandler({
      secret: STRIPE_SECRET,
      onEvent: () => {
        throw new Error('inventory down');
      },
    });
    const signed = signStripePayload({ ...stripeEvent('invoice.paid'), note: secretText }, STRIPE_SECRET);
    await failing(post(signed));
    await failing(post({ body: signed.body, headers: { 'stripe-signature': 't=1,v1=00' } }));
    await noSecret(post(signChatwootPayload(chatwootEvent('message_created'), SECRET)));
    expect(lines).toHaveLength(4);
    expect(lines[1]).toMatch(
      /^E hookguard error: handler failed.* code=HANDLER_FAILED .*err=Error: inventory down$/,
    );
    expect(lines[2]).toMatch(
      /^W hookguard warn: .* code=MALFORMED_SIGNATURE|^W hookguard warn: .* code=SIGNATURE_MISMATCH|^W hookguard warn: .* code=TIMESTAMP_OUT_OF_TOLERANCE/,
    );
    expect(lines[3]).toMatch(/^E hookguard error: .*code=MISSING_SECRET status=500/);
    for (const line of lines) {
      expect(line).not.toContain(secretText);
      expect(line).not.toContain(STRIPE_SECRET);
      expect(line).not.toMatch(/[\r\n]/);
    }
  });

  it('strips control characters and bounds values, so a signed field cannot forge a log line', async () => {
    const lines: string[] = [];
    vi.spyOn(console, 'error').mockImplementation((line: string) => void lines.push(line));
    const handle = createStripeHandler({
      secret: STRIPE_SECRET,
      onEvent: () => {
        throw new Error('boom');
      },
    });
    const forged = `invoice.paid\n{"level":"info","msg":"payment ok"}${'x'.repeat(5000)}`;
    await handle(post(signStripePayload({ ...stripeEvent('invoice.paid'), type: forged }, STRIPE_SECRET)));
    expect(lines).toHaveLength(1);
    expect(lines[0]).not.toMatch(/[\r\n]/);
    expect(lines[0]!.length).toBeLessThan(1000);
  });

  it('is silent with logger: false', async () => {
    const calls = vi.fn();
    vi.spyOn(console, 'warn').mockImplementation(calls);
    vi.spyOn(console, 'error').mockImplementation(calls);
    const handle = createChatwootHandler({ secret: undefined, logger: false, onEvent() {} });
    await handle(post(signChatwootPayload(chatwootEvent('message_created'), SECRET)));
    expect(calls).not.toHaveBeenCalled();
  });
});

describe('Stripe-Signature forms', () => {
  it('reads a Buffer or Uint8Array header value like the string, as stripe-node does', async () => {
    const signed = signStripePayload(stripeEvent('invoice.paid'), STRIPE_SECRET);
    const value = signed.headers['stripe-signature']!;
    const options = { secret: STRIPE_SECRET };
    expect(verifyStripeEvent(signed.body, Buffer.from(value), options).type).toBe('invoice.paid');
    expect(verifyStripeEvent(signed.body, new TextEncoder().encode(value), options).type).toBe(
      'invoice.paid',
    );
    const handle = createStripeHandler({ secret: STRIPE_SECRET, logger: false, onEvent() {} });
    const headers = { 'stripe-signature': Buffer.from(value) } as unknown as Record<string, string>;
    expect((await handle({ method: 'POST', headers, body: signed.body })).status).toBe(200);
  });
});
