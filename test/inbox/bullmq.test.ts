// The durable inbox on real BullMQ (5, and 6 under vitest.bullmq6.config.ts) and Redis: the web side
// answers only after Redis took the event, the workers run each event's handler until it succeeds once,
// failures end in the dead letter and re-run.
import { randomUUID } from 'node:crypto';
import * as bullmq from 'bullmq';
import { afterEach, describe, expect, it } from 'vitest';
import { createBullMQInbox, type BullMQInbox, type InboxWorker } from '../../src/inbox/bullmq.js';
import type { InboxContext, WebhookOutcome } from '../../src/index.js';
import {
  chatwootEvent,
  createChatwootSender,
  signChatwootPayload,
  signStripePayload,
  stripeEvent,
} from '../../src/testing/index.js';
import { send, sleep } from '../helpers/http.js';
import { FRAMEWORKS, type Running } from '../helpers/servers.js';
import { redisUp, requireService } from '../helpers/services.js';

const available = await redisUp();
// BullMQ 6 exports its major; BullMQ 5 does not.
const MAJOR = Number((bullmq as Record<string, unknown>).BULLMQ_MAJOR_VERSION ?? 5);
const CW_SECRET = 'cw-inbox-secret';
const STRIPE_SECRET = 'whsec_inbox_secret';
const connection = { host: '127.0.0.1', port: 6379 };

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function inboxFor(options: Partial<Parameters<typeof createBullMQInbox>[0]> = {}): BullMQInbox {
  const inbox = createBullMQInbox({
    connection,
    queueName: `hg-test-${randomUUID()}`,
    backoffMs: 20,
    logger: false,
    ...options,
  });
  cleanups.push(async () => {
    await inbox.queue.obliterate({ force: true }).catch(() => undefined);
    await inbox.close();
  });
  return inbox;
}

function started(worker: InboxWorker): InboxWorker {
  cleanups.push(() => worker.close(5000));
  return worker;
}

async function until(check: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await sleep(20);
  }
}

