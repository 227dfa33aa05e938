// Ordering in the durable inbox (`ordered: true`), on real BullMQ and Redis and on real pg-boss and
// PostgreSQL: events of one ordering key (a
// Chatwoot conversation, a Stripe object) run one at a time across workers, in the order the web side
// accepted them, while other keys go on; a failing event holds its key until it is dead-lettered (or,
// with holdOrderOnFailure, until it is retried). Each figure is printed, and the unordered run beside it
// shows what the test catches without the feature.
import { afterEach, describe, expect, it } from 'vitest';
import { createChatwootHandler, createStripeHandler } from '../../src/index.js';
import type { ChatwootEvent, StripeWebhookEvent, WebhookContext } from '../../src/index.js';
import {
  chatwootEvent,
  signChatwootPayload,
  signStripePayload,
  stripeEvent,
} from '../../src/testing/index.js';
import { sleep } from '../helpers/http.js';
import { orderedEngines, post, type TestInbox, until } from '../helpers/ordered-inboxes.js';
import { postgresUp, redisUp, requireService } from '../helpers/services.js';

const redisAvailable = await redisUp();
const postgresAvailable = await postgresUp();
const SECRET = 'cw-ordering-secret';

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const ENGINES = orderedEngines(cleanups, { redis: redisAvailable, postgres: postgresAvailable });

/** The test's own label, in the event's object metadata. */
const stepOf = (event: StripeWebhookEvent) =>
  (event as { data?: { object?: { metadata?: { step?: string } } } }).data?.object?.metadata?.step ?? '?';

/** A signed `customer.subscription.updated` of `object`, labelled `step` in its metadata. */
const subscriptionUpdate = (object: string, step: string) =>
  signStripePayload(
    stripeEvent('customer.subscription.updated', { data: { object: { id: object, metadata: { step } } } }),
    'whsec_ordering',
  );

/** Delivers one to `handle` and expects it accepted. */
async function accept(handle: ReturnType<typeof createStripeHandler>, object: string, step: string) {
  const signed = subscriptionUpdate(object, step);
  expect((await handle(post(signed.body, signed.headers))).status).toBe(200);
}

/** What the handlers saw, per conversation: the order of runs, overlaps, and runs per message. */
function recorder() {
  const order = new Map<number, number[]>();
  const active = new Map<number, number>();
  const runs = new Map<string, number>();
  let overlaps = 0;
  let total = 0;
  const handle = async (event: ChatwootEvent) => {
    const conversation = Number((event as { conversation?: { id?: number } }).conversation?.id);
    const seq = Number((event as { content?: string }).content);
    const now = (active.get(conversation) ?? 0) + 1;
    active.set(conversation, now);
    if (now > 1) overlaps++;
    order.set(conversation, [...(order.get(conversation) ?? []), seq]);
    await sleep(Math.random() * 12);
    active.set(conversation, (active.get(conversation) ?? 1) - 1);
    const id = `${conversation}/${seq}`;
    runs.set(id, (runs.get(id) ?? 0) + 1);
    total++;
  };
  const outOfOrder = () =>
    [...order.values()].filter((seqs) => seqs.some((seq, i) => i > 0 && seq < seqs[i - 1]!)).length;
  return { handle, order, runs, outOfOrder, overlaps: () => overlaps, total: () => total };
}

/** `conversations` × `messages`, interleaved at random across conversations, each conversation in order. */
async function deliver(
  handle: ReturnType<typeof createChatwootHandler>,
  conversations: number,
  messages: number,
) {
  const queues = Array.from({ length: conversations }, (_, c) =>
    Array.from({ length: messages }, (_, m) =>
      chatwootEvent('message_created', { content: String(m), conversation: { id: 1000 + c, inbox_id: 1 } }),
    ),
  );
  // Four senders at once, as several web processes; each takes the next message of a random conversation
  // that has none in flight, so a conversation's messages are accepted one after the other, in order.
  const busy = new Set<number>();
  const pick = () => {
    const open = [...queues.keys()].filter((c) => queues[c]!.length > 0 && !busy.has(c));
    if (open.length === 0) return undefined;
    const c = open[Math.floor(Math.random() * open.length)]!;
    busy.add(c);
    return { c, event: queues[c]!.shift()! };
  };
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      while (queues.some((q) => q.length > 0)) {
        const next = pick();
        if (next === undefined) {
          await sleep(1);
          continue;
        }
        const signed = signChatwootPayload(next.event, SECRET);
        const answer = await handle(post(signed.body, signed.headers));
        busy.delete(next.c);
        expect(answer.status).toBe(200);
      }
    }),
  );
}

