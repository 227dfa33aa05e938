// `inbox.stats()` on both engines: the jobs of the inbox's queue by state, counted by the engine, and the
// age of the job that has waited longest. Queues are built by the engines' own calls (test/helpers/inbox-states.ts).
import { randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import PgBoss from 'pg-boss';
import type { Redis } from 'ioredis';
import { redisOf } from '../../src/inbox/bullmq-connections.js';

import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from 'vitest';
import { createBullMQInbox, type InboxStats as BullMQStats } from '../../src/inbox/bullmq.js';
import { createPgBossInbox, type InboxStats as PgBossStats } from '../../src/inbox/pg-boss.js';
import { bullMQInStates, dropPgBossQueue, pgBossInStates, STATES } from '../helpers/inbox-states.js';
import { startPrivateRedis, type PrivateRedis } from '../helpers/private-engines.js';
import { DATABASE_URL, postgresUp, requireService } from '../helpers/services.js';

const AGED_MS = 125_000;

it('both subpaths export one InboxStats type, and stats() resolves to it', () => {
  expectTypeOf<BullMQStats>().toEqualTypeOf<PgBossStats>();
  expectTypeOf<ReturnType<typeof createBullMQInbox>['stats']>().returns.resolves.toEqualTypeOf<BullMQStats>();
  expectTypeOf<ReturnType<typeof createPgBossInbox>['stats']>().returns.resolves.toEqualTypeOf<PgBossStats>();
  expectTypeOf<BullMQStats['oldestWaitingMs']>().toEqualTypeOf<number | undefined>();
});

describe('BullMQ inbox.stats()', () => {
  let redis: PrivateRedis;
  beforeAll(async () => {
    redis = await startPrivateRedis();
  });
  afterAll(() => redis.stop());

  it('counts each state with BullMQ and ages the longest-waiting job', async () => {
    const connection = { host: '127.0.0.1', port: redis.port };
    const queueName = `hg-stats-${randomUUID()}`;
    await bullMQInStates(connection, queueName, AGED_MS);
    const inbox = createBullMQInbox({ connection, queueName, logger: false });
    try {
      const stats = await inbox.stats();
      expect(stats).toEqual({
        queueName,
        ...STATES,
        active: 0,
        oldestWaitingMs: expect.any(Number),
        paused: false,
      });
      expect(stats.oldestWaitingMs).toBeGreaterThanOrEqual(AGED_MS);
      expect(stats.oldestWaitingMs).toBeLessThan(AGED_MS + 5000);
      // Paused, the waiting jobs still count as waiting, and the queue says it is paused.
      await inbox.queue.pause();
      expect(await inbox.stats()).toMatchObject({ waiting: 2, delayed: 1, paused: true });
    } finally {
      await inbox.close();
    }
  }, 15_000);

  it('an empty queue: zeros, and no age', async () => {
    const inbox = createBullMQInbox({
      connection: { host: '127.0.0.1', port: redis.port },
      queueName: `hg-stats-${randomUUID()}`,
      logger: false,
    });
    try {
      expect(await inbox.stats()).toEqual({
        queueName: expect.stringMatching(/^hg-stats-/),
        waiting: 0,
        active: 0,
        delayed: 0,
        failed: 0,
        completed: 0,
        oldestWaitingMs: undefined,
        paused: false,
      });
    } finally {
      await inbox.close();
    }
  });

  it('a job retried after a failure counts from its last start plus its backoff, not from its first start', async () => {
    const connection = { host: '127.0.0.1', port: redis.port };
    const queueName = `hg-stats-${randomUUID()}`;
    const queue = new Queue(queueName, { connection });
    const exponential = await queue.add(
      'x',
      {},
      { attempts: 15, backoff: { type: 'exponential', delay: 1000 } },
    );
    const custom = await queue.add('x', {}, { attempts: 15, backoff: { type: 'mine', delay: 1000 } });
    const client = (await redisOf(queue)) as unknown as Redis;
    // Both last ran 130 s ago, their 8th failed run: exponential backoff then waits 2^7 s = 128 s.
    const lastRun = {
      atm: '8',
      processedOn: String(Date.now() - 130_000),
      timestamp: String(Date.now() - 600_000),
    };
    await client.hset(queue.toKey(exponential.id!), lastRun);
    const inbox = createBullMQInbox({ connection, queueName, logger: false });
    try {
      const afterBackoff = (await inbox.stats()).oldestWaitingMs!;
      expect(afterBackoff).toBeGreaterThanOrEqual(2000);
      expect(afterBackoff).toBeLessThan(5000);
      // A strategy of its own cannot be known: the job counts from its last start.
      await client.hset(queue.toKey(custom.id!), lastRun);
      await exponential.remove();
      const fromStart = (await inbox.stats()).oldestWaitingMs!;
      expect(fromStart).toBeGreaterThanOrEqual(130_000);
      expect(fromStart).toBeLessThan(135_000);
    } finally {
      await queue.close();
      await inbox.close();
    }
  });

  it('the age comes from the job hash without parsing its data: a damaged job does not fail the count', async () => {
    const connection = { host: '127.0.0.1', port: redis.port };
    const queueName = `hg-stats-${randomUUID()}`;
    const queue = new Queue(queueName, { connection });
    const job = await queue.add('damaged', { provider: 'stripe' });
    const client = (await redisOf(queue)) as unknown as Redis;
    await client.hset(queue.toKey(job.id!), { data: 'not json {', timestamp: String(Date.now() - 61_000) });
    await queue.close();
    const inbox = createBullMQInbox({ connection, queueName, logger: false });
    try {
      const stats = await inbox.stats();
      expect(stats).toMatchObject({ waiting: 1, failed: 0 });
      expect(stats.oldestWaitingMs).toBeGreaterThanOrEqual(61_000);
    } finally {
      await inbox.close();
    }
  });
});

const pgAvailable = await postgresUp();

describe.runIf(requireService('PostgreSQL', pgAvailable))('pg-boss inbox.stats()', () => {
  it('counts each state from its job table, ready jobs apart from delayed ones, by the time they became ready', async () => {
    const queueName = `hg_stats_${randomUUID().replaceAll('-', '_')}`;
    const boss = new PgBoss({ connectionString: DATABASE_URL, supervise: false, schedule: false });
    boss.on('error', () => undefined);
    await boss.start();
    const inbox = createPgBossInbox({ connection: DATABASE_URL, queueName, logger: false });
    try {
      await pgBossInStates(boss, queueName, AGED_MS);
      const stats = await inbox.stats();
      expect(stats).toEqual({
        queueName,
        ...STATES,
        active: 1,
        oldestWaitingMs: expect.any(Number),
        paused: false,
      });
      expect(stats.oldestWaitingMs).toBeGreaterThanOrEqual(AGED_MS - 1000);
      expect(stats.oldestWaitingMs).toBeLessThan(AGED_MS + 5000);
      // Another queue's jobs are not counted.
      const other = createPgBossInbox({
        connection: DATABASE_URL,
        queueName: `${queueName}_x`,
        logger: false,
      });
      try {
        expect(await other.stats()).toMatchObject({
          waiting: 0,
          failed: 0,
          completed: 0,
          oldestWaitingMs: undefined,
        });
      } finally {
        await other.close();
      }
    } finally {
      await inbox.close();
      await dropPgBossQueue(boss, queueName);
      await dropPgBossQueue(boss, `${queueName}_x`);
      await boss.stop({ graceful: false, wait: true });
    }
  }, 20_000);
});