describe.runIf(requireService('Redis', available))('BullMQ inbox', () => {
  it('runs on the BullMQ major its test config names (5 by default, 6 under vitest.bullmq6.config.ts)', () => {
    expect(MAJOR).toBe(Number(process.env.HOOKGUARD_BULLMQ_MAJOR ?? 5));
  });

  describe.each(FRAMEWORKS)('$name web side', (framework) => {
    it('answers 200 queued once Redis has the event, duplicate for its copies, and refuses forgeries before enqueue', async () => {
      const inbox = inboxFor();
      const cw = { secret: CW_SECRET, inbox, logger: false as const, onEvent: () => {} };
      const running: Running = await framework.start([{ path: '/cw', provider: 'chatwoot', options: cw }]);
      cleanups.push(() => running.close());
      const message = chatwootEvent('message_created');
      const first = await send(running.url('/cw'), signChatwootPayload(message, CW_SECRET));
      expect(first).toMatchObject({ status: 200, body: { ok: true, queued: true } });
      // Chatwoot's double emit: another delivery id, same message.
      const copy = await send(running.url('/cw'), signChatwootPayload(message, CW_SECRET));
      expect(copy).toMatchObject({ status: 200, body: { ok: true, duplicate: true } });
      const forged = await send(
        running.url('/cw'),
        signChatwootPayload(chatwootEvent('message_created'), 'wrong'),
      );
      expect(forged.status).toBe(401);
      // Stale, oversized and non-JSON requests are refused before anything reaches the engine too.
      const stale = signChatwootPayload(chatwootEvent('message_created'), CW_SECRET, {
        timestamp: Math.floor(Date.now() / 1000) - 3600,
      });
      expect((await send(running.url('/cw'), stale)).status).toBe(401);
      const huge = signChatwootPayload(
        { event: 'message_created', id: 1, pad: 'x'.repeat(5 * 1024 * 1024) },
        CW_SECRET,
      );
      expect((await send(running.url('/cw'), huge).catch(() => ({ status: 413 }))).status).toBe(413);
      expect((await send(running.url('/cw'), signChatwootPayload('not json', CW_SECRET))).status).toBe(400);
      expect((await inbox.queue.getJobCounts('waiting')).waiting).toBe(1);
    });
  });

  it('runs each event once in the worker with the attempt number, retrying a failure with backoff', async () => {
    const inbox = inboxFor();
    const runs: { id: string; attempt: number; ok: boolean }[] = [];
    const outcomes: (WebhookOutcome & { attempt: number })[] = [];
    const stripe = {
      secret: STRIPE_SECRET,
      inbox,
      logger: false as const,
      onEvent: (event: { id: string }, ctx: InboxContext | object) => {
        const attempt = (ctx as InboxContext).attempt;
        const ok = attempt > 1;
        runs.push({ id: event.id, attempt, ok });
        if (!ok) throw new Error('flaky dependency');
      },
    };
    const { createStripeHandler } = await import('../../src/index.js');
    const handle = createStripeHandler(stripe);
    const event = stripeEvent('invoice.paid');
    const answer = await handle({ method: 'POST', ...signStripePayload(event, STRIPE_SECRET) });
    expect(JSON.parse(answer.body)).toEqual({ ok: true, queued: true });
    started(inbox.worker({ stripe, logger: false, onOutcome: (o) => void outcomes.push(o) }));
    await until(() => runs.some((r) => r.ok));
    await sleep(200);
    expect(runs).toEqual([
      { id: event.id, attempt: 1, ok: false },
      { id: event.id, attempt: 2, ok: true },
    ]);
    expect(outcomes.map((o) => `${o.result}:${o.attempt}`)).toEqual(['failed:1', 'processed:2']);
  });

  it('keeps an event that fails every attempt as failed, lists it, and re-runs it once on retry', async () => {
    const inbox = inboxFor({ attempts: 3 });
    let healthy = false;
    let succeeded = 0;
    const cw = {
      secret: CW_SECRET,
      inbox,
      logger: false as const,
      onEvent: () => {
        if (!healthy) throw new Error('the LLM is down');
        succeeded++;
      },
    };
    const { createChatwootHandler } = await import('../../src/index.js');
    const handle = createChatwootHandler(cw);
    const message = chatwootEvent('message_created');
    await handle({ method: 'POST', ...signChatwootPayload(message, CW_SECRET) });
    const worker = started(inbox.worker({ chatwoot: cw, logger: false }));
    await until(async () => (await inbox.failed()).length === 1);
    const [failed] = await inbox.failed();
    expect(failed).toMatchObject({
      provider: 'chatwoot',
      event: 'message_created',
      attempts: 3,
      error: 'the LLM is down',
    });
    expect(failed!.key).toMatch(/^chatwoot:1:message_created:/);
    // A redelivery of a dead-lettered event does not queue it twice: it waits for the operator.
    expect(
      JSON.parse((await handle({ method: 'POST', ...signChatwootPayload(message, CW_SECRET) })).body),
    ).toEqual({
      ok: true,
      duplicate: true,
    });
    healthy = true;
    expect(await inbox.retry(failed!.id)).toBe(true);
    await until(() => succeeded === 1);
    await sleep(200);
    expect(succeeded).toBe(1);
    expect(await inbox.failed()).toEqual([]);
    expect(worker.stats()).toMatchObject({ processed: 1, failed: 3 });
    expect(await inbox.retry(failed!.id)).toBe(false); // done: nothing to retry
  });

  it('never runs a completed event again when the engine hands its job out a second time', async () => {
    const inbox = inboxFor();
    let runs = 0;
    const stripe = { secret: STRIPE_SECRET, inbox, logger: false as const, onEvent: () => void runs++ };
    const { createStripeHandler, createMemoryDedupStore } = await import('../../src/index.js');
    const handle = createStripeHandler(stripe);
    const worker = started(inbox.worker({ stripe, store: createMemoryDedupStore(), logger: false }));
    const signed = signStripePayload(stripeEvent('invoice.paid'), STRIPE_SECRET);
    await handle({ method: 'POST', ...signed });
    await until(() => runs === 1);
    await sleep(100);
    // Completed jobs age out of Redis (keepCompletedMs); once gone, a redelivery is queued again and the
    // worker's dedup store must catch it.
    await inbox.queue.clean(0, 100, 'completed');
    expect(JSON.parse((await handle({ method: 'POST', ...signed })).body)).toEqual({
      ok: true,
      queued: true,
    });
    await until(() => worker.stats().duplicate === 1);
    expect(runs).toBe(1);
  });

  it('answers INBOX_UNAVAILABLE within the bound when Redis is unreachable: Stripe 503, Chatwoot 500', async () => {
    const inbox = createBullMQInbox({
      connection: { host: '127.0.0.1', port: 1, maxRetriesPerRequest: 0, enableOfflineQueue: false },
      queueName: `hg-down-${randomUUID()}`,
      enqueueTimeoutMs: 300,
    });
    cleanups.push(() => inbox.close().catch(() => undefined));
    const { createChatwootHandler, createStripeHandler } = await import('../../src/index.js');
    const stripe = createStripeHandler({ secret: STRIPE_SECRET, inbox, logger: false, onEvent() {} });
    const cw = createChatwootHandler({ secret: CW_SECRET, inbox, logger: false, onEvent() {} });
    const t0 = performance.now();
    const s = await stripe({
      method: 'POST',
      ...signStripePayload(stripeEvent('invoice.paid'), STRIPE_SECRET),
    });
    const c = await cw({
      method: 'POST',
      ...signChatwootPayload(chatwootEvent('message_created'), CW_SECRET),
    });
    expect(performance.now() - t0).toBeLessThan(2000);
    expect(s).toMatchObject({ status: 503, body: '{"error":{"code":"INBOX_UNAVAILABLE"}}' });
    expect(s.headers['retry-after']).toBeDefined();
    expect(c).toMatchObject({ status: 500, body: '{"error":{"code":"INBOX_UNAVAILABLE"}}' });
  });

  it('answers a bot whose reply takes longer than Chatwoot waits in milliseconds, and replies once', async () => {
    const inbox = inboxFor();
    const replies: number[] = [];
    const cw = {
      secret: CW_SECRET,
      inbox,
      logger: false as const,
      on: {
        message_created: async (event: { id?: number | null }) => {
          await sleep(1500); // longer than the sender's timeout below
          replies.push(event.id ?? -1);
        },
      },
    };
    const framework = FRAMEWORKS.find((f) => f.name === 'express 5')!;
    const running = await framework.start([{ path: '/cw', provider: 'chatwoot', options: cw }]);
    cleanups.push(() => running.close());
    started(inbox.worker({ chatwoot: cw, concurrency: 4, logger: false }));
    const chatwoot = createChatwootSender({
      url: running.url('/cw'),
      secret: CW_SECRET,
      timeoutMs: 1000,
      retryDelayMs: 20,
    });
    const messages = Array.from({ length: 8 }, () => chatwootEvent('message_created'));
    const deliveries = await Promise.all(messages.map((m) => chatwoot.deliver(m)));
    expect(deliveries.every((d) => d.delivered && d.failure === undefined)).toBe(true);
    await until(() => replies.length === 8);
    await sleep(300);
    expect(replies.sort()).toEqual(messages.map((m) => m.id).sort());
  });
});

