import { describe, expect, it } from 'vitest';
import * as expressAdapter from '../../src/adapters/express.js';
import * as fastifyAdapter from '../../src/adapters/fastify.js';
import * as fetchAdapter from '../../src/adapters/fetch.js';
import * as koaAdapter from '../../src/adapters/koa.js';
import {
  createChatwootHandler,
  createMemoryDedupStore,
  createStripeHandler,
  ignoreNonIncomingMessages,
  type ChatwootEvent,
  type DedupStore,
  type Logger,
  type WebhookOutcome,
} from '../../src/index.js';
import {
  chatwootEvent,
  signChatwootPayload,
  signStripePayload,
  stripeEvent,
} from '../../src/testing/index.js';

const SECRET = 'cw-pipeline-secret';
const STRIPE_SECRET = 'whsec_pipeline';

function recorder() {
  const lines: { level: string; obj: Record<string, unknown>; msg: string | undefined }[] = [];
  const at = (level: string) => (obj: Record<string, unknown>, msg?: string) =>
    void lines.push({ level, obj, msg });
  const logger: Logger = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
  return { lines, logger, text: () => JSON.stringify(lines) };
}

const post = (signed: { body: string; headers: Record<string, string> }) => ({
  method: 'POST',
  headers: signed.headers,
  body: signed.body,
});
const parse = (body: string) => JSON.parse(body) as unknown;

