// Attacks on coalesce() (fresh-eyes review): behaviours the README promises that the first version broke.
// 1. supersede aborts the call when the lane grows, even when the newer message cannot join the batch
//    (the batch is already at maxMessages, or an event of another handler stands between): the handler
//    is called again with the very same batch, up to 3 times.
// 2. a message of the burst still claimed by an earlier run of the same head (a worker killed mid-call:
//    the head's claim runs out before its members', which were claimed a window later) makes the head
//    run alone: the burst is answered in two calls.
import { afterEach, describe, expect, it } from 'vitest';
import { coalesce } from '../../src/inbox/bullmq.js';
import { createChatwootHandler, type ChatwootWebhookOptions } from '../../src/index.js';
import { createRedisDedupStore } from '../../src/stores/redis.js';
import { chatwootEvent, signChatwootPayload } from '../../src/testing/index.js';
import { sleep } from '../helpers/http.js';
import { orderedEngines, post, type TestInbox, until } from '../helpers/ordered-inboxes.js';
import { newIoRedis, postgresUp, redisUp, requireService } from '../helpers/services.js';

const redisAvailable = await redisUp();
const postgresAvailable = await postgresUp();
const SECRET = 'cw-bursts-attack';
const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});
const ENGINES = orderedEngines(cleanups, { redis: redisAvailable, postgres: postgresAvailable });

let nextId = 500_000 + Math.floor(Math.random() * 1e6);
const message = (conversation: number, content: string, id = nextId++) =>
  chatwootEvent('message_created', { id, content, conversation: { id: conversation, inbox_id: 7 } });

interface Call {
  contents: string[];
  aborted: boolean;
}

function bot(inbox: TestInbox, options: Parameters<typeof coalesce>[0]) {
  const calls: Call[] = [];
  const chatwoot = {
    secret: SECRET,
    inbox,
    logger: false as const,
    on: {
      conversation_status_changed: () => {},
      message_created: coalesce(options, async (messages, ctx) => {
        const call: Call = { contents: messages.map((m) => m.content ?? ''), aborted: false };
        calls.push(call);
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(resolve, 1500);
          ctx.signal.addEventListener('abort', () => {
            clearTimeout(timer);
            call.aborted = true;
            reject(ctx.signal.reason as Error);
          });
        });
      }),
    },
  } satisfies ChatwootWebhookOptions;
  const handle = createChatwootHandler(chatwoot);
  const send = async (event: unknown) => {
    const signed = signChatwootPayload(event as never, SECRET);
    // A busy shared server may refuse a write (500 INBOX_UNAVAILABLE): retried, as Chatwoot would.
    for (let tries = 1; ; tries++) {
      const { status } = await handle(post(signed.body, signed.headers));
      if (status === 200 || tries === 5) return expect(status).toBe(200);
      await sleep(300);
    }
  };
  return { chatwoot, calls, send };
}

describe.each(ENGINES)('$name inbox: coalesce() attacks', (engine) => {
  const up = requireService(engine.service, engine.available);

  it.runIf(up)(
    'supersede: a lane longer than maxMessages does not abort the call (the newer messages cannot join it)',
    async () => {
      const inbox = engine.make({ ordered: true });
      const b = bot(inbox, { windowMs: 300, maxMessages: 3, supersede: true });
      inbox.worker({ chatwoot: b.chatwoot, concurrency: 4, inFlightDelayMs: 300, logger: false });
      for (const content of ['m1', 'm2', 'm3', 'm4', 'm5']) await b.send(message(42, content));
      await until(() => b.calls.filter((c) => !c.aborted).flatMap((c) => c.contents).length >= 5, 30_000);
      await sleep(1000);
      // Found: [m1,m2,m3] aborted 3 times (no message arrived during the call), then [m1,m2,m3], [m4,m5].
      expect(b.calls.map((c) => [c.contents.join(','), c.aborted])).toEqual([
        ['m1,m2,m3', false],
        ['m4,m5', false],
      ]);
    },
    60_000,
  );

  it.runIf(up)(
    'supersede: a newer message behind an event of another handler does not abort the call',
    async () => {
      const inbox = engine.make({ ordered: true });
      const b = bot(inbox, { windowMs: 300, supersede: true });
      inbox.worker({ chatwoot: b.chatwoot, concurrency: 4, inFlightDelayMs: 300, logger: false });
      await b.send(message(43, 'a'));
      await b.send(chatwootEvent('conversation_status_changed', { id: 43, inbox_id: 7, status: 'resolved' }));
      await until(() => b.calls.length === 1, 20_000);
      await b.send(message(43, 'b')); // cannot join [a]: the status change comes first
      await until(() => b.calls.some((c) => c.contents.includes('b') && !c.aborted), 30_000);
      await sleep(500);
      // Found: [a] aborted, [a] again, then [b].
      expect(b.calls.map((c) => [c.contents.join(','), c.aborted])).toEqual([
        ['a', false],
        ['b', false],
      ]);
    },
    60_000,
  );
});

describe('BullMQ inbox: coalesce() after a worker died mid-call', () => {
  const up = requireService('Redis', redisAvailable);

  it.runIf(up)(
    'a member still claimed by the dead call: the head waits for it instead of answering half the burst',
    async () => {
      const inbox = ENGINES[0].make({ ordered: true });
      const b = bot(inbox, { windowMs: 300 });
      const [a, m] = [message(44, 'a'), message(44, 'b')];
      // What a worker killed mid-call leaves: the member's claim, which runs out a window after the head's.
      const redis = newIoRedis();
      cleanups.push(() => redis.quit());
      const store = createRedisDedupStore({
        client: redis,
        prefix: `hookguard:inbox:${(inbox as unknown as { queue: { name: string } }).queue.name}:`,
      });
      const claim = await store.claim(`chatwoot:1:message_created:${(m as { id: number }).id}`, 3000);
      expect(claim.status).toBe('claimed');
      await b.send(a);
      await b.send(m);
      inbox.worker({ chatwoot: b.chatwoot, concurrency: 2, inFlightDelayMs: 300, logger: false });
      await until(() => b.calls.flatMap((c) => c.contents).length >= 2, 30_000);
      await sleep(500);
      // Found: [a] then [b].
      expect(b.calls.map((c) => c.contents)).toEqual([['a', 'b']]);
    },
    60_000,
  );
});