describe.each(ENGINES)('$name inbox ordering', (engine) => {
  const up = requireService(engine.service, engine.available);
  it.runIf(up)(
    'runs each conversation one message at a time, in the order accepted, across three workers of concurrency 8',
    async () => {
      const conversations = 30;
      const messages = 8;
      const results: Record<string, { outOfOrder: number; overlaps: number; ms: number }> = {};
      for (const ordered of [false, true]) {
        const inbox = engine.make({ ordered });
        const seen = recorder();
        const options = { secret: SECRET, inbox, logger: false as const, onEvent: seen.handle };
        // Every message arrives before a worker starts, so the unordered run has the whole backlog to race.
        await deliver(createChatwootHandler(options), conversations, messages);
        const started = Date.now();
        for (let i = 0; i < 3; i++)
          inbox.worker({ chatwoot: options, concurrency: 8, inFlightDelayMs: 2000 });
        await until(() => seen.total() >= conversations * messages, 60_000);
        await sleep(300); // nothing more may run
        results[ordered ? 'ordered' : 'unordered'] = {
          outOfOrder: seen.outOfOrder(),
          overlaps: seen.overlaps(),
          ms: Date.now() - started,
        };
        expect(seen.total()).toBe(conversations * messages);
        expect([...seen.runs.values()].every((n) => n === 1)).toBe(true);
        if (ordered) {
          expect(seen.overlaps()).toBe(0);
          expect(seen.outOfOrder()).toBe(0);
          for (const seqs of seen.order.values()) expect(seqs).toEqual([...Array(messages).keys()]);
        }
      }
      console.log(
        `${engine.name} ordering, ${conversations} conversations x ${messages} messages, 3 workers x 8: ` +
          `unordered ${results.unordered!.outOfOrder} conversations out of order, ${results.unordered!.overlaps} overlapping runs (${results.unordered!.ms} ms); ` +
          `ordered ${results.ordered!.outOfOrder} and ${results.ordered!.overlaps} (${results.ordered!.ms} ms)`,
      );
      // Without ordering the same run does break order: the test catches a missing feature.
      expect(results.unordered!.outOfOrder + results.unordered!.overlaps).toBeGreaterThan(0);
    },
    150_000,
  );

  it.runIf(up)(
    'holds a key through its failing event, moves on once it is dead-lettered, and never holds up other keys',
    async () => {
      const inbox = engine.make({ ordered: true, attempts: 3 });
      const log: string[] = [];
      const onEvent = (event: StripeWebhookEvent, ctx: WebhookContext) => {
        const id = stepOf(event);
        if (id === 'a1') {
          log.push(`a1 fail ${ctx.attempt ?? '?'}`);
          throw new Error('dependency down');
        }
        log.push(id);
      };
      const options = { secret: 'whsec_ordering', inbox, logger: false as const, onEvent };
      const handle = createStripeHandler(options);
      const send = (object: string, step: string) => accept(handle, object, step);
      await send('sub_a', 'a1');
      await send('sub_a', 'a2');
      await send('sub_b', 'b1');
      inbox.worker({ stripe: options, concurrency: 4, inFlightDelayMs: 5000 });
      await until(() => log.includes('a2'), 20_000);
      // b1 ran while a1 was still failing; a2 only after a1's third and last attempt.
      expect(log.indexOf('b1')).toBeLessThan(log.indexOf('a1 fail 3'));
      expect(log.indexOf('a2')).toBeGreaterThan(log.indexOf('a1 fail 3'));
      expect(log.filter((entry) => entry === 'a2')).toHaveLength(1);
      expect((await inbox.failed()).length).toBe(1);
    },
    60_000,
  );

  it.runIf(up)(
    'with holdOrderOnFailure, keeps the key held after the dead letter until the failed event is retried',
    async () => {
      const inbox = engine.make({ ordered: true, holdOrderOnFailure: true, attempts: 2 });
      const log: string[] = [];
      let healthy = false;
      const onEvent = (event: StripeWebhookEvent) => {
        const step = stepOf(event);
        if (step === 'a1' && !healthy) throw new Error('dependency down');
        log.push(step);
      };
      const options = { secret: 'whsec_ordering', inbox, logger: false as const, onEvent };
      const handle = createStripeHandler(options);
      for (const step of ['a1', 'a2']) await accept(handle, 'sub_h', step);
      inbox.worker({ stripe: options, concurrency: 2, inFlightDelayMs: 300 });
      let failed: Awaited<ReturnType<TestInbox['failed']>> = [];
      const end = Date.now() + 10_000;
      while (failed.length === 0 && Date.now() < end) {
        await sleep(50);
        failed = await inbox.failed();
      }
      expect(failed).toHaveLength(1);
      await sleep(1500); // a2 is looked at again every 300 ms: held, it does not run
      expect(log).toEqual([]);
      healthy = true;
      expect(await inbox.retry(failed[0]!.id)).toBe(true);
      await until(() => log.length === 2, 10_000);
      expect(log).toEqual(['a1', 'a2']);
    },
    60_000,
  );

  it.runIf(up)(
    'does not let a copy of a finished event hold its key: the next event runs at once',
    async () => {
      const inbox = engine.make({ ordered: true });
      const ran: { step: string; at: number }[] = [];
      const onEvent = (event: StripeWebhookEvent) => void ran.push({ step: stepOf(event), at: Date.now() });
      const options = { secret: 'whsec_ordering', inbox, logger: false as const, onEvent };
      const handle = createStripeHandler(options);
      const signed = (step: string) => subscriptionUpdate('sub_c', step);
      inbox.worker({ stripe: options, concurrency: 2, inFlightDelayMs: 5000 });
      const first = signed('a1');
      expect((await handle(post(first.body, first.headers))).status).toBe(200);
      await until(() => ran.length === 1, 10_000);
      await sleep(200); // a1 has left its lane
      // Stripe's retry of a1 (same event, signed again): answered duplicate, and not in the lane again.
      const copy = signStripePayload(JSON.parse(first.body) as object, 'whsec_ordering');
      const again = await handle(post(copy.body, copy.headers));
      expect(JSON.parse(again.body)).toMatchObject({ duplicate: true });
      const second = signed('a2');
      const sent = Date.now();
      expect((await handle(post(second.body, second.headers))).status).toBe(200);
      await until(() => ran.length === 2, 15_000);
      // Without the fix a2 sat behind the copy's stale place: parked 5 s (the next look then dropped it).
      expect(ran[1]!.step).toBe('a2');
      expect(ran[1]!.at - sent).toBeLessThan(2500);
    },
    30_000,
  );

  // pg-boss fetches by priority, then creation time. A key's next event, promoted as the one ahead leaves,
  // was created before a backlog of other keys' events; without its priority raised it ran after all of
  // them (here 150 runs later), with it at the next fetch.
  it.runIf(up && engine.name === 'pg-boss')(
    'a promoted event is fetched before older events that are merely due',
    async () => {
      const inbox = engine.make({ ordered: true });
      const ran: string[] = [];
      const onEvent = async (event: StripeWebhookEvent) => {
        ran.push(stepOf(event));
        await sleep(2);
      };
      const options = { secret: 'whsec_ordering', inbox, logger: false as const, onEvent };
      const handle = createStripeHandler(options);
      const send = (object: string, step: string) => accept(handle, object, step);
      await send('sub_first', 'a1');
      for (let i = 0; i < 150; i++) await send(`sub_other_${i}`, `b${i}`);
      await send('sub_first', 'a2'); // parked behind a1, created after the backlog
      inbox.worker({ stripe: options, concurrency: 1, inFlightDelayMs: 5000 });
      await until(() => ran.length === 152, 60_000);
      expect(ran[0]).toBe('a1');
      // One fetch may already hold the next job as a1 leaves: a2 within the first few runs after it.
      expect(ran.indexOf('a2')).toBeLessThan(5);
    },
    90_000,
  );

  it.runIf(up)('refuses an event whose orderKey throws (500, nothing queued), so the retry is', async () => {
    const inbox = engine.make({ ordered: true });
    const handle = createChatwootHandler({
      secret: SECRET,
      inbox,
      logger: false,
      orderKey: () => {
        throw new Error('no conversation');
      },
      onEvent: () => {},
    });
    const signed = signChatwootPayload(chatwootEvent('message_created'), SECRET);
    const answer = await handle(post(signed.body, signed.headers));
    expect(answer.status).toBe(500);
    expect(JSON.parse(answer.body)).toMatchObject({ error: { code: 'HANDLER_FAILED' } });
    expect(await inbox.count()).toBe(0);
  });
});
