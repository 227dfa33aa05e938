// Queues with a known number of jobs in each state, for `inbox.stats()` and `hookguard inbox stats`: built
// with each engine's own calls (a worker completes one job and fails another), then the time the waiting
// jobs became ready is moved back, so the age of the oldest one is known without waiting for it.
import { Queue, Worker, type ConnectionOptions } from 'bullmq';
import type PgBoss from 'pg-boss';
import type { Redis } from 'ioredis';
import { redisOf } from '../../src/inbox/bullmq-connections.js';

/** What both builders leave in the queue (the pg-boss one adds one active job). */
export const STATES = { waiting: 2, delayed: 1, failed: 1, completed: 1 } as const;

/**
 * A BullMQ queue with 1 completed, 1 failed, 1 delayed and 2 waiting jobs: the older waiting one was
 * added `agedMs` ago, the other 30 s after it. No worker is left running.
 */
export async function bullMQInStates(
  connection: ConnectionOptions,
  queueName: string,
  agedMs: number,
): Promise<void> {
  const queue = new Queue(queueName, { connection });
  try {
    await queue.add('done', { provider: 'stripe', name: 'invoice.paid', key: 'stripe:evt_done' });
    await queue.add(
      'fails',
      { provider: 'stripe', name: 'invoice.paid', key: 'stripe:evt_fails' },
      { attempts: 1 },
    );
    await new Promise<void>((resolve) => {
      let settled = 0;
      const worker = new Worker(
        queueName,
        async (job) => {
          if (job.name === 'fails') throw new Error('ledger offline');
          return 'ok';
        },
        { connection },
      );
      const one = () => void (++settled === 2 && resolve(worker.close()));
      worker.on('completed', one).on('failed', one);
    });
    const older = await queue.add('waits', { provider: 'chatwoot' });
    const newer = await queue.add('waits', { provider: 'chatwoot' });
    await queue.add('later', { provider: 'chatwoot' }, { delay: 60_000 });
    const client = (await redisOf(queue)) as unknown as Redis;
    await client.hset(queue.toKey(older.id!), { timestamp: String(Date.now() - agedMs) });
    await client.hset(queue.toKey(newer.id!), { timestamp: String(Date.now() - agedMs + 30_000) });
  } finally {
    await queue.close();
  }
}

/**
 * A pg-boss queue with 1 completed, 1 failed, 1 active (fetched, never finished), 1 delayed and 2 waiting
 * jobs: the older waiting one ready since `agedMs` ago, the other since 30 s after it.
 */
export async function pgBossInStates(boss: PgBoss, queueName: string, agedMs: number): Promise<void> {
  await boss.createQueue(queueName, { name: queueName, retryLimit: 0 });
  const take = async () => {
    await boss.send(queueName, { provider: 'stripe', name: 'invoice.paid' });
    const [job] = await boss.fetch(queueName);
    return job!.id;
  };
  await boss.complete(queueName, await take());
  await boss.fail(queueName, await take(), { message: 'ledger offline' });
  await take(); // stays active
  const older = await boss.send(queueName, { provider: 'chatwoot' });
  const newer = await boss.send(queueName, { provider: 'chatwoot' });
  await boss.send(queueName, { provider: 'chatwoot' }, { startAfter: 60 });
  const age = `UPDATE pgboss.job SET start_after = now() - $3::float8 * interval '1 millisecond'
    WHERE name = $1 AND id = $2`;
  await boss.getDb().executeSql(age, [queueName, older, agedMs]);
  await boss.getDb().executeSql(age, [queueName, newer, agedMs - 30_000]);
}

/** Removes a pg-boss queue with its jobs (pg-boss 10's deleteQueue refuses a queue that still holds jobs). */
export async function dropPgBossQueue(boss: PgBoss, queueName: string): Promise<void> {
  await boss
    .getDb()
    .executeSql('DELETE FROM pgboss.job WHERE name = $1', [queueName])
    .catch(() => undefined);
  await boss.deleteQueue(queueName).catch(() => undefined);
}
