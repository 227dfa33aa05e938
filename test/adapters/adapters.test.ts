// Every row of the contract's status table, through every framework adapter, over real HTTP.
import { request as httpRequest } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import {
  createMemoryDedupStore,
  type ChatwootWebhookOptions,
  type DedupStore,
  type StripeWebhookOptions,
  type WebhookOutcome,
} from '../../src/index.js';
import {
  chatwootEvent,
  signChatwootPayload,
  signStripePayload,
  stripeEvent,
} from '../../src/testing/index.js';
import { send, shuffle, sleep, streamChunked, trickle } from '../helpers/http.js';
import { FRAMEWORKS, type Route, type Running } from '../helpers/servers.js';

const CW_SECRET = 'cw-test-secret';
const STRIPE_SECRET = 'whsec_test_adapters';

let running: Running | undefined;
afterEach(async () => {
  await running?.close();
  running = undefined;
});

const errorBody = (code: string) => ({ error: { code } });

describe.each(FRAMEWORKS)('$name adapter', (framework) => {
  async function start(routes: Route[]): Promise<Running> {
    running = await framework.start(routes);
    return running;
  }
  const chatwoot = (options: Partial<ChatwootWebhookOptions> = {}, path = '/cw'): Route => ({
    path,
    provider: 'chatwoot',
    options: { secret: CW_SECRET, ...options },
  });
  const stripe = (options: Partial<StripeWebhookOptions> = {}, path = '/stripe'): Route => ({
    path,
    provider: 'stripe',
    options: { secret: STRIPE_SECRET, ...options },
  });
  const expectJson = (headers: Headers) => expect(headers.get('content-type')).toMatch(/^application\/json/);

  it('processes a valid delivery once and answers duplicates 200 without running the handler again', async () => {
    const seen: string[] = [];
    const server = await start([
      chatwoot({ on: { message_created: (e) => void seen.push(String(e.content)) } }),
    ]);
    const signed = signChatwootPayload(chatwootEvent('message_created', { content: 'hi' }), CW_SECRET);
    const first = await send(server.url('/cw'), signed);
    expect(first).toMatchObject({ status: 200, body: { ok: true } });
    expectJson(first.headers);
    const again = await send(server.url('/cw'), signed);
    expect(again).toMatchObject({ status: 200, body: { ok: true, duplicate: true } });
    expectJson(again.headers);
    expect(seen).toEqual(['hi']);
  });

  it('answers 405 METHOD_NOT_ALLOWED to anything but POST', async () => {
    const server = await start([chatwoot({ onEvent: () => {} })]);
    const answer = await send(server.url('/cw'), { method: 'GET' });
    expect(answer).toMatchObject({ status: 405, body: errorBody('METHOD_NOT_ALLOWED') });
    expect(answer.headers.get('allow')).toBe('POST');
    expectJson(answer.headers);
  });

  it('answers 413 BODY_TOO_LARGE over maxBodyBytes', async () => {
    let calls = 0;
    const server = await start([chatwoot({ maxBodyBytes: 1024, onEvent: () => void calls++ })]);
    const signed = signChatwootPayload(
      chatwootEvent('message_created', { content: 'x'.repeat(2000) }),
      CW_SECRET,
    );
    const answer = await send(server.url('/cw'), signed);
    expect(answer).toMatchObject({ status: 413, body: errorBody('BODY_TOO_LARGE') });
    expectJson(answer.headers);
    expect(calls).toBe(0);
  });

  it('cuts off a chunked body over the limit while it streams, without buffering all of it', async () => {
    const server = await start([chatwoot({ maxBodyBytes: 16 * 1024, onEvent: () => {} })]);
    const total = 8 * 1024 * 1024;
    const answer = await streamChunked(
      server.url('/cw'),
      { 'content-type': 'application/json' },
      total,
      4096,
    );
    expect(answer.status).toBe(413);
    expect(JSON.parse(answer.body)).toEqual(errorBody('BODY_TOO_LARGE'));
    // The answer came long before the client had sent everything.
    expect(answer.bytesWrittenAtAnswer).toBeLessThan(total / 4);
  });

  it('cuts off a body trickled slower than readTimeoutMs, runs nothing, and keeps serving', async () => {
    let calls = 0;
    const outcomes: WebhookOutcome[] = [];
    const server = await start([
      chatwoot({ readTimeoutMs: 400, onOutcome: (o) => void outcomes.push(o), onEvent: () => void calls++ }),
    ]);
    const headers = signChatwootPayload(chatwootEvent('message_created'), CW_SECRET).headers;
    const answer = await trickle(server.url('/cw'), headers, 50, 5_000);
    expect(answer.afterMs).toBeLessThan(400 + 1_000);
    expect(answer).toMatchObject({ status: 408, body: JSON.stringify(errorBody('READ_TIMEOUT')) });
    await sleep(50);
    expect(outcomes).toEqual([expect.objectContaining({ result: 'rejected', code: 'READ_TIMEOUT' })]);
    expect(calls).toBe(0);
    const next = await send(
      server.url('/cw'),
      signChatwootPayload(chatwootEvent('message_created'), CW_SECRET),
    );
    expect(next.status).toBe(200);
  });

  it('processes a body that arrives in parts within readTimeoutMs, and cuts nothing afterwards', async () => {
    const outcomes: WebhookOutcome[] = [];
    const server = await start([
      chatwoot({ readTimeoutMs: 1_000, onOutcome: (o) => void outcomes.push(o), onEvent: () => {} }),
    ]);
    const signed = signChatwootPayload(chatwootEvent('message_created'), CW_SECRET);
    const answer = await sendInParts(server.url('/cw'), signed, 3, 150);
    expect(answer.status).toBe(200);
    await sleep(1_200); // past the read's deadline: nothing more happens to it
    expect(outcomes.map((o) => `${o.result}:${o.status}`)).toEqual(['processed:200']);
  });

  it('answers 500 MISSING_SECRET when no secret is configured, and never runs the handler', async () => {
    let calls = 0;
    const server = await start([
      chatwoot({ secret: undefined, onEvent: () => void calls++ }),
      stripe({ secret: ' ', onEvent: () => void calls++ }),
    ]);
    const cw = await send(
      server.url('/cw'),
      signChatwootPayload(chatwootEvent('message_created'), CW_SECRET),
    );
    expect(cw).toMatchObject({ status: 500, body: errorBody('MISSING_SECRET') });
    const st = await send(
      server.url('/stripe'),
      signStripePayload(stripeEvent('invoice.paid'), STRIPE_SECRET),
    );
    expect(st).toMatchObject({ status: 500, body: errorBody('MISSING_SECRET') });
    expect(calls).toBe(0);
  });

  it('accepts unsigned requests only with allowUnsigned and no secret', async () => {
    let calls = 0;
    const server = await start([
      chatwoot({ secret: undefined, allowUnsigned: true, onEvent: () => void calls++ }),
    ]);
    const body = JSON.stringify(chatwootEvent('message_created'));
    const answer = await send(server.url('/cw'), { body, headers: { 'content-type': 'application/json' } });
    expect(answer).toMatchObject({ status: 200, body: { ok: true } });
    expect(calls).toBe(1);
  });

  it('answers 401 with the code of the failed check, and never runs the handler', async () => {
    let calls = 0;
    const server = await start([
      chatwoot({ onEvent: () => void calls++ }),
      stripe({ onEvent: () => void calls++ }),
    ]);
    const forged = signChatwootPayload(chatwootEvent('message_created'), 'not-the-secret');
    expect(await send(server.url('/cw'), forged)).toMatchObject({
      status: 401,
      body: errorBody('SIGNATURE_MISMATCH'),
    });
    const unsigned = { body: forged.body, headers: { 'content-type': 'application/json' } };
    expect(await send(server.url('/cw'), unsigned)).toMatchObject({
      status: 401,
      body: errorBody('MISSING_SIGNATURE'),
    });
    const stale = signChatwootPayload(chatwootEvent('message_created'), CW_SECRET, {
      timestamp: Math.floor(Date.now() / 1000) - 3600,
    });
    expect(await send(server.url('/cw'), stale)).toMatchObject({
      status: 401,
      body: errorBody('TIMESTAMP_OUT_OF_TOLERANCE'),
    });
    const stripeForged = signStripePayload(stripeEvent('invoice.paid'), 'whsec_wrong');
    const answer = await send(server.url('/stripe'), stripeForged);
    expect(answer).toMatchObject({ status: 401, body: errorBody('SIGNATURE_MISMATCH') });
    expectJson(answer.headers);
    expect(calls).toBe(0);
  });

  it('answers 400 INVALID_JSON for a signed body that is not JSON, INVALID_PAYLOAD for JSON that is not an event', async () => {
    const server = await start([chatwoot({ onEvent: () => {} }), stripe({ onEvent: () => {} })]);
    expect(await send(server.url('/cw'), signChatwootPayload('not json', CW_SECRET))).toMatchObject({
      status: 400,
      body: errorBody('INVALID_JSON'),
    });
    expect(await send(server.url('/cw'), signChatwootPayload('[1,2]', CW_SECRET))).toMatchObject({
      status: 400,
      body: errorBody('INVALID_PAYLOAD'),
    });
    expect(await send(server.url('/stripe'), signStripePayload('{"id":', STRIPE_SECRET))).toMatchObject({
      status: 400,
      body: errorBody('INVALID_JSON'),
    });
  });

  it('ignores the bot’s own outgoing messages and private notes (200 ignored, no handler call)', async () => {
    let calls = 0;
    const server = await start([chatwoot({ on: { message_created: () => void calls++ } })]);
    for (const overrides of [{ message_type: 'outgoing' as const }, { private: true }]) {
      const signed = signChatwootPayload(chatwootEvent('message_created', overrides), CW_SECRET);
      const answer = await send(server.url('/cw'), signed);
      expect(answer).toMatchObject({ status: 200, body: { ok: true, ignored: true } });
    }
    // An event with no handler is acknowledged and ignored too.
    const other = await send(
      server.url('/cw'),
      signChatwootPayload(chatwootEvent('conversation_created'), CW_SECRET),
    );
    expect(other).toMatchObject({ status: 200, body: { ok: true, ignored: true } });
    expect(calls).toBe(0);
  });

  it('answers Stripe 409 IN_FLIGHT with Retry-After while another delivery of the event is processing', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const server = await start([stripe({ leaseMs: 30_000, onEvent: () => gate })]);
    const signed = signStripePayload(stripeEvent('invoice.paid'), STRIPE_SECRET);
    const first = send(server.url('/stripe'), signed);
    await sleep(100);
    const second = await send(server.url('/stripe'), signed);
    expect(second).toMatchObject({ status: 409, body: errorBody('IN_FLIGHT') });
    expect(second.headers.get('retry-after')).toBe('30');
    expectJson(second.headers);
    release();
    expect((await first).status).toBe(200);
  });

  it('answers Chatwoot 200 inFlight (a non-2xx would hand the conversation to a human) while a copy is processing', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const outcomes: WebhookOutcome[] = [];
    const server = await start([
      chatwoot({ leaseMs: 30_000, onEvent: () => gate, onOutcome: (o) => void outcomes.push(o) }),
    ]);
    const signed = signChatwootPayload(chatwootEvent('message_created'), CW_SECRET);
    const first = send(server.url('/cw'), signed);
    await sleep(100);
    const second = await send(server.url('/cw'), signed);
    expect(second).toMatchObject({ status: 200, body: { ok: true, inFlight: true } });
    expect(second.headers.get('retry-after')).toBeNull();
    expectJson(second.headers);
    release();
    expect((await first).status).toBe(200);
    expect(outcomes.map((o) => `${o.result}:${o.status}:${o.code ?? ''}`)).toEqual([
      'in-flight:200:IN_FLIGHT',
      'processed:200:',
    ]);
  });

  it('answers Chatwoot 500 STORE_UNAVAILABLE when the store throws (Chatwoot retries 500, drops 503)', async () => {
    let calls = 0;
    const broken: DedupStore = {
      claim: () => Promise.reject(new Error('ECONNREFUSED 127.0.0.1:6379')),
      complete: () => {},
      release: () => {},
    };
    const server = await start([chatwoot({ store: broken, onEvent: () => void calls++ })]);
    const answer = await send(
      server.url('/cw'),
      signChatwootPayload(chatwootEvent('message_created'), CW_SECRET),
    );
    expect(answer).toMatchObject({ status: 500, body: errorBody('STORE_UNAVAILABLE') });
    expectJson(answer.headers);
    expect(calls).toBe(0);
  });

  it('answers 503 STORE_UNAVAILABLE with Retry-After when the store throws, and runs nothing', async () => {
    let calls = 0;
    const broken: DedupStore = {
      claim: () => Promise.reject(new Error('ECONNREFUSED 127.0.0.1:6379')),
      complete: () => {},
      release: () => {},
    };
    const server = await start([stripe({ store: broken, onEvent: () => void calls++ })]);
    const answer = await send(
      server.url('/stripe'),
      signStripePayload(stripeEvent('invoice.paid'), STRIPE_SECRET),
    );
    expect(answer).toMatchObject({ status: 503, body: errorBody('STORE_UNAVAILABLE') });
    expect(Number(answer.headers.get('retry-after'))).toBeGreaterThan(0);
    expectJson(answer.headers);
    expect(calls).toBe(0);
  });

  it('answers 500 HANDLER_FAILED and releases the claim, so the retry is processed exactly once', async () => {
    let attempts = 0;
    let completed = 0;
    const server = await start([
      stripe({
        on: {
          'checkout.session.completed': () => {
            attempts++;
            if (attempts === 1) throw new Error('database hiccup');
            completed++;
          },
        },
      }),
    ]);
    const signed = signStripePayload(stripeEvent('checkout.session.completed'), STRIPE_SECRET);
    const first = await send(server.url('/stripe'), signed);
    expect(first).toMatchObject({ status: 500, body: errorBody('HANDLER_FAILED') });
    expectJson(first.headers);
    expect(JSON.stringify(first.body)).not.toContain('database hiccup');
    expect(await send(server.url('/stripe'), signed)).toMatchObject({ status: 200, body: { ok: true } });
    expect(await send(server.url('/stripe'), signed)).toMatchObject({
      status: 200,
      body: { ok: true, duplicate: true },
    });
    expect({ attempts, completed }).toEqual({ attempts: 2, completed: 1 });
  });

  it('answers 202 at ackAfterMs for a slow handler, 200 inFlight to a copy meanwhile, and completes afterwards', async () => {
    const outcomes: WebhookOutcome[] = [];
    let finished = 0;
    const server = await start([
      chatwoot({
        ackAfterMs: 100,
        onOutcome: (o) => void outcomes.push(o),
        onEvent: async () => {
          await sleep(600);
          finished++;
        },
      }),
    ]);
    const signed = signChatwootPayload(chatwootEvent('message_created'), CW_SECRET);
    const started = Date.now();
    const accepted = await send(server.url('/cw'), signed);
    expect(accepted).toMatchObject({ status: 202, body: { ok: true, accepted: true } });
    expectJson(accepted.headers);
    expect(Date.now() - started).toBeLessThan(550);
    expect(finished).toBe(0);
    expect(await send(server.url('/cw'), signed)).toMatchObject({
      status: 200,
      body: { ok: true, inFlight: true },
    });
    await sleep(700);
    expect(finished).toBe(1);
    expect(await send(server.url('/cw'), signed)).toMatchObject({
      status: 200,
      body: { ok: true, duplicate: true },
    });
    expect(outcomes.map((o) => `${o.result}:${o.status}`)).toEqual([
      'in-flight:200',
      'processed:202',
      'duplicate:200',
    ]);
  });

  it('runs each of 50 events exactly once under 200 concurrent shuffled deliveries', async () => {
    const runs = new Map<string, number>();
    const server = await start([
      stripe({
        store: createMemoryDedupStore(),
        onEvent: async (event) => {
          runs.set(event.id, (runs.get(event.id) ?? 0) + 1);
          await sleep(5 + (event.id.charCodeAt(event.id.length - 1) % 20));
        },
      }),
    ]);
    const events = Array.from({ length: 50 }, () =>
      signStripePayload(stripeEvent('invoice.paid'), STRIPE_SECRET),
    );
    const deliveries = shuffle(
      events.flatMap((e) => [e, e, e, e]),
      2026,
    );
    const answers = await Promise.all(deliveries.map((signed) => send(server.url('/stripe'), signed)));
    const statuses = answers.map((a) => a.status);
    expect(statuses.every((s) => s === 200 || s === 409)).toBe(true);
    expect(runs.size).toBe(50);
    expect([...runs.values()].every((n) => n === 1)).toBe(true);
  });

  it('routes Stripe events to the handler of their type, and the rest to onEvent', async () => {
    const seen: string[] = [];
    const server = await start([
      stripe({
        on: { 'checkout.session.completed': (e) => void seen.push(`on:${e.data.object.object}`) },
        onEvent: (e) => void seen.push(`any:${e.type}`),
      }),
    ]);
    await send(
      server.url('/stripe'),
      signStripePayload(stripeEvent('checkout.session.completed'), STRIPE_SECRET),
    );
    await send(server.url('/stripe'), signStripePayload(stripeEvent('invoice.paid'), STRIPE_SECRET));
    expect(seen).toEqual(['on:checkout.session', 'any:invoice.paid']);
  });
});

/** POSTs `signed` in `parts` writes `gapMs` apart on one request, and reads the status. */
function sendInParts(
  url: string,
  signed: { body: string; headers: Record<string, string> },
  parts: number,
  gapMs: number,
): Promise<{ status: number }> {
  const bytes = Buffer.from(signed.body);
  const size = Math.ceil(bytes.length / parts);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      url,
      { method: 'POST', headers: { ...signed.headers, 'content-length': String(bytes.length) } },
      (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0 }));
      },
    );
    req.on('error', reject);
    const write = (i: number) => {
      const last = (i + 1) * size >= bytes.length;
      req.write(bytes.subarray(i * size, (i + 1) * size));
      if (last) req.end();
      else setTimeout(() => write(i + 1), gapMs);
    };
    write(0);
  });
}
