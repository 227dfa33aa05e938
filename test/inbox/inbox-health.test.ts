// Queue health (`hookguard/shutdown`): judgeInbox's verdict on counts, table-driven; inboxHealth against a
// real BullMQ inbox (the machine's Redis) and a real pg-boss inbox (its PostgreSQL) with jobs waiting and one
// dead-lettered; and against engines that are down (nobody listens, a private Redis stopped, a server that
// accepts and never answers): engine 'down' within the timeout, with a code and never the client's message.
import { randomUUID } from 'node:crypto';
import { createServer, type Socket } from 'node:net';
import PgBoss from 'pg-boss';
import { afterEach, describe, expect, expectTypeOf, it } from 'vitest';
import { createBullMQInbox } from '../../src/inbox/bullmq.js';
import type { InboxStats } from '../../src/inbox/inbox-stats.js';
import { createPgBossInbox } from '../../src/inbox/pg-boss.js';
import {
  inboxHealth,
  judgeInbox,
  type InboxHealth,
  type InboxHealthLimits,
  type InboxHealthUp,
  type InboxProblemCode,
} from '../../src/shutdown/index.js';
import { bullMQInStates, dropPgBossQueue, pgBossInStates } from '../helpers/inbox-states.js';
import { freePort, startPrivateRedis } from '../helpers/private-engines.js';
import { DATABASE_URL, postgresUp, redisUp, requireService } from '../helpers/services.js';

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Counts as `inbox.stats()` answers them: an idle, empty queue unless said otherwise. */
const stats = (counts: Partial<InboxStats> = {}): InboxStats => ({
  queueName: 'q',
  waiting: 0,
  active: 0,
  delayed: 0,
  failed: 0,
  completed: 0,
  oldestWaitingMs: undefined,
  paused: false,
  ...counts,
});

const codes = (health: InboxHealth) => health.problems.map(({ code }) => code);

it('is exported from hookguard/shutdown with its types; judgeInbox answers for an engine that answered', () => {
  expectTypeOf(judgeInbox).returns.toEqualTypeOf<InboxHealthUp>();
  expectTypeOf(inboxHealth).returns.resolves.toEqualTypeOf<InboxHealth>();
  expectTypeOf<InboxHealth['engine']>().toEqualTypeOf<'up' | 'down'>();
  expectTypeOf<InboxProblemCode>().toEqualTypeOf<
    'ENGINE_DOWN' | 'PAUSED' | 'WAITING_TOO_LONG' | 'BACKLOG' | 'DEAD_LETTERS'
  >();
});

