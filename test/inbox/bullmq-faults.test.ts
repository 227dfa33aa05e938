// The BullMQ inbox under the faults of issue 20: its Redis killed and restarted (private servers), handlers
// that hang or outlive their lock, a dead letter retried while it fails again, jobs no worker of a
// provider can run, two endpoints of one provider on one inbox, a Redis that would lose what it took.
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { createBullMQInbox, type BullMQInbox, type InboxWorker } from '../../src/inbox/bullmq.js';
import { createChatwootHandler, createStripeHandler } from '../../src/index.js';
import { createRedisDedupStore } from '../../src/stores/redis.js';
import {
  chatwootEvent,
  createStripeSender,
  signChatwootPayload,
  signStripePayload,
  stripeEvent,
} from '../../src/testing/index.js';
import { sleep } from '../helpers/http.js';
import { startPrivateRedis, type PrivateRedis } from '../helpers/private-engines.js';
import { serveCore } from '../helpers/servers.js';
import { redisUp, requireService } from '../helpers/services.js';

const available = await redisUp();
const SECRET = 'whsec_bullmq_faults';
const CW_SECRET = 'cw-faults';
const shared = { host: '127.0.0.1', port: 6379 };

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function inboxOn(
  connection: { host: string; port: number },
  options: Partial<Parameters<typeof createBullMQInbox>[0]> = {},
): BullMQInbox {
  const inbox = createBullMQInbox({
    connection,
    queueName: `hg-faults-${randomUUID()}`,
    backoffMs: 50,
    logger: false,
    ...options,
  });
  cleanups.push(async () => {
    await inbox.queue.obliterate({ force: true }).catch(() => undefined);
    await inbox.close().catch(() => undefined);
  });
  return inbox;
}

function started(worker: InboxWorker): InboxWorker {
  cleanups.push(() => worker.close(3000));
  return worker;
}

async function privateRedis(options: Parameters<typeof startPrivateRedis>[0] = {}): Promise<PrivateRedis> {
  const redis = await startPrivateRedis(options);
  cleanups.push(() => redis.stop());
  return redis;
}

async function until(check: () => boolean | Promise<boolean>, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await sleep(25);
  }
}

const post = (handle: ReturnType<typeof createStripeHandler>, event: object) =>
  handle({ method: 'POST', ...signStripePayload(event, SECRET) });

const counter = () => {
  const runs = new Map<string, number>();
  return {
    runs,
    add: (id: string) => void runs.set(id, (runs.get(id) ?? 0) + 1),
    doubles: () => [...runs.values()].filter((n) => n > 1).length,
  };
};

