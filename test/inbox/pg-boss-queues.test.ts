// Two pg-boss inboxes (two apps) on one database and schema share the default store's table: the same
// event sent to both must run in both, as it does on BullMQ, whose default store keys carry the queue name.
import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { createPgBossInbox } from '../../src/inbox/pg-boss.js';
import { createStripeHandler } from '../../src/index.js';
import { signStripePayload, stripeEvent } from '../../src/testing/index.js';
import { sleep } from '../helpers/http.js';
import { dropPgBossQueue } from '../helpers/inbox-states.js';
import { DATABASE_URL, postgresUp, requireService } from '../helpers/services.js';

const available = await postgresUp();
const SECRET = 'whsec_two_queues';
const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe.runIf(requireService('PostgreSQL', available))('pg-boss inboxes of two apps on one schema', () => {
  it('each runs the event both received (the default store keeps their keys apart)', async () => {
    const event = stripeEvent('invoice.paid');
    const runs: string[] = [];
    for (const app of ['billing', 'analytics']) {
      const queueName = `hg_${app}_${randomUUID().replaceAll('-', '')}`;
      const inbox = createPgBossInbox({ connection: DATABASE_URL, queueName, logger: false });
      const stripe = { secret: SECRET, inbox, logger: false as const, onEvent: () => void runs.push(app) };
      cleanups.push(async () => {
        await dropPgBossQueue(inbox.boss, queueName);
        await inbox.close(1000);
      });
      const answer = await createStripeHandler(stripe)({
        method: 'POST',
        ...signStripePayload(event, SECRET),
      });
      expect(answer.body).toBe('{"ok":true,"queued":true}');
      inbox.worker({ stripe, logger: false, pollingIntervalSeconds: 0.5 });
    }
    for (let i = 0; i < 150 && runs.length < 2; i++) await sleep(50);
    await sleep(700);
    expect(runs.sort()).toEqual(['analytics', 'billing']);
  });
});
