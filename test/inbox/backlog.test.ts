// Events answered `200 queued` while no worker takes them must not pile up unseen: after an enqueue (at
// most once per period) the web side looks at its queue and warns once the oldest waiting job is too old.
import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { createBullMQInbox } from '../../src/inbox/bullmq.js';
import { createPgBossInbox } from '../../src/inbox/pg-boss.js';
import { createStripeHandler, type Inbox, type Logger } from '../../src/index.js';
import { signStripePayload, stripeEvent } from '../../src/testing/index.js';
import { sleep } from '../helpers/http.js';
import { dropPgBossQueue } from '../helpers/inbox-states.js';
import { DATABASE_URL, postgresUp, redisUp, requireService } from '../helpers/services.js';

const [redis, postgres] = await Promise.all([redisUp(), postgresUp()]);
const SECRET = 'whsec_backlog';
const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A logger keeping the inbox's warnings. */
function warnings(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    logger: {
      info() {},
      // The shared test Redis keeps nothing on disk, which the inbox rightly warns about: not this test's.
      warn: (obj, msg) => {
        if (!msg?.startsWith('Redis has appendonly no')) lines.push(`${msg} ${JSON.stringify(obj)}`);
      },
      error() {},
    },
  };
}

type Made = { inbox: Inbox & { worker: (o: object) => { close(ms?: number): Promise<void> } } };

const engines = [
  {
    name: 'BullMQ',
    enabled: requireService('Redis', redis),
    make(logger: Logger, backlogWarnMs: number): Made {
      const inbox = createBullMQInbox({
        connection: { host: '127.0.0.1', port: 6379 },
        queueName: `hg-backlog-${randomUUID()}`,
        logger,
        backlogWarnMs,
      });
      cleanups.push(async () => {
        await inbox.queue.obliterate({ force: true }).catch(() => undefined);
        await inbox.close(1000);
      });
      return { inbox };
    },
  },
  {
    name: 'pg-boss',
    enabled: requireService('PostgreSQL', postgres),
    make(logger: Logger, backlogWarnMs: number): Made {
      const queueName = `hg_backlog_${randomUUID().replaceAll('-', '')}`;
      const inbox = createPgBossInbox({ connection: DATABASE_URL, queueName, logger, backlogWarnMs });
      cleanups.push(async () => {
        await dropPgBossQueue(inbox.boss, queueName);
        await inbox.close(1000);
      });
      return { inbox };
    },
  },
];

describe.each(engines)('$name inbox backlog', ({ enabled, make }) => {
  it.runIf(enabled)('warns once the oldest event has waited past backlogWarnMs with no worker', async () => {
    const { logger, lines } = warnings();
    const { inbox } = make(logger, 1000);
    const handle = createStripeHandler({ secret: SECRET, inbox, logger: false, onEvent() {} });
    const deliver = async () =>
      (await handle({ method: 'POST', ...signStripePayload(stripeEvent('invoice.paid'), SECRET) })).status;
    expect(await deliver()).toBe(200); // looks: nothing old yet
    await sleep(1300);
    expect(await deliver()).toBe(200); // looks again: the first has waited 1.3 s
    for (let i = 0; i < 100 && lines.length === 0; i++) await sleep(20);
    expect(await deliver()).toBe(200); // within the period: no new look
    await sleep(300);
    expect(lines).toEqual([
      expect.stringMatching(
        /^events are answered 200 queued, but the oldest has waited 1 s: is a worker running/,
      ),
    ]);
    expect(lines[0]).toContain('"waiting":2');
  });

  it.runIf(enabled)('says nothing while a worker keeps up, or with backlogWarnMs 0', async () => {
    for (const backlogWarnMs of [2000, 0]) {
      const { logger, lines } = warnings();
      const { inbox } = make(logger, backlogWarnMs);
      const stripe = { secret: SECRET, inbox, logger: false as const, onEvent() {} };
      const handle = createStripeHandler(stripe);
      const worker =
        backlogWarnMs > 0 ? inbox.worker({ stripe, logger: false, pollingIntervalSeconds: 0.5 }) : undefined;
      for (let i = 0; i < 6; i++) {
        await handle({ method: 'POST', ...signStripePayload(stripeEvent('invoice.paid'), SECRET) });
        await sleep(400);
      }
      await worker?.close(2000);
      expect(lines).toEqual([]);
    }
  });
});
