// A pg-boss worker's slots: each takes the next job as soon as it is free, so one slow handler does not
// hold the others back; a handler that outlives its job's expiry gives its slot up.
import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createStripeHandler } from '../../src/index.js';
import { createPgBossInbox, type PgBossInboxOptions } from '../../src/inbox/pg-boss.js';
import { signStripePayload, stripeEvent } from '../../src/testing/index.js';
import { sleep } from '../helpers/http.js';
import { DATABASE_URL, postgresUp, requireService } from '../helpers/services.js';

const available = await postgresUp();
const SECRET = 'whsec_pgboss_slots';
const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function inboxFor(options: Partial<PgBossInboxOptions> = {}) {
  const queueName = `hg_slots_${randomUUID().replaceAll('-', '')}`;
  const inbox = createPgBossInbox({ connection: DATABASE_URL, queueName, logger: false, ...options });
  cleanups.push(async () => {
    await inbox.boss.deleteQueue(queueName).catch(() => undefined);
    await inbox.close(1000);
  });
  return inbox;
}

describe.runIf(requireService('PostgreSQL', available))('pg-boss worker slots', () => {
  it('concurrency 4 with a 20 s handler: the other slots run the quick jobs meanwhile', async () => {
    const inbox = inboxFor();
    const done = new Set<string>();
    const slow = stripeEvent('invoice.paid');
    const stripe = {
      secret: SECRET,
      inbox,
      logger: false as const,
      onEvent: async (event: { id: string }) => {
        if (event.id === slow.id) await sleep(20_000);
        else done.add(event.id);
      },
    };
    const handle = createStripeHandler(stripe);
    const quick = Array.from({ length: 20 }, () => stripeEvent('invoice.paid'));
    for (const event of [slow, ...quick]) {
      expect((await handle({ method: 'POST', ...signStripePayload(event, SECRET) })).status).toBe(200);
    }
    const worker = inbox.worker({ stripe, concurrency: 4, pollingIntervalSeconds: 0.5, logger: false });
    cleanups.push(() => worker.close(500));
    const t0 = performance.now();
    while (done.size < 20 && performance.now() - t0 < 5000) await sleep(50);
    const ms = Math.round(performance.now() - t0);
    console.log(
      `pg-boss slots: ${done.size} of 20 quick jobs done within 5 s (in ${ms} ms) beside a 20 s handler`,
    );
    expect(done.size).toBeGreaterThanOrEqual(19);
  }, 30_000);

  it('a handler that never settles frees its slot once it outlives its job’s expiry, with an error logged', async () => {
    const inbox = inboxFor({ expireInSeconds: 1 });
    const ran: string[] = [];
    const hung = stripeEvent('invoice.paid');
    const error = vi.fn();
    const stripe = {
      secret: SECRET,
      inbox,
      logger: false as const,
      onEvent: (event: { id: string }) => {
        ran.push(event.id);
        return event.id === hung.id ? new Promise<void>(() => {}) : undefined;
      },
    };
    const handle = createStripeHandler(stripe);
    const next = stripeEvent('invoice.paid');
    for (const event of [hung, next]) await handle({ method: 'POST', ...signStripePayload(event, SECRET) });
    const logger = { debug() {}, info() {}, warn() {}, error };
    const worker = inbox.worker({ stripe, concurrency: 1, pollingIntervalSeconds: 0.5, logger });
    cleanups.push(() => worker.close(500));
    for (let i = 0; i < 100 && !ran.includes(next.id); i++) await sleep(50);
    expect(ran).toEqual([hung.id, next.id]);
    expect(error).toHaveBeenCalledWith(
      expect.objectContaining({ expireInSeconds: 1 }),
      expect.stringContaining('outlived its job’s expiry'),
    );
  }, 30_000);
});
