// The providers' delivery rules, end to end: real servers on every framework, and senders that retry the
// way Chatwoot and Stripe do (hookguard/testing). A status the provider does not retry is a lost event or,
// at Chatwoot, a conversation handed to a human: these scenarios must end with none of either.
import { createHash, randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { createMemoryDedupStore, type DedupStore } from '../../src/index.js';
import {
  chatwootEvent,
  createChatwootSender,
  createStripeSender,
  signChatwootPayload,
  stripeEvent,
} from '../../src/testing/index.js';
import { send, sleep } from '../helpers/http.js';
import { FRAMEWORKS, type Running } from '../helpers/servers.js';

const CW_SECRET = 'cw-delivery-rules-secret';
const STRIPE_SECRET = 'whsec_delivery_rules_secret';

/** A store whose first claim of some keys fails, as a Redis blip would. */
function blipping(inner: DedupStore, blips: (key: string) => boolean): DedupStore & { blipped: number } {
  const seen = new Set<string>();
  const store = {
    blipped: 0,
    claim(key: string, leaseMs: number) {
      if (!seen.has(key)) {
        seen.add(key);
        if (blips(key)) {
          store.blipped++;
          throw new Error('ECONNRESET');
        }
      }
      return inner.claim(key, leaseMs);
    },
    complete: (key: string, token: string, ttlMs: number) => inner.complete(key, token, ttlMs),
    release: (key: string, token: string) => inner.release(key, token),
  };
  return store;
}

/** A deterministic, evenly spread pick of about `share` of the strings it is asked about. */
const picks = (share: number, salt: string) => (value: string) =>
  createHash('sha256').update(`${salt}:${value}`).digest().readUInt32BE(0) < share * 2 ** 32;

describe.each(FRAMEWORKS)('$name, delivered as Chatwoot and Stripe deliver', (framework) => {
  let server: Running | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it('Chatwoot agent bot: double emits, handler failures and store blips end with 0 hand-offs, each message once', async () => {
    const succeeded = new Map<number, number>();
    const tried = new Set<number>();
    const failsFirst = picks(1 / 7, 'handler');
    const store = blipping(createMemoryDedupStore(), picks(0.08, 'store'));
    server = await framework.start([
      {
        path: '/cw',
        provider: 'chatwoot',
        options: {
          secret: CW_SECRET,
          store,
          logger: false,
          on: {
            async message_created(event) {
              const id = event.id as number;
              await sleep(id % 25);
              if (!tried.has(id)) {
                tried.add(id);
                if (failsFirst(String(id))) throw new Error('the LLM timed out');
              }
              succeeded.set(id, (succeeded.get(id) ?? 0) + 1);
            },
          },
        },
      },
    ]);
    const chatwoot = createChatwootSender({ url: server.url('/cw'), secret: CW_SECRET, retryDelayMs: 30 });
    const messages = Array.from({ length: 120 }, () => chatwootEvent('message_created'));
    const emittedTwice = picks(0.4, 'twice');
    // Chatwoot's double emit (chatwoot/chatwoot#11901): the same message as a second delivery with its
    // own delivery id, sent at the same moment.
    const deliveries = await Promise.all(
      messages.flatMap((message) =>
        emittedTwice(String(message.id))
          ? [chatwoot.deliver(message), chatwoot.deliver(message)]
          : [chatwoot.deliver(message)],
      ),
    );

    expect(deliveries.length).toBeGreaterThan(125); // the double emits happened (about 40 % of 120 ids)
    expect(store.blipped).toBeGreaterThan(0); // so did the store failures ...
    expect(deliveries.some((d) => d.attempts.length > 1)).toBe(true); // ... and Chatwoot's retries
    expect(deliveries.filter((d) => d.failure !== undefined)).toEqual([]);
    expect(succeeded.size).toBe(120);
    expect([...succeeded.values()].every((n) => n === 1)).toBe(true);
  });

  it('Chatwoot agent bot: a slow first delivery and its concurrent double emit, no hand-off, processed once', async () => {
    let runs = 0;
    server = await framework.start([
      {
        path: '/cw',
        provider: 'chatwoot',
        options: {
          secret: CW_SECRET,
          logger: false,
          onEvent: async () => {
            runs++;
            await sleep(400);
          },
        },
      },
    ]);
    const chatwoot = createChatwootSender({ url: server.url('/cw'), secret: CW_SECRET, retryDelayMs: 30 });
    const message = chatwootEvent('message_created');
    const first = chatwoot.deliver(message);
    await sleep(100);
    const copy = await chatwoot.deliver(message);
    expect(copy).toMatchObject({ delivered: true, failure: undefined });
    expect(copy.attempts).toEqual([{ status: 200, body: { ok: true, inFlight: true } }]);
    expect(await first).toMatchObject({ delivered: true, attempts: [{ status: 200 }] });
    expect(runs).toBe(1);
  });

  it('Stripe: handler failures and store blips are retried until every event ran exactly once', async () => {
    const succeeded = new Map<string, number>();
    const tried = new Set<string>();
    const failsFirst = picks(1 / 5, 'stripe-handler');
    const store = blipping(createMemoryDedupStore(), picks(0.1, 'stripe-store'));
    server = await framework.start([
      {
        path: '/stripe',
        provider: 'stripe',
        options: {
          secret: STRIPE_SECRET,
          store,
          logger: false,
          onEvent: (event) => {
            if (!tried.has(event.id)) {
              tried.add(event.id);
              if (failsFirst(event.id)) throw new Error('database unavailable');
            }
            succeeded.set(event.id, (succeeded.get(event.id) ?? 0) + 1);
          },
        },
      },
    ]);
    const stripe = createStripeSender({
      url: server.url('/stripe'),
      secret: STRIPE_SECRET,
      firstRetryMs: 20,
    });
    const events = Array.from({ length: 60 }, () => stripeEvent('invoice.paid'));
    // Stripe is at-least-once: some events arrive twice, concurrently.
    const deliveries = await Promise.all(
      events.flatMap((event, i) =>
        i % 3 === 0 ? [stripe.deliver(event), stripe.deliver(event)] : [stripe.deliver(event)],
      ),
    );
    expect(deliveries.every((d) => d.delivered)).toBe(true);
    expect(deliveries.some((d) => d.attempts.some((a) => a.status === 503))).toBe(true);
    expect(deliveries.some((d) => d.attempts.some((a) => a.status === 500))).toBe(true);
    expect(succeeded.size).toBe(60);
    expect([...succeeded.values()].every((n) => n === 1)).toBe(true);
  });

  it("accepts Chatwoot's largest valid message (150,000 characters, ~2.7 MB as Rails escapes it) with the defaults", async () => {
    let received = -1;
    server = await framework.start([
      {
        path: '/cw',
        provider: 'chatwoot',
        options: {
          secret: CW_SECRET,
          logger: false,
          on: { message_created: (event) => void (received = event.content?.length ?? -1) },
        },
      },
    ]);
    // As Chatwoot sends it (hookguard/testing): Rails writes "<" as \u003c, 6 bytes, and the body carries the
    // content about three times.
    const message = chatwootEvent('message_created', { content: '<'.repeat(150_000) });
    const signed = signChatwootPayload(message, CW_SECRET);
    expect(signed.body.length).toBeGreaterThan(2_700_000);
    const answer = await send(server.url('/cw'), signed);
    expect(answer).toMatchObject({ status: 200, body: { ok: true } });
    expect(received).toBe(150_000);
  });

  it('runs a captured conversation_updated once however often it is replayed with new delivery ids', async () => {
    let runs = 0;
    const store = createMemoryDedupStore();
    server = await framework.start([
      {
        path: '/cw',
        provider: 'chatwoot',
        options: { secret: CW_SECRET, store, logger: false, onEvent: () => void runs++ },
      },
    ]);
    const captured = signChatwootPayload(chatwootEvent('conversation_updated'), CW_SECRET);
    const statuses: number[] = [];
    for (let i = 0; i < 51; i++) {
      const headers = { ...captured.headers, 'x-chatwoot-delivery': randomUUID() };
      statuses.push((await send(server.url('/cw'), { body: captured.body, headers })).status);
    }
    expect(statuses.every((status) => status === 200)).toBe(true);
    expect(runs).toBe(1);
    expect(store.size).toBe(1);
  });
});