describe('pipeline', () => {
  it('logs event, key, delivery id, outcome and a truncated preview, never the raw body or the secret', async () => {
    const log = recorder();
    const handle = createChatwootHandler({ secret: SECRET, logger: log.logger, onEvent: () => {} });
    const event = chatwootEvent('message_created', {
      content: `Please call me at +55 11 99999-0000 ${'and more '.repeat(20)}`,
    });
    const signed = signChatwootPayload(event, SECRET, { deliveryId: 'delivery-123' });
    expect((await handle(post(signed))).status).toBe(200);
    const processed = log.lines.find((l) => l.obj.outcome === 'processed');
    expect(processed).toMatchObject({
      level: 'info',
      obj: {
        provider: 'chatwoot',
        event: 'message_created',
        key: `chatwoot:1:message_created:${event.id}`,
        deliveryId: 'delivery-123',
        status: 200,
      },
    });
    expect(String(processed?.obj.preview)).toMatch(
      /^message_created \| incoming \| conv \d+ \| "Please call me at/,
    );
    expect(String(processed?.obj.preview).length).toBeLessThan(80);
    expect(log.text()).not.toContain(SECRET);
    expect(log.text()).not.toContain('and more and more and more');
    expect(log.text()).not.toContain(signed.headers['x-chatwoot-signature']!.slice(7));
  });

  it('logs rejections with their code and message, without the payload or the signature', async () => {
    const log = recorder();
    const handle = createStripeHandler({ secret: STRIPE_SECRET, logger: log.logger, onEvent: () => {} });
    const signed = signStripePayload(
      stripeEvent('invoice.paid', { data: { object: { customer_email: 'ana@example.com' } } }),
      'whsec_other',
    );
    expect((await handle(post(signed))).status).toBe(401);
    expect(log.lines).toEqual([
      expect.objectContaining({
        level: 'warn',
        obj: expect.objectContaining({ outcome: 'rejected', code: 'SIGNATURE_MISMATCH', status: 401 }),
      }),
    ]);
    expect(log.text()).not.toContain('ana@example.com');
    expect(log.text()).not.toContain(signed.headers['stripe-signature']!.split('v1=')[1]!);
  });

  it('calls onOutcome exactly once per request, with the result, status and code', async () => {
    const outcomes: WebhookOutcome[] = [];
    const handle = createStripeHandler({
      secret: STRIPE_SECRET,
      onOutcome: (o) => void outcomes.push(o),
      onEvent: () => {},
    });
    const signed = signStripePayload(stripeEvent('invoice.paid'), STRIPE_SECRET);
    await handle(post(signed));
    await handle(post(signed));
    await handle({ method: 'GET', headers: {}, body: '' });
    await handle(post(signStripePayload(stripeEvent('invoice.paid'), 'whsec_other')));
    expect(outcomes.map(({ result, status, code }) => ({ result, status, code }))).toEqual([
      { result: 'processed', status: 200, code: undefined },
      { result: 'duplicate', status: 200, code: undefined },
      { result: 'rejected', status: 405, code: 'METHOD_NOT_ALLOWED' },
      { result: 'rejected', status: 401, code: 'SIGNATURE_MISMATCH' },
    ]);
    expect(outcomes[0]).toMatchObject({
      provider: 'stripe',
      event: 'invoice.paid',
      key: expect.stringMatching(/^stripe:evt_test_/),
    });
    expect(outcomes.every((o) => o.durationMs >= 0)).toBe(true);
  });

  it('stats() counts every outcome since creation, and the memory store size', async () => {
    const handle = createStripeHandler({ secret: STRIPE_SECRET, onEvent: () => {} });
    const before = handle.stats();
    expect(before).toMatchObject({ provider: 'stripe', requests: 0, storeSize: 0 });
    expect(Date.parse(before.since)).toBeGreaterThan(0);
    const signed = signStripePayload(stripeEvent('invoice.paid'), STRIPE_SECRET);
    await handle(post(signed));
    await handle(post(signed));
    await handle(post(signStripePayload(stripeEvent('invoice.paid'), 'whsec_other')));
    await handle({ method: 'GET', headers: {}, body: '' });
    expect(handle.stats()).toMatchObject({
      requests: 4,
      counts: { processed: 1, duplicate: 1, 'in-flight': 0, ignored: 0, rejected: 2, failed: 0 },
      storeSize: 1,
    });
    expect(createStripeHandler({ secret: STRIPE_SECRET, store: false }).stats().storeSize).toBeUndefined();
  });

  it('a throwing logger or onOutcome does not change the answer', async () => {
    const boom = () => {
      throw new Error('logger down');
    };
    const handle = createStripeHandler({
      secret: STRIPE_SECRET,
      logger: { info: boom, warn: boom, error: boom, debug: boom },
      onOutcome: boom,
      onEvent: () => {},
    });
    const answer = await handle(post(signStripePayload(stripeEvent('invoice.paid'), STRIPE_SECRET)));
    expect(answer.status).toBe(200);
  });

  it('checks the signature before claiming: forged requests leave the store empty', async () => {
    const store = createMemoryDedupStore();
    const handle = createChatwootHandler({ secret: SECRET, store, onEvent: () => {} });
    for (let i = 0; i < 20; i++)
      await handle(post(signChatwootPayload(chatwootEvent('message_created'), 'forger')));
    expect(store.size).toBe(0);
  });

  it('a failing complete() still answers 200 (the work is done) and logs that a retry may repeat it', async () => {
    const log = recorder();
    const inner = createMemoryDedupStore();
    const store: DedupStore = {
      claim: (k, l) => inner.claim(k, l),
      complete: () => Promise.reject(new Error('redis timeout')),
      release: (k, t) => inner.release(k, t),
    };
    const handle = createStripeHandler({
      secret: STRIPE_SECRET,
      store,
      logger: log.logger,
      onEvent: () => {},
    });
    const answer = await handle(post(signStripePayload(stripeEvent('invoice.paid'), STRIPE_SECRET)));
    expect(answer.status).toBe(200);
    expect(
      log.lines.some((l) => l.level === 'error' && /could not record completion/.test(l.msg ?? '')),
    ).toBe(true);
  });

  it('releases the claim when a handler fails after the 202 (ackAfterMs), so the retry runs it', async () => {
    const store = createMemoryDedupStore();
    const outcomes: WebhookOutcome[] = [];
    let attempts = 0;
    const handle = createStripeHandler({
      secret: STRIPE_SECRET,
      store,
      ackAfterMs: 20,
      onOutcome: (o) => void outcomes.push(o),
      onEvent: async () => {
        attempts++;
        await new Promise((r) => setTimeout(r, 80));
        if (attempts === 1) throw new Error('late failure');
      },
    });
    const signed = signStripePayload(stripeEvent('invoice.paid'), STRIPE_SECRET);
    expect((await handle(post(signed))).status).toBe(202);
    await new Promise((r) => setTimeout(r, 150));
    expect(outcomes.at(-1)).toMatchObject({ result: 'failed', code: 'HANDLER_FAILED' });
    expect((await handle(post(signed))).status).toBe(202);
    await new Promise((r) => setTimeout(r, 150));
    expect(attempts).toBe(2);
    expect(parse((await handle(post(signed))).body)).toEqual({ ok: true, duplicate: true });
  });

  it('answers at once when the handler beats ackAfterMs', async () => {
    const handle = createStripeHandler({ secret: STRIPE_SECRET, ackAfterMs: 1000, onEvent: () => {} });
    const answer = await handle(post(signStripePayload(stripeEvent('invoice.paid'), STRIPE_SECRET)));
    expect(answer.status).toBe(200);
  });

  it('store: false processes every delivery', async () => {
    let calls = 0;
    const handle = createStripeHandler({ secret: STRIPE_SECRET, store: false, onEvent: () => void calls++ });
    const signed = signStripePayload(stripeEvent('invoice.paid'), STRIPE_SECRET);
    await handle(post(signed));
    await handle(post(signed));
    expect(calls).toBe(2);
  });

  it('uses a custom dedupKey, and processes without dedup when the key is undefined', async () => {
    let calls = 0;
    const handle = createStripeHandler({
      secret: STRIPE_SECRET,
      dedupKey: (event) => (event.type === 'invoice.paid' ? 'same-key' : undefined),
      onEvent: () => void calls++,
    });
    await handle(post(signStripePayload(stripeEvent('invoice.paid'), STRIPE_SECRET)));
    const second = await handle(post(signStripePayload(stripeEvent('invoice.paid'), STRIPE_SECRET)));
    expect(parse(second.body)).toEqual({ ok: true, duplicate: true });
    const unkeyed = signStripePayload(stripeEvent('charge.refunded'), STRIPE_SECRET);
    await handle(post(unkeyed));
    await handle(post(unkeyed));
    expect(calls).toBe(3);
  });

  it('hands the handler a context with key, delivery id, headers and a bound logger', async () => {
    const log = recorder();
    let ctxSeen: unknown;
    const handle = createChatwootHandler({
      secret: SECRET,
      logger: log.logger,
      on: {
        message_created: (_event, ctx) => {
          ctxSeen = { provider: ctx.provider, key: ctx.key, deliveryId: ctx.deliveryId };
          ctx.log.info({ step: 'reply' }, 'replying');
        },
      },
    });
    const event = chatwootEvent('message_created');
    await handle(post(signChatwootPayload(event, SECRET, { deliveryId: 'd-9' })));
    expect(ctxSeen).toEqual({
      provider: 'chatwoot',
      key: `chatwoot:1:message_created:${event.id}`,
      deliveryId: 'd-9',
    });
    expect(log.lines.find((l) => l.msg === 'replying')?.obj).toMatchObject({
      provider: 'chatwoot',
      deliveryId: 'd-9',
      step: 'reply',
    });
  });

  it('prefers the handler in `on` over onEvent, and ignores events with neither', async () => {
    const seen: string[] = [];
    const handle = createChatwootHandler({
      secret: SECRET,
      on: { conversation_created: () => void seen.push('on') },
      onEvent: (e) => void seen.push(`any:${e.event}`),
    });
    await handle(post(signChatwootPayload(chatwootEvent('conversation_created'), SECRET)));
    await handle(post(signChatwootPayload(chatwootEvent('contact_created'), SECRET)));
    expect(seen).toEqual(['on', 'any:contact_created']);
    const quiet = createChatwootHandler({ secret: SECRET, on: { contact_created: () => {} } });
    const answer = await quiet(post(signChatwootPayload(chatwootEvent('conversation_created'), SECRET)));
    expect(parse(answer.body)).toEqual({ ok: true, ignored: true });
  });

  it('never routes to inherited properties such as "constructor"', async () => {
    let calls = 0;
    const handle = createChatwootHandler({ secret: SECRET, onEvent: () => void calls++ });
    const answer = await handle(post(signChatwootPayload({ event: 'constructor' }, SECRET)));
    expect(answer.status).toBe(200);
    expect(calls).toBe(1);
  });

  it('lets a custom ignore replace the default', async () => {
    let calls = 0;
    const handle = createChatwootHandler({
      secret: SECRET,
      ignore: () => false,
      onEvent: () => void calls++,
    });
    await handle(
      post(signChatwootPayload(chatwootEvent('message_created', { message_type: 'outgoing' }), SECRET)),
    );
    expect(calls).toBe(1);
  });

  it('answers RAW_BODY_UNAVAILABLE when given no body', async () => {
    const handle = createChatwootHandler({ secret: SECRET, onEvent: () => {} });
    const answer = await handle({ method: 'POST', headers: {}, body: undefined });
    expect(answer.status).toBe(500);
    expect(parse(answer.body)).toEqual({ error: { code: 'RAW_BODY_UNAVAILABLE' } });
  });

  it('warns at start-up about allowUnsigned and about a missing secret', () => {
    const log = recorder();
    createChatwootHandler({ secret: undefined, allowUnsigned: true, logger: log.logger });
    createStripeHandler({ secret: '', logger: log.logger });
    expect(log.lines.map((l) => l.level)).toEqual(['warn', 'error']);
    expect(log.lines[0]?.msg).toMatch(/NOT verified/);
    expect(log.lines[1]?.msg).toMatch(/MISSING_SECRET/);
  });
});

