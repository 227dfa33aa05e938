// The two engines' inboxes as the ordering tests drive them (test/inbox/ordering*.test.ts, stale.test.ts):
// a fresh queue each, removed again by the cleanup the test file runs after each test.
import { randomUUID } from 'node:crypto';
import { createBullMQInbox } from '../../src/inbox/bullmq.js';
import type { DeadLetter, Inbox, InboxWorker, InboxWorkerOptions } from '../../src/inbox/inbox.js';
import { createPgBossInbox } from '../../src/inbox/pg-boss.js';
import { sleep } from './http.js';
import { DATABASE_URL, newPool } from './services.js';

const connection = { host: '127.0.0.1', port: 6379 };

export interface OrderedOptions {
  ordered: boolean;
  holdOrderOnFailure?: boolean;
  attempts?: number;
}

/** An inbox of either engine, as these tests drive it. */
export type TestInbox = Inbox &
  DeadLetter & {
    worker(options: InboxWorkerOptions & { concurrency: number; inFlightDelayMs: number }): InboxWorker;
    count(): Promise<number>;
  };

/** Both engines; each inbox made registers its removal in `cleanups`. */
export function orderedEngines(
  cleanups: (() => Promise<unknown> | unknown)[],
  available: { redis: boolean; postgres: boolean },
) {
  return [
    {
      name: 'BullMQ',
      available: available.redis,
      service: 'Redis',
      make(options: OrderedOptions): TestInbox {
        const inbox = createBullMQInbox({
          connection,
          queueName: `hg-order-${randomUUID()}`,
          backoffMs: 50,
          logger: false,
          ...options,
        });
        cleanups.push(async () => {
          await inbox.close(2000);
          const cleaner = createBullMQInbox({ connection, queueName: inbox.queue.name, logger: false });
          await cleaner.queue.obliterate({ force: true }).catch(() => undefined);
          await cleaner.close();
        });
        return Object.assign(Object.create(inbox) as typeof inbox, {
          count: () => inbox.queue.count(),
        });
      },
    },
    {
      name: 'pg-boss',
      available: available.postgres,
      service: 'PostgreSQL',
      make(options: OrderedOptions): TestInbox {
        const queueName = `hg_order_${randomUUID().replaceAll('-', '')}`;
        const inbox = createPgBossInbox({
          connection: DATABASE_URL,
          queueName,
          backoffMs: 1000,
          logger: false,
          ...options,
        });
        cleanups.push(async () => {
          await inbox.close(2000);
          const cleaner = createPgBossInbox({ connection: DATABASE_URL, queueName, logger: false });
          await cleaner.boss.start();
          // pg-boss refuses to delete a queue that still has jobs (a foreign key): the jobs go first.
          await cleaner.boss
            .getDb()
            .executeSql('DELETE FROM pgboss.job WHERE name = $1', [queueName])
            .catch(() => undefined);
          await cleaner.boss.deleteQueue(queueName).catch(() => undefined);
          for (const table of ['hookguard_lane', 'hookguard_newest']) {
            await cleaner.boss
              .getDb()
              .executeSql(`DELETE FROM pgboss.${table} WHERE queue = $1`, [queueName])
              .catch(() => undefined);
          }
          await cleaner.close();
        });
        const worker = inbox.worker.bind(inbox);
        return Object.assign(Object.create(inbox) as typeof inbox, {
          worker: (o: Parameters<typeof worker>[0]) => worker({ pollingIntervalSeconds: 0.5, ...o }),
          count: async () => {
            const pool = newPool();
            try {
              const { rows } = await pool.query('SELECT count(*)::int AS n FROM pgboss.job WHERE name = $1', [
                queueName,
              ]);
              return (rows[0] as { n: number }).n;
            } finally {
              await pool.end();
            }
          },
        });
      },
    },
  ] as const;
}

export async function until(check: () => boolean, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await sleep(20);
  }
}

export const post = (body: string, headers: Record<string, string>) => ({ method: 'POST', headers, body });