describe('judgeInbox', () => {
  const cases: [string, Partial<InboxStats>, InboxHealthLimits | undefined, InboxProblemCode[]][] = [
    ['an empty queue is healthy', {}, undefined, []],
    [
      'jobs waiting 60 s exactly: not over the default',
      { waiting: 3, oldestWaitingMs: 60_000 },
      undefined,
      [],
    ],
    ['one waiting past 60 s', { waiting: 1, oldestWaitingMs: 60_001 }, undefined, ['WAITING_TOO_LONG']],
    [
      'past a limit of its own',
      { waiting: 1, oldestWaitingMs: 5001 },
      { maxOldestWaitingMs: 5000 },
      ['WAITING_TOO_LONG'],
    ],
    [
      'a limit of 0: any wait',
      { waiting: 1, oldestWaitingMs: 1 },
      { maxOldestWaitingMs: 0 },
      ['WAITING_TOO_LONG'],
    ],
    ['one failed job: the default allows none', { failed: 1 }, undefined, ['DEAD_LETTERS']],
    ['failed jobs within maxFailed', { failed: 3 }, { maxFailed: 3 }, []],
    ['past maxFailed', { failed: 4 }, { maxFailed: 3 }, ['DEAD_LETTERS']],
    [
      'a deep queue without maxWaiting is no problem',
      { waiting: 100_000, oldestWaitingMs: 10 },
      undefined,
      [],
    ],
    ['past maxWaiting', { waiting: 101, oldestWaitingMs: 10 }, { maxWaiting: 100 }, ['BACKLOG']],
    [
      'paused, young jobs: still paused',
      { waiting: 1, oldestWaitingMs: 10, paused: true },
      undefined,
      ['PAUSED'],
    ],
    ['paused and empty', { paused: true }, undefined, ['PAUSED']],
    [
      'paused and old: the pause is the cause',
      { waiting: 1, oldestWaitingMs: 90_000, paused: true },
      undefined,
      ['PAUSED'],
    ],
    [
      'everything at once, in a fixed order',
      { waiting: 500, active: 2, failed: 9, oldestWaitingMs: 61_000 },
      { maxWaiting: 10 },
      ['WAITING_TOO_LONG', 'BACKLOG', 'DEAD_LETTERS'],
    ],
    [
      'limits that are not numbers of 0 or more take their defaults',
      { waiting: 1, failed: 1, oldestWaitingMs: 61_000 },
      { maxOldestWaitingMs: -1, maxFailed: Number.NaN, maxWaiting: -5 },
      ['WAITING_TOO_LONG', 'DEAD_LETTERS'],
    ],
    [
      'Infinity turns a limit off',
      { waiting: 1, failed: 7, oldestWaitingMs: 1e9 },
      { maxOldestWaitingMs: Infinity, maxFailed: Infinity },
      [],
    ],
  ];
  it.each(cases)('%s', (_name, counts, limits, expected) => {
    const health = judgeInbox(stats(counts), limits);
    expect(codes(health)).toEqual(expected);
    expect(health.ok).toBe(expected.length === 0);
  });

  it('names the counts, and says in a sentence what is likely wrong and what to do', () => {
    expect(judgeInbox(stats({ queueName: 'support-bot', completed: 40, delayed: 2 }))).toEqual({
      ok: true,
      engine: 'up',
      queueName: 'support-bot',
      waiting: 0,
      active: 0,
      delayed: 2,
      failed: 0,
      oldestWaitingMs: undefined,
      paused: false,
      problems: [],
    });
    const message = (counts: Partial<InboxStats>, limits?: InboxHealthLimits) =>
      judgeInbox(stats(counts), limits).problems.map((problem) => problem.message);
    expect(message({ waiting: 2, oldestWaitingMs: 125_000 })).toEqual([
      'the oldest waiting job has waited 2 min 5 s (over 60 s) and no job is running: nothing is taking jobs — is a worker running (inbox.worker(…))?',
    ]);
    expect(
      message({ waiting: 2, active: 3, oldestWaitingMs: 3_700_000 }, { maxOldestWaitingMs: 500 }),
    ).toEqual([
      'the oldest waiting job has waited 1 h 1 min (over 0.5 s) while 3 run: the workers do not keep up, or their handlers hang — add workers or concurrency, or look at the running ones',
    ]);
    expect(message({ waiting: 1, oldestWaitingMs: 90_000, paused: true })).toEqual([
      'the oldest waiting job has waited 1 min 30 s (over 60 s): the queue is paused; its jobs run once it is resumed',
    ]);
    expect(message({ paused: true })).toEqual(['the queue is paused; its jobs run once it is resumed']);
    expect(message({ waiting: 1, oldestWaitingMs: 1 }, { maxWaiting: 0 })).toEqual([
      '1 job waiting (over 0): the workers do not keep up — add workers or concurrency',
    ]);
    expect(message({ failed: 2 })).toEqual([
      '2 jobs failed (over 0), kept until retried: see why with hookguard inbox failed, run them again with retry',
    ]);
  });
});

const redisAvailable = await redisUp();
const pgAvailable = await postgresUp();
const AGED_MS = 125_000;

describe.runIf(requireService('Redis', redisAvailable))('inboxHealth: a real BullMQ inbox', () => {
  it('answers the counts of 2 waiting jobs and 1 dead one, with their problems; within the limits, ok', async () => {
    const connection = { host: '127.0.0.1', port: 6379 };
    const queueName = `hg-health-${randomUUID()}`;
    const inbox = createBullMQInbox({ connection, queueName, logger: false });
    cleanups.push(async () => {
      await inbox.queue.obliterate({ force: true }).catch(() => undefined);
      await inbox.close(1000);
    });
    await bullMQInStates(connection, queueName, AGED_MS);
    const health = await inboxHealth(inbox);
    expect(health).toEqual({
      ok: false,
      engine: 'up',
      queueName,
      waiting: 2,
      active: 0,
      delayed: 1,
      failed: 1,
      oldestWaitingMs: expect.any(Number),
      paused: false,
      problems: [
        {
          code: 'WAITING_TOO_LONG',
          message: expect.stringMatching(/^the oldest waiting job has waited 2 min [5-9] s /),
        },
        { code: 'DEAD_LETTERS', message: expect.stringMatching(/^1 job failed \(over 0\)/) },
      ],
    });
    expect(health.engine === 'up' && health.oldestWaitingMs).toBeGreaterThanOrEqual(AGED_MS);
    expect(await inboxHealth(inbox, { maxOldestWaitingMs: 300_000, maxFailed: 1 })).toMatchObject({
      ok: true,
      engine: 'up',
      waiting: 2,
      failed: 1,
      problems: [],
    });
  });
});

