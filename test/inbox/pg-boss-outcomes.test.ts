// What the pg-boss inbox records in PostgreSQL, with pg-boss running on a pool we can interfere with (its
// `db` option): a job's completion retried until it sticks, foreign jobs on the queue, the dead letter's
// retryAll, the durability warning, and the bound on writes waiting for PostgreSQL.
import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { createStripeHandler } from '../../src/index.js';
import { createPgBossInbox, type PgBossInboxOptions } from '../../src/inbox/pg-boss.js';
import { signStripePayload, stripeEvent } from '../../src/testing/index.js';
import { sleep } from '../helpers/http.js';
import { newPool, postgresUp, requireService } from '../helpers/services.js';

const available = await postgresUp();
const SECRET = 'whsec_pgboss_outcomes';
const pool = newPool();
const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});
afterAll(() => pool.end());

/** A statement pg-boss (or the inbox) runs: `before` may delay or refuse it. */
type Hook = (text: string) => void | Promise<void>;

/** An inbox whose pg-boss runs every statement through `hook` first. */
function inboxFor(hook: Hook = () => {}, options: Partial<PgBossInboxOptions> = {}) {
  const queueName = `hg_out_${randomUUID().replaceAll('-', '')}`;
  const db = {
    executeSql: async (text: string, values: unknown[]) => {
      await hook(text);
      return pool.query(text, values);
    },
  };
  const inbox = createPgBossInbox({ connection: { db }, queueName, logger: false, ...options });
  cleanups.push(async () => {
    await inbox.boss.deleteQueue(queueName).catch(() => undefined);
    await inbox.close(1000);
  });
  return inbox;
}

const jobsOf = async (queueName: string) =>
  (
    await pool.query<{ id: string; state: string; retry_count: number }>(
      `SELECT id, state, retry_count FROM pgboss.job WHERE name = $1 ORDER BY created_on`,
      [queueName],
    )
  ).rows;

async function until(check: () => boolean | Promise<boolean>, ms = 15_000): Promise<void> {
  for (const end = Date.now() + ms; !(await check()); await sleep(50)) {
    if (Date.now() > end) throw new Error('timed out waiting');
  }
}

const send = (inbox: ReturnType<typeof inboxFor>, event = stripeEvent('invoice.paid')) =>
  createStripeHandler({ secret: SECRET, inbox, logger: false, onEvent() {} })({
    method: 'POST',
    ...signStripePayload(event, SECRET),
  });

