// The durable inbox on real pg-boss (10, and 12 under vitest.pg-boss12.config.ts) and PostgreSQL: the same
// contract as the BullMQ inbox.
import { randomUUID } from 'node:crypto';
import * as pgBossModule from 'pg-boss';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createChatwootHandler, createStripeHandler, type InboxContext } from '../../src/index.js';
import { createPgBossInbox, type PgBossInbox, type PgBossInboxOptions } from '../../src/inbox/pg-boss.js';
import {
  chatwootEvent,
  signChatwootPayload,
  signStripePayload,
  stripeEvent,
} from '../../src/testing/index.js';
import { send, sleep } from '../helpers/http.js';
import { FRAMEWORKS, type Running } from '../helpers/servers.js';
import { DATABASE_URL, postgresUp, requireService } from '../helpers/services.js';

const available = await postgresUp();
// pg-boss 12 is ESM with a named `PgBoss` export; pg-boss 10 is CommonJS (a default export only).
const MAJOR = 'PgBoss' in pgBossModule ? 12 : 10;
const CW_SECRET = 'cw-pgboss-secret';
const STRIPE_SECRET = 'whsec_pgboss_secret';

const inboxes: PgBossInbox[] = [];
const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});
afterAll(async () => {
  for (const inbox of inboxes) await inbox.close().catch(() => undefined);
});

function inboxFor(options: Omit<Partial<PgBossInboxOptions>, 'connection'> = {}): PgBossInbox {
  const queueName = `hg_test_${randomUUID().replaceAll('-', '')}`;
  const inbox = createPgBossInbox({ connection: DATABASE_URL, queueName, backoffMs: 1000, ...options });
  inboxes.push(inbox);
  cleanups.push(() => inbox.boss.deleteQueue(queueName).catch(() => undefined));
  return inbox;
}

/** The queue's jobs, whatever their state (read from the table: pg-boss 12 has no getQueueSize). */
async function jobCount(inbox: PgBossInbox): Promise<number> {
  const { rows } = await inbox.boss
    .getDb()
    .executeSql(`SELECT count(*)::int AS n FROM pgboss.job WHERE name = $1`, [inbox.queueName]);
  return (rows[0] as { n: number }).n;
}

async function until(check: () => boolean | Promise<boolean>, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await sleep(50);
  }
}