describe('ignoreNonIncomingMessages', () => {
  it.each([
    [{ event: 'message_created', message_type: 'incoming' }, false],
    [{ event: 'message_created', message_type: 'outgoing' }, true],
    [{ event: 'message_created', message_type: 'template' }, true],
    [{ event: 'message_created', message_type: 'incoming', private: true }, true],
    [{ event: 'message_updated', message_type: 'outgoing' }, true],
    [{ event: 'message_created' }, true],
    [{ event: 'message_created', message: { message_type: 'incoming' } }, false],
    [{ event: 'message_created', message: { message_type: 0 } }, false],
    [{ event: 'message_created', message: { message_type: 1 } }, true],
    [{ event: 'conversation_created' }, false],
    [{ event: 'contact_updated', message_type: 'outgoing' }, false],
  ])('%j → ignored: %s', (event, ignored) => {
    expect(ignoreNonIncomingMessages(event as ChatwootEvent)).toBe(ignored);
  });
});

describe('adapters expose the stats of their pipeline', () => {
  it('express, koa, fastify and fetch handlers answer stats()', () => {
    const handlers = [
      expressAdapter.stripeWebhook({ secret: STRIPE_SECRET }),
      koaAdapter.stripeWebhook({ secret: STRIPE_SECRET }),
      fastifyAdapter.stripeWebhook({ secret: STRIPE_SECRET, path: '/s' }),
      fetchAdapter.stripeWebhook({ secret: STRIPE_SECRET }),
    ];
    for (const handler of handlers)
      expect(handler.stats()).toMatchObject({ provider: 'stripe', requests: 0 });
  });
});