describe.runIf(requireService('Redis', available))('hookguard inbox (CLI)', () => {
  it('lists the dead letter and runs a job again, by id and --all', async () => {
    const { main } = await import('../../src/cli.js');
    const inbox = inboxFor({ attempts: 1 });
    let healthy = false;
    let succeeded = 0;
    const stripe = {
      secret: STRIPE_SECRET,
      inbox,
      logger: false as const,
      onEvent: () => {
        if (!healthy) throw new Error('payments API down');
        succeeded++;
      },
    };
    const { createStripeHandler } = await import('../../src/index.js');
    const handle = createStripeHandler(stripe);
    for (let i = 0; i < 3; i++) {
      await handle({ method: 'POST', ...signStripePayload(stripeEvent('invoice.paid'), STRIPE_SECRET) });
    }
    started(inbox.worker({ stripe, logger: false }));
    await until(async () => (await inbox.failed()).length === 3);
    const args = ['--redis', 'redis://127.0.0.1:6379', '--queue', inbox.queue.name];
    const lines: string[] = [];
    expect(await main(['inbox', 'failed', ...args], (l) => void lines.push(l))).toBe(0);
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(
      /^hg-\S+ {2}stripe invoice\.paid {2}stripe:evt_\S+ {2}1 attempts {2}\S+ {2}payments API down$/,
    );
    healthy = true;
    const id = lines[0]!.split(' ')[0]!;
    const out: string[] = [];
    expect(await main(['inbox', 'retry', id, ...args], (l) => void out.push(l))).toBe(0);
    expect(await main(['inbox', 'retry', '--all', ...args], (l) => void out.push(l))).toBe(0);
    expect(out).toEqual([`${id} queued again`, `2 failed jobs of queue ${inbox.queue.name} queued again`]);
    await until(() => succeeded === 3);
    expect(await main(['inbox', 'retry', id, ...args], (l) => void out.push(l))).toBe(1);
    const usage: string[] = [];
    expect(await main(['inbox', 'failed'], (l) => void usage.push(l))).toBe(2);
    expect(usage[0]).toMatch(/--redis/);
  });
});