describe.runIf(requireService('PostgreSQL', available))('pg-boss inbox', () => {
  it('runs on the pg-boss major its test config names (10 by default, 12 under vitest.pg-boss12.config.ts)', () => {
    expect(MAJOR).toBe(Number(process.env.HOOKGUARD_PG_BOSS_MAJOR ?? 10));
  });

  it.each(FRAMEWORKS.filter((f) => f.name === 'express 5' || f.name === 'fetch'))(
    '$name: 200 queued once the row is committed, duplicate for copies, forgeries never enqueued',
    async (framework) => {
      const inbox = inboxFor();
      const cw = { secret: CW_SECRET, inbox, logger: false as const, onEvent: () => {} };
      const running: Running = await framework.start([{ path: '/cw', provider: 'chatwoot', options: cw }]);
      cleanups.push(() => running.close());
      const message = chatwootEvent('message_created');
      expect(await send(running.url('/cw'), signChatwootPayload(message, CW_SECRET))).toMatchObject({
        status: 200,
        body: { ok: true, queued: true },
      });
      expect(await send(running.url('/cw'), signChatwootPayload(message, CW_SECRET))).toMatchObject({
        status: 200,
        body: { ok: true, duplicate: true },
      });
      const forged = signChatwootPayload(chatwootEvent('message_created'), 'wrong-secret');
      expect((await send(running.url('/cw'), forged)).status).toBe(401);
      expect(await jobCount(inbox)).toBe(1);
    },
  );

  it('retries a failure with the attempt number, keeps a hopeless event as failed, and re-runs it once', async () => {
    const inbox = inboxFor({ attempts: 2 });
    const runs: string[] = [];
    let healthy = false;
    const stripe = {
      secret: STRIPE_SECRET,
      inbox,
      logger: false as const,
      onEvent: (event: { id: string }, ctx: object) => {
        const { attempt } = ctx as InboxContext;
        runs.push(`${event.id.slice(-4)}:${attempt}`);
        if (!healthy) throw new Error('ledger offline');
      },
    };
    const handle = createStripeHandler(stripe);
    const event = stripeEvent('invoice.paid');
    await handle({ method: 'POST', ...signStripePayload(event, STRIPE_SECRET) });
    const worker = inbox.worker({ stripe, logger: false, pollingIntervalSeconds: 0.5 });
    cleanups.push(() => worker.close(5000));
    await until(async () => (await inbox.failed()).length === 1, 30_000);
    const [failed] = await inbox.failed();
    expect(failed).toMatchObject({
      provider: 'stripe',
      event: 'invoice.paid',
      attempts: 2,
      error: 'ledger offline',
    });
    expect(runs).toEqual([`${event.id.slice(-4)}:1`, `${event.id.slice(-4)}:2`]);
    // The CLI sees the same dead letter.
    const { main } = await import('../../src/cli.js');
    const lines: string[] = [];
    const cli = ['--postgres', DATABASE_URL, '--queue', inbox.queueName];
    expect(await main(['inbox', 'failed', ...cli], (l) => void lines.push(l))).toBe(0);
    expect(lines).toEqual([
      expect.stringMatching(
        new RegExp(`^${failed!.id} {2}stripe invoice\\.paid {2}\\S+ {2}2 attempts .*ledger offline$`),
      ),
    ]);
    healthy = true;
    expect(await inbox.retry(failed!.id)).toBe(true);
    await until(() => worker.stats().processed === 1, 30_000);
    await sleep(800);
    expect(worker.stats()).toMatchObject({ processed: 1, failed: 2 });
    expect(await inbox.failed()).toEqual([]);
  }, 60_000);

  it('answers INBOX_UNAVAILABLE within the bound when PostgreSQL is unreachable: Stripe 503, Chatwoot 500', async () => {
    const inbox = createPgBossInbox({
      connection: {
        connectionString: 'postgres://postgres@127.0.0.1:1/test',
        connectionTimeoutMillis: 200,
      } as never,
      queueName: 'hg_down',
      enqueueTimeoutMs: 500,
    });
    const stripe = createStripeHandler({ secret: STRIPE_SECRET, inbox, logger: false, onEvent() {} });
    const cw = createChatwootHandler({ secret: CW_SECRET, inbox, logger: false, onEvent() {} });
    const t0 = performance.now();
    const s = await stripe({
      method: 'POST',
      ...signStripePayload(stripeEvent('invoice.paid'), STRIPE_SECRET),
    });
    const c = await cw({
      method: 'POST',
      ...signChatwootPayload(chatwootEvent('message_created'), CW_SECRET),
    });
    expect(performance.now() - t0).toBeLessThan(3000);
    expect(s).toMatchObject({ status: 503, body: '{"error":{"code":"INBOX_UNAVAILABLE"}}' });
    expect(c).toMatchObject({ status: 500, body: '{"error":{"code":"INBOX_UNAVAILABLE"}}' });
  });
  // pg-boss 10 archives finished jobs (pg-boss-retention.test.ts); from pg-boss 11 on each job carries its
  // own deletion delay, counted from completed_on whatever the final state.
  it.runIf(MAJOR >= 11)(
    'pg-boss 12 deletes per job: a completed job is kept keepCompletedMs, a failed one keepFailedMs',
    async () => {
      const inbox = inboxFor({ attempts: 1, keepCompletedMs: 3_600_000, keepFailedMs: 7_200_000 });
      const failing = stripeEvent('invoice.paid');
      const stripe = {
        secret: STRIPE_SECRET,
        inbox,
        logger: false as const,
        onEvent: (event: { id: string }) => {
          if (event.id === failing.id) throw new Error('ledger offline');
        },
      };
      const handle = createStripeHandler(stripe);
      for (const event of [failing, stripeEvent('invoice.paid')]) {
        await handle({ method: 'POST', ...signStripePayload(event, STRIPE_SECRET) });
      }
      const worker = inbox.worker({ stripe, logger: false, pollingIntervalSeconds: 0.5 });
      cleanups.push(() => worker.close(5000));
      const finished = async () =>
        (
          await inbox.boss
            .getDb()
            .executeSql(
              `SELECT state, deletion_seconds FROM pgboss.job WHERE name = $1 AND state IN ('completed', 'failed') ORDER BY state`,
              [inbox.queueName],
            )
        ).rows;
      await until(async () => (await finished()).length === 2);
      expect(await finished()).toEqual([
        { state: 'completed', deletion_seconds: 3600 },
        { state: 'failed', deletion_seconds: 7200 },
      ]);
    },
  );
});