describe.runIf(requireService('PostgreSQL', available))('pg-boss inbox outcomes', () => {
  it('a job’s completion refused 3 times (PostgreSQL restarting after the store took it) is retried until it sticks', async () => {
    let refusals = 0;
    const inbox = inboxFor((text) => {
      // The job's completion (pg-boss's complete() or the inbox's own): the server is away.
      if (text.includes('completed_on = now()') && text.includes("'completed'") && refusals < 3) {
        refusals++;
        throw new Error('Connection terminated unexpectedly');
      }
    });
    let runs = 0;
    const stripe = { secret: SECRET, inbox, logger: false as const, onEvent: () => void runs++ };
    await send(inbox);
    const worker = inbox.worker({ stripe, pollingIntervalSeconds: 0.5, logger: false });
    cleanups.push(() => worker.close(1000));
    await until(async () => (await jobsOf(inbox.queueName))[0]?.state === 'completed');
    await sleep(500);
    expect(refusals).toBe(3);
    expect(runs).toBe(1);
    // Completed by this run: not failed, retried and completed by a second delivery.
    expect(await jobsOf(inbox.queueName)).toEqual([
      expect.objectContaining({ state: 'completed', retry_count: 0 }),
    ]);
  });

  it('a job that hookguard did not write is failed at once, and failed() lists it without throwing', async () => {
    const inbox = inboxFor();
    expect(await inbox.failed()).toEqual([]); // starts pg-boss and the queue
    await inbox.boss.send(inbox.queueName, { hello: 'world' });
    const stripe = { secret: SECRET, inbox, logger: false as const, onEvent() {} };
    const worker = inbox.worker({ stripe, pollingIntervalSeconds: 0.5, logger: false });
    cleanups.push(() => worker.close(1000));
    await until(async () => (await jobsOf(inbox.queueName))[0]?.state === 'failed', 5000);
    // One written with no data at all, as another producer might.
    await inbox.boss.insert([{ name: inbox.queueName }]);
    await pool.query(
      `UPDATE pgboss.job SET state = 'failed', completed_on = now() WHERE name = $1 AND state = 'created'`,
      [inbox.queueName],
    );
    const failed = await inbox.failed();
    expect(failed).toHaveLength(2);
    expect(failed).toContainEqual(
      expect.objectContaining({
        provider: '(not a hookguard job)',
        attempts: 1,
        error: 'not a hookguard job',
      }),
    );
    expect(failed.every((f) => f.provider === '(not a hookguard job)' && f.key === undefined)).toBe(true);
  });

  it('retryAll() retries the jobs that were failed when it was called, and they run', async () => {
    const inbox = inboxFor(() => {}, { attempts: 1 });
    let healthy = false;
    let processed = 0;
    const stripe = {
      secret: SECRET,
      inbox,
      logger: false as const,
      onEvent: () => {
        if (!healthy) throw new Error('ledger offline');
        processed++;
      },
    };
    await send(inbox);
    await send(inbox);
    const worker = inbox.worker({ stripe, pollingIntervalSeconds: 0.5, logger: false });
    cleanups.push(() => worker.close(1000));
    await until(async () => (await inbox.failed()).length === 2);
    expect((await inbox.failed()).map((f) => f.attempts)).toEqual([1, 1]);
    healthy = true;
    expect(await inbox.retryAll()).toBe(2);
    expect(await inbox.retryAll()).toBe(0); // nothing is failed any more
    await until(() => processed === 2);
    expect(await inbox.failed()).toEqual([]);
  });

  it.each(['fsync', 'synchronous_commit'])(
    'warns once per inbox when PostgreSQL has %s off',
    async (setting) => {
      const warn = vi.fn();
      const inbox = createPgBossInbox({
        connection: {
          db: {
            executeSql: (text: string, values: unknown[]) =>
              text.includes("current_setting('fsync')")
                ? Promise.resolve({ rows: [{ fsync: 'on', synchronous_commit: 'on', [setting]: 'off' }] })
                : pool.query(text, values),
          },
        },
        queueName: `hg_out_${randomUUID().replaceAll('-', '')}`,
        logger: { debug() {}, info() {}, warn, error() {} },
      });
      cleanups.push(async () => {
        await inbox.boss.deleteQueue(inbox.queueName).catch(() => undefined);
        await inbox.close(1000);
      });
      await send(inbox);
      await send(inbox);
      await inbox.failed();
      await until(() => warn.mock.calls.length > 0, 2000);
      await sleep(200);
      expect(warn).toHaveBeenCalledTimes(1);
      expect(warn).toHaveBeenCalledWith(
        expect.objectContaining({ settings: `${setting}=off` }),
        expect.stringContaining('PostgreSQL may lose commits'),
      );
    },
  );

  it('bounds the writes waiting on PostgreSQL: past maxPendingWrites or maxPendingBytes, refused at once', async () => {
    let slow = false;
    const inbox = inboxFor(
      async (text) => {
        if (slow && /INSERT INTO pgboss\.job \(/.test(text)) await sleep(400);
      },
      { maxPendingWrites: 2, maxPendingBytes: 1000 },
    );
    expect(await inbox.failed()).toEqual([]);
    slow = true;
    const job = (n: number) => ({
      provider: 'stripe' as const,
      event: { n },
      key: `k${n}:${randomUUID()}`,
      deliveryId: undefined,
      name: 'x',
    });
    const first = inbox.enqueue(job(1), 600);
    const t0 = performance.now();
    // 600 + 500 bytes would pass 1000: refused while the first waits.
    await expect(inbox.enqueue(job(2), 500)).rejects.toMatchObject({ code: 'INBOX_UNAVAILABLE' });
    const second = inbox.enqueue(job(3), 100);
    await expect(inbox.enqueue(job(4), 1)).rejects.toMatchObject({ code: 'INBOX_UNAVAILABLE' }); // 2 pending
    expect(performance.now() - t0).toBeLessThan(100);
    expect(await Promise.all([first, second])).toEqual(['queued', 'queued']);
    expect(await inbox.enqueue(job(5), 999)).toBe('queued'); // nothing waits any more
  });
});