describe.runIf(requireService('PostgreSQL', pgAvailable))('inboxHealth: a real pg-boss inbox', () => {
  it('answers the counts of 2 waiting jobs, 1 running and 1 dead, with their problems', async () => {
    const queueName = `hg_health_${randomUUID().replaceAll('-', '_')}`;
    const boss = new PgBoss({ connectionString: DATABASE_URL, supervise: false, schedule: false });
    boss.on('error', () => undefined);
    await boss.start();
    const inbox = createPgBossInbox({ connection: DATABASE_URL, queueName, logger: false });
    cleanups.push(async () => {
      await inbox.close();
      await dropPgBossQueue(boss, queueName);
      await boss.stop({ graceful: false, wait: true });
    });
    await pgBossInStates(boss, queueName, AGED_MS);
    expect(await inboxHealth(inbox, { maxWaiting: 1 })).toEqual({
      ok: false,
      engine: 'up',
      queueName,
      waiting: 2,
      active: 1,
      delayed: 1,
      failed: 1,
      oldestWaitingMs: expect.any(Number),
      paused: false,
      problems: [
        {
          code: 'WAITING_TOO_LONG',
          message: expect.stringMatching(/ while 1 run: the workers do not keep up/),
        },
        {
          code: 'BACKLOG',
          message: '2 jobs waiting (over 1): the workers do not keep up — add workers or concurrency',
        },
        { code: 'DEAD_LETTERS', message: expect.stringMatching(/^1 job failed \(over 0\)/) },
      ],
    });
  }, 20_000);

  it('a PostgreSQL nobody listens on: down with the code, never the message (it names the host)', async () => {
    const port = await freePort();
    const inbox = createPgBossInbox({
      connection: `postgres://postgres@127.0.0.1:${port}/test`,
      queueName: 'hookguard',
      logger: false,
    });
    cleanups.push(() => inbox.close());
    const health = await inboxHealth(inbox, { timeoutMs: 3000 });
    expect(health).toEqual({
      ok: false,
      engine: 'down',
      error: 'ECONNREFUSED',
      problems: [{ code: 'ENGINE_DOWN', message: "the engine's stats() call failed (ECONNREFUSED)" }],
    });
    expect(JSON.stringify(health)).not.toMatch(new RegExp(`127\\.0\\.0\\.1|${port}`));
  });
});

describe('inboxHealth: an engine that is down answers down within the timeout, and never throws', () => {
  /** A BullMQ inbox on the port, closed after the test. */
  const bullMQ = (port: number) => {
    const inbox = createBullMQInbox({
      connection: { host: '127.0.0.1', port },
      queueName: 'hookguard',
      logger: false,
    });
    cleanups.push(() => inbox.close(1000));
    return inbox;
  };
  /** The answer and how long it took. */
  const timed = async (inbox: Parameters<typeof inboxHealth>[0], timeoutMs: number) => {
    const started = performance.now();
    const health = await inboxHealth(inbox, { timeoutMs });
    return { health, ms: performance.now() - started };
  };

  it('a Redis port nobody listens on', async () => {
    const { health, ms } = await timed(bullMQ(await freePort()), 1000);
    expect(health).toMatchObject({ ok: false, engine: 'down', problems: [{ code: 'ENGINE_DOWN' }] });
    expect(health.engine === 'down' && health.error).toMatch(/^[A-Za-z0-9_.-]+$/);
    expect(ms).toBeLessThan(1500);
  });

  it('a private Redis that answered, then stopped', async () => {
    const redis = await startPrivateRedis();
    cleanups.push(() => redis.stop());
    const inbox = bullMQ(redis.port);
    expect(await inboxHealth(inbox)).toMatchObject({ ok: true, engine: 'up', waiting: 0 });
    await redis.stop();
    const { health, ms } = await timed(inbox, 1000);
    expect(health).toMatchObject({ ok: false, engine: 'down', problems: [{ code: 'ENGINE_DOWN' }] });
    expect(ms).toBeLessThan(1500);
  });

  it('a server that accepts and never answers: timeout, at the timeout', async () => {
    const sockets = new Set<Socket>();
    const silent = createServer((socket) => void sockets.add(socket.on('error', () => undefined)));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    cleanups.push(
      () =>
        new Promise((resolve) => {
          for (const socket of sockets) socket.destroy();
          silent.close(resolve);
        }),
    );
    const { health, ms } = await timed(bullMQ((silent.address() as { port: number }).port), 800);
    expect(health).toEqual({
      ok: false,
      engine: 'down',
      error: 'timeout',
      problems: [{ code: 'ENGINE_DOWN', message: 'the engine did not answer within 800 ms' }],
    });
    expect(ms).toBeGreaterThanOrEqual(790);
    expect(ms).toBeLessThan(1300);
  });

  it('a stats() that throws at once, or answers something that is not counts: down, with the name only', async () => {
    const throwing = {
      stats: (): Promise<InboxStats> => {
        throw new TypeError('cannot reach redis://admin:hunter2@10.0.0.7');
      },
    };
    const health = await inboxHealth(throwing);
    expect(health).toMatchObject({ engine: 'down', error: 'TypeError' });
    expect(JSON.stringify(health)).not.toContain('hunter2');
    const garbage = { stats: () => Promise.resolve(undefined as unknown as InboxStats) };
    expect(await inboxHealth(garbage)).toMatchObject({ ok: false, engine: 'down', error: 'TypeError' });
  });
});
