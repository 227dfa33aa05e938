// A handler slower than its job's expiry, with two workers: pg-boss hands the job out again while the first
// run still holds the key. The other worker gives it back without using an attempt, and the first run's
// success completes the job even though pg-boss expired it meanwhile.
import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createStripeHandler } from '../../src/index.js';
import { createPgBossInbox } from '../../src/inbox/pg-boss.js';
import { signStripePayload, stripeEvent } from '../../src/testing/index.js';
import { sleep } from '../helpers/http.js';
import { DATABASE_URL, newPool, postgresUp, requireService } from '../helpers/services.js';

const available = await postgresUp();
const SECRET = 'whsec_pgboss_defer';
const pool = newPool();
const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});
afterAll(() => pool.end());

describe.runIf(requireService('PostgreSQL', available))('pg-boss deferral', () => {
  it('a 15 s handler, expiry 2 s, two workers: it runs once, the job ends completed, deferrals use no attempt', async () => {
    const queueName = `hg_defer_${randomUUID().replaceAll('-', '')}`;
    const inbox = createPgBossInbox({
      // pg-boss's maintenance (which expires jobs) every second, not every 2 minutes.
      connection: { connectionString: DATABASE_URL, maintenanceIntervalSeconds: 1 },
      queueName,
      expireInSeconds: 2,
      attempts: 3,
      logger: false,
    });
    cleanups.push(async () => {
      await inbox.boss.deleteQueue(queueName).catch(() => undefined);
      await inbox.close(1000);
    });
    let runs = 0;
    const stripe = {
      secret: SECRET,
      inbox,
      logger: false as const,
      onEvent: async () => {
        runs++;
        await sleep(15_000);
      },
    };
    await createStripeHandler(stripe)({
      method: 'POST',
      ...signStripePayload(stripeEvent('invoice.paid'), SECRET),
    });
    const options = {
      stripe,
      leaseMs: 30_000,
      inFlightDelayMs: 500,
      pollingIntervalSeconds: 0.5,
      logger: false as const,
    };
    const workers = [inbox.worker(options), inbox.worker(options)];
    const job = async () =>
      (
        await pool.query<{ state: string; retry_count: number }>(
          `SELECT state, retry_count FROM pgboss.job WHERE name = $1`,
          [queueName],
        )
      ).rows[0];
    for (let i = 0; i < 250 && (await job())?.state !== 'completed'; i++) await sleep(100);
    const deferred = workers.reduce((sum, w) => sum + w.stats().deferred, 0);
    const final = await job();
    console.log(
      `pg-boss deferral: handler ran ${runs}×, job ${final?.state}, retry_count ${final?.retry_count} after ${deferred} deferrals`,
    );
    expect(final?.state).toBe('completed');
    expect(runs).toBe(1);
    expect(deferred).toBeGreaterThan(1);
    // One attempt went to the expiry of the running job (pg-boss's own count); none to the deferrals.
    expect(final?.retry_count).toBeLessThanOrEqual(1);
  }, 40_000);
});