describe.runIf(requireService('Redis', available))('BullMQ inbox under faults', () => {
  describe('its Redis killed and restarted', () => {
    it.each([
      ['a Redis store given by the user', true],
      ['the default store (on the engine)', false],
    ])(
      'a handler that finished as Redis died runs once: the completion is recorded when Redis is back (%s)',
      async (_name, ownStore) => {
        const redis = await privateRedis();
        const connection = { host: '127.0.0.1', port: redis.port };
        const inbox = inboxOn(connection);
        const client = new Redis({ port: redis.port, maxRetriesPerRequest: 1 });
        client.on('error', () => undefined);
        cleanups.push(() => client.disconnect());
        const count = counter();
        let killed = false;
        const stripe = {
          secret: SECRET,
          inbox,
          logger: false as const,
          onEvent(event: { id: string }) {
            count.add(event.id);
            if (!killed) {
              killed = true;
              redis.kill(); // the work is done; Redis dies before the completion can be recorded
              setTimeout(() => void redis.restart(), 3000);
            }
          },
        };
        const handle = createStripeHandler(stripe);
        const event = stripeEvent('invoice.paid');
        expect((await post(handle, event)).status).toBe(200);
        started(
          inbox.worker({
            stripe,
            lockDurationMs: 1000,
            leaseMs: 1500,
            logger: false,
            ...(ownStore ? { store: createRedisDedupStore({ client, prefix: 'own:' }) } : {}),
          }),
        );
        await until(() => killed);
        await sleep(3000 + 4000); // Redis back, then well past the lock and the lease
        expect(count.runs.get(event.id)).toBe(1);
        await until(async () => (await inbox.queue.getCompletedCount()) === 1, 10_000);
      },
      40_000,
    );

    it('150 events while Redis is SIGKILLed and back 3 s later: 0 lost, 0 doubles, over repeated runs', async () => {
      const runsWanted = Number(process.env.RESTART_RUNS ?? 1); // RESTART_RUNS=20 for the figure
      const figures: string[] = [];
      for (let round = 1; round <= runsWanted; round++) {
        const redis = await privateRedis();
        const inbox = inboxOn({ host: '127.0.0.1', port: redis.port }, { enqueueTimeoutMs: 300 });
        const count = counter();
        const stripe = {
          secret: SECRET,
          inbox,
          logger: false as const,
          onEvent: async (event: { id: string }) => {
            await sleep(20);
            count.add(event.id);
          },
        };
        const handle = createStripeHandler(stripe);
        const running = await serveCore(handle);
        cleanups.push(() => running.close());
        started(inbox.worker({ stripe, concurrency: 4, lockDurationMs: 2000, logger: false }));
        const sender = createStripeSender({
          url: running.url('/'),
          secret: SECRET,
          attempts: 12,
          firstRetryMs: 200,
        });
        const events = Array.from({ length: 150 }, () => stripeEvent('invoice.paid'));
        const deliveries = events.map(async (event, i) => {
          await sleep(i * 20); // 50 per second over 3 s
          return sender.deliver(event);
        });
        await sleep(1200);
        redis.kill();
        await sleep(3000);
        await redis.restart();
        const results = await Promise.all(deliveries);
        expect(results.every((d) => d.delivered)).toBe(true);
        await until(() => count.runs.size === 150, 30_000);
        await sleep(3000); // past the lock: a job that would run again has done so by now
        const outage = results.flatMap((d) => d.attempts).filter((a) => (a.status ?? 503) >= 500).length;
        expect(count.doubles()).toBe(0);
        figures.push(
          `run ${round}: ${outage} answers 5xx, ${count.runs.size}/150 handled, ${count.doubles()} doubles`,
        );
      }
      console.log(`BullMQ engine restart (SIGKILL, back after 3 s): ${figures.join('; ')}`);
    }, 120_000);
  });

  describe('close()', () => {
    it('resolves within its bound while a handler hangs, and leaves the job to run again', async () => {
      const inbox = inboxOn(shared);
      const stripe = {
        secret: SECRET,
        inbox,
        logger: false as const,
        onEvent: () => new Promise(() => {}), // never settles
      };
      const handle = createStripeHandler(stripe);
      expect((await post(handle, stripeEvent('invoice.paid'))).status).toBe(200);
      let runs = 0;
      const worker = inbox.worker({
        stripe: { ...stripe, onEvent: () => ((runs += 1), new Promise(() => {})) },
        lockDurationMs: 1000,
        logger: false,
      });
      await until(() => runs === 1);
      const t0 = performance.now();
      await worker.close(2000);
      const took = performance.now() - t0;
      console.log(`BullMQ worker.close(2000) with a hung handler: resolved in ${Math.round(took)} ms`);
      expect(took).toBeLessThan(3500);
      expect(await inbox.queue.getCompletedCount()).toBe(0);
      expect(await inbox.queue.getFailedCount()).toBe(0);
    }, 20_000);
  });

  it.each(['SIGSTOP', 'SIGKILL'] as const)(
    'inbox.close(1000) with a hung handler and its Redis gone (%s): resolves within its bound',
    async (signal) => {
      const redis = await privateRedis();
      const inbox = inboxOn({ host: '127.0.0.1', port: redis.port });
      let runs = 0;
      const stripe = {
        secret: SECRET,
        inbox,
        logger: false as const,
        onEvent: () => ((runs += 1), new Promise(() => {})),
      };
      expect((await post(createStripeHandler(stripe), stripeEvent('invoice.paid'))).status).toBe(200);
      inbox.worker({ stripe, lockDurationMs: 3000, logger: false });
      await until(() => runs === 1);
      redis.kill(signal);
      const t0 = performance.now();
      await inbox.close(1000);
      const took = performance.now() - t0;
      console.log(`BullMQ inbox.close(1000), hung handler, Redis ${signal}: ${Math.round(took)} ms`);
      expect(took).toBeLessThan(3000);
    },
    20_000,
  );

  it('retryAll() retries what was failed when it was called, even while those fail again', async () => {
    const inbox = inboxOn(shared, { attempts: 1 });
    let runs = 0;
    const stripe = {
      secret: SECRET,
      inbox,
      logger: false as const,
      onEvent: () => {
        runs++;
        throw new Error('still broken');
      },
    };
    const handle = createStripeHandler(stripe);
    await Promise.all(Array.from({ length: 300 }, () => post(handle, stripeEvent('invoice.paid'))));
    started(inbox.worker({ stripe, concurrency: 8, logger: false }));
    await until(async () => (await inbox.queue.getFailedCount()) === 300, 30_000);
    const before = runs;
    const t0 = performance.now();
    const retried = await inbox.retryAll();
    const took = performance.now() - t0;
    await until(async () => (await inbox.queue.getFailedCount()) === 300, 30_000);
    await sleep(300);
    console.log(
      `BullMQ retryAll over 300 failed jobs that fail again: ${retried} retried in ${Math.round(took)} ms, ${runs - before} runs`,
    );
    expect(retried).toBe(300);
    expect(took).toBeLessThan(10_000);
    expect(runs - before).toBe(300);
  }, 60_000);

  it('a job reaches a worker without its provider: given back for the worker that has it, none failed', async () => {
    const inbox = inboxOn(shared);
    const seen = { chatwoot: 0, stripe: 0 };
    const cw = { secret: CW_SECRET, inbox, logger: false as const, onEvent: () => void seen.chatwoot++ };
    const stripe = { secret: SECRET, inbox, logger: false as const, onEvent: () => void seen.stripe++ };
    const cwHandle = createChatwootHandler(cw);
    const stripeHandle = createStripeHandler(stripe);
    for (let i = 0; i < 20; i++) {
      const message = chatwootEvent('message_created');
      expect((await cwHandle({ method: 'POST', ...signChatwootPayload(message, CW_SECRET) })).status).toBe(
        200,
      );
      expect((await post(stripeHandle, stripeEvent('invoice.paid'))).status).toBe(200);
    }
    const warnings: string[] = [];
    const logger = { info() {}, warn: (_o: object, m?: string) => void warnings.push(m ?? ''), error() {} };
    const stripeWorker = started(inbox.worker({ stripe, concurrency: 4, inFlightDelayMs: 200, logger }));
    const cwWorker = started(
      inbox.worker({ chatwoot: cw, concurrency: 4, inFlightDelayMs: 200, logger: false }),
    );
    await until(() => seen.chatwoot === 20 && seen.stripe === 20);
    expect(await inbox.queue.getFailedCount()).toBe(0);
    expect(stripeWorker.stats().failed + cwWorker.stats().failed).toBe(0);
    expect(stripeWorker.stats().deferred).toBeGreaterThan(0);
    expect(warnings.filter((w) => w.includes('without handlers'))).toHaveLength(1);
  }, 30_000);

  it('a foreign job on the queue is failed at once and listed; the other failed jobs stay visible', async () => {
    const inbox = inboxOn(shared, { attempts: 1 });
    let runs = 0;
    const stripe = {
      secret: SECRET,
      inbox,
      logger: false as const,
      onEvent: () => {
        runs++;
        throw new Error('broken');
      },
    };
    expect((await post(createStripeHandler(stripe), stripeEvent('invoice.paid'))).status).toBe(200);
    await inbox.queue.add('someone else', null);
    await inbox.queue.add('a look-alike', { provider: 'stripe', event: 'not an object' });
    started(inbox.worker({ stripe, logger: false }));
    await until(async () => (await inbox.queue.getFailedCount()) === 3);
    expect(runs).toBe(1); // the real event only
    const failed = await inbox.failed();
    expect(failed).toHaveLength(3);
    expect(failed.map((job) => job.provider).sort()).toEqual([
      '(not a hookguard job: someone else)',
      'stripe',
      'stripe',
    ]);
  }, 20_000);

  it('two Stripe endpoints on one inbox: each event runs the handlers of the endpoint that took it', async () => {
    const inbox = inboxOn(shared);
    const seen: string[] = [];
    const endpoint = (namespace: string) => ({
      secret: SECRET,
      inbox,
      namespace,
      logger: false as const,
      onEvent: (event: { id: string }) => void seen.push(`${namespace} ${event.id}`),
    });
    const a = endpoint('account-a');
    const b = endpoint('account-b');
    const event = stripeEvent('invoice.paid');
    expect((await post(createStripeHandler(a), event)).body).toContain('queued');
    expect((await post(createStripeHandler(b), event)).body).toContain('queued');
    started(inbox.worker({ stripe: [a, b], logger: false }));
    await until(() => seen.length === 2);
    expect(seen.sort()).toEqual([`account-a ${event.id}`, `account-b ${event.id}`]);
  }, 20_000);

  it('warns when two endpoints of one provider share an inbox under one namespace', () => {
    const inbox = inboxOn(shared);
    const warnings: string[] = [];
    const logger = { info() {}, warn: (_o: object, m?: string) => void warnings.push(m ?? ''), error() {} };
    createStripeHandler({ secret: SECRET, inbox, logger, onEvent() {} });
    createStripeHandler({ secret: SECRET, inbox, logger, onEvent() {} });
    createStripeHandler({ secret: SECRET, inbox, logger, namespace: 'other', onEvent() {} });
    expect(warnings.filter((w) => w.includes('share one inbox'))).toHaveLength(1);
  });

  it('the default worker store is shared: a job whose lock ran out under a slow handler runs once', async () => {
    const inbox = inboxOn(shared);
    let runs = 0;
    const stripe = {
      secret: SECRET,
      inbox,
      logger: false as const,
      onEvent: async () => {
        runs++;
        await sleep(3000); // three times the lock
      },
    };
    expect((await post(createStripeHandler(stripe), stripeEvent('invoice.paid'))).status).toBe(200);
    const options = {
      stripe,
      lockDurationMs: 1000,
      leaseMs: 10_000,
      inFlightDelayMs: 300,
      logger: false as const,
    };
    // Two worker processes as far as the claims go: each has its own default store object.
    const one = started(inbox.worker(options));
    await until(() => runs === 1);
    // The first worker's lock renewals are stopped by force, as a frozen event loop would.
    const blocked = Date.now();
    while (Date.now() - blocked < 1500) {
      // a busy event loop: no lock renewal
    }
    const two = started(inbox.worker(options));
    await until(async () => (await inbox.queue.getCompletedCount()) === 1, 15_000);
    await sleep(500);
    expect(runs).toBe(1);
    expect(one.stats().processed + two.stats().processed).toBe(1);
  }, 30_000);

  it('what a kill -9 of Redis keeps of 50 events answered 200 queued: none with its out-of-the-box settings, all with AOF', async () => {
    const kept: Record<string, number> = {};
    for (const [name, options] of [
      ['snapshots only (out of the box)', { appendonly: false, snapshots: true }],
      ['appendonly yes, appendfsync everysec', { appendonly: true, appendfsync: 'everysec' }],
    ] as const) {
      const redis = await privateRedis(options);
      const inbox = inboxOn({ host: '127.0.0.1', port: redis.port });
      const handle = createStripeHandler({ secret: SECRET, inbox, logger: false, onEvent() {} });
      for (let i = 0; i < 50; i++) expect((await post(handle, stripeEvent('invoice.paid'))).status).toBe(200);
      await sleep(1100); // everysec: the last second reaches the disk
      await redis.restart(); // SIGKILL, then the same data directory
      const client = new Redis({ port: redis.port });
      kept[name] = (await client.keys(`bull:${inbox.queue.name}:hg-*`)).length;
      client.disconnect();
    }
    console.log(`Redis kill -9 after 50 events answered 200 queued, kept: ${JSON.stringify(kept)}`);
    expect(Object.values(kept)).toEqual([0, 50]);
  }, 30_000);

  it('warns at start when Redis keeps nothing on disk (appendonly no), not when it does', async () => {
    for (const appendonly of [false, true]) {
      const redis = await privateRedis({ appendonly });
      const warnings: string[] = [];
      const logger = { info() {}, warn: (_o: object, m?: string) => void warnings.push(m ?? ''), error() {} };
      inboxOn({ host: '127.0.0.1', port: redis.port }, { logger });
      await sleep(500);
      expect(warnings.filter((w) => w.includes('appendonly')).length).toBe(appendonly ? 0 : 1);
    }
  }, 20_000);
});
