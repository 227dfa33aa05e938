// The inbox across process deaths: a web process killed right after its 200, and a worker killed in the
// middle of a handler. Every success is counted in Redis, outside the processes that die.
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { createBullMQInbox } from '../../src/inbox/bullmq.js';
import { signStripePayload, stripeEvent } from '../../src/testing/index.js';
import { INBOX_SECRET, startWorkers, stopWorkers, type Worker } from '../helpers/cluster.js';
import { send, sleep } from '../helpers/http.js';

import { newIoRedis, redisUp, requireService } from '../helpers/services.js';

const available = await redisUp();
const SCRIPT = fileURLToPath(new URL('../helpers/inbox-process.ts', import.meta.url));
const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function setup() {
  const run = randomUUID();
  const queueName = `hg-crash-${run}`;
  const redis = newIoRedis();
  const inbox = createBullMQInbox({
    connection: { host: '127.0.0.1', port: 6379 },
    queueName,
    logger: false,
  });
  cleanups.push(async () => {
    await inbox.queue.obliterate({ force: true }).catch(() => undefined);
    await inbox.close();
    await redis.del(`hg-done:${run}`, `hg-attempt:${run}`);
    redis.disconnect();
  });
  const env = { RUN: run, QUEUE: queueName };
  const done = async () => Object.values(await redis.hgetall(`hg-done:${run}`)).map(Number);
  const attempts = () => redis.hgetall(`hg-attempt:${run}`);
  return { run, inbox, env, done, attempts };
}

async function until(check: () => Promise<boolean>, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await sleep(50);
  }
}

describe.runIf(requireService('Redis', available))('inbox across process deaths', () => {
  it('kill -9 of the web process right after its 200: the event is processed once', async () => {
    const { env, done } = setup();
    const [web] = await startWorkers(1, { ...env, ROLE: 'web', KILL_AFTER_ANSWER: '1' }, SCRIPT);
    const signed = signStripePayload(stripeEvent('invoice.paid'), INBOX_SECRET);
    const answer = await send(`http://127.0.0.1:${web!.port}/stripe`, signed);
    expect(answer).toMatchObject({ status: 200, body: { ok: true, queued: true } });
    expect(await web!.exited).toBe(null); // killed by its signal
    const workers: Worker[] = await startWorkers(1, { ...env, ROLE: 'worker' }, SCRIPT);
    cleanups.push(() => stopWorkers(workers));
    await until(async () => (await done()).length === 1);
    await sleep(500);
    expect(await done()).toEqual([1]);
  }, 60_000);

  it('a worker killed mid-handler: the job runs again after its lock expires, completes once, as attempt 2', async () => {
    const { env, done, inbox, attempts } = setup();
    const { createStripeHandler } = await import('../../src/index.js');
    const handle = createStripeHandler({ secret: INBOX_SECRET, inbox, logger: false, onEvent() {} });
    const events = Array.from({ length: 5 }, () => stripeEvent('invoice.paid'));
    for (const event of events) {
      const answer = await handle({ method: 'POST', ...signStripePayload(event, INBOX_SECRET) });
      expect(answer.status).toBe(200);
    }
    const [crashing] = await startWorkers(1, { ...env, ROLE: 'worker', CRASH_ON_FIRST: '1' }, SCRIPT);
    expect(await crashing!.exited).toBe(null); // it died in the middle of its first event
    const workers = await startWorkers(2, { ...env, ROLE: 'worker' }, SCRIPT);
    cleanups.push(() => stopWorkers(workers));
    await until(async () => (await done()).length === 5);
    await sleep(1500);
    expect(await done()).toEqual([1, 1, 1, 1, 1]);
    // The run the dead worker started counts: the event it died in reports attempt 2, the others 1.
    const redis = newIoRedis();
    cleanups.push(() => redis.disconnect());
    const [crashKey, ...more] = await redis.keys(`hg-crash:${env.RUN}:*`);
    expect(more).toEqual([]);
    const crashedId = crashKey!.slice(`hg-crash:${env.RUN}:`.length);
    expect(await attempts()).toEqual(
      Object.fromEntries(events.map((e) => [e.id, e.id === crashedId ? '2' : '1'])),
    );
    await redis.del(crashKey!);
  }, 60_000);
});

describe.runIf(requireService('Redis', available))('inbox under load across processes', () => {
  it('4 web processes × 2 workers, 2,000 deliveries of 500 events: each handler succeeds exactly once', async () => {
    const { run, env, done, inbox } = setup();
    const redis = newIoRedis();
    cleanups.push(async () => {
      await redis.del(`hg-forever:${run}`, `hg-healthy:${run}`);
      redis.disconnect();
    });
    const events = Array.from({ length: 500 }, () => stripeEvent('invoice.paid'));
    const hopeless = events.slice(0, 5).map((e) => e.id);
    await redis.sadd(`hg-forever:${run}`, ...hopeless);
    const procEnv = { ...env, ATTEMPTS: '3', FAIL_FIRST: '1', CONCURRENCY: '8' };
    const webs = await startWorkers(4, { ...procEnv, ROLE: 'web' }, SCRIPT);
    const workers = await startWorkers(2, { ...procEnv, ROLE: 'worker' }, SCRIPT);
    cleanups.push(() => stopWorkers([...webs, ...workers]));
    // Every event four times, to random web processes, shuffled and 64 at a time: duplicates and copies
    // arriving concurrently at different processes.
    const deliveries = events
      .flatMap((event) => [event, event, event, event])
      .sort(() => Math.random() - 0.5);
    const answers = new Map<number, number>();
    let next = 0;
    await Promise.all(
      Array.from({ length: 64 }, async () => {
        for (let i = next++; i < deliveries.length; i = next++) {
          const web = webs[i % webs.length]!;
          const signed = signStripePayload(deliveries[i]!, INBOX_SECRET);
          const { status } = await send(`http://127.0.0.1:${web.port}/stripe`, signed);
          answers.set(status, (answers.get(status) ?? 0) + 1);
        }
      }),
    );
    expect([...answers.keys()]).toEqual([200]);
    await until(async () => {
      const [failed, finished] = [await inbox.failed(), await done()];
      return failed.length === 5 && finished.length === 495;
    }, 60_000);
    expect((await inbox.failed()).map((f) => f.error)).toEqual(Array(5).fill('dependency down'));
    await redis.set(`hg-healthy:${run}`, '1');
    expect(await inbox.retryAll()).toBe(5);
    await until(async () => {
      const finished = await done();
      return finished.length === 500;
    }, 30_000);
    await sleep(1000);
    const counts = await done();
    expect(counts).toHaveLength(500);
    expect(counts.every((n) => n === 1)).toBe(true);
    console.log(
      `inbox load: 2000 deliveries over 4 web processes, answers ${JSON.stringify(Object.fromEntries(answers))}, 500 events each succeeded once (5 after a retry from the dead letter)`,
    );
  }, 120_000);
});
