// pg-boss: a worker killed in the middle of a handler. The job expires (expireInSeconds), pg-boss hands it
// out again, and it completes exactly once. Successes are recorded in PostgreSQL, outside the process.
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { createStripeHandler } from '../../src/index.js';
import { createPgBossInbox } from '../../src/inbox/pg-boss.js';
import { postgresDedupSchema } from '../../src/stores/postgres.js';
import { signStripePayload, stripeEvent } from '../../src/testing/index.js';
import { INBOX_SECRET, startWorkers, stopWorkers } from '../helpers/cluster.js';
import { sleep } from '../helpers/http.js';
import { DATABASE_URL, newPool, postgresUp, requireService } from '../helpers/services.js';

const available = await postgresUp();
const SCRIPT = fileURLToPath(new URL('../helpers/pgboss-worker.ts', import.meta.url));
const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe.runIf(requireService('PostgreSQL', available))('pg-boss inbox across a worker death', () => {
  it('a worker killed mid-handler: the job is handed out again once it expires, completes once, as attempt 2', async () => {
    const run = randomUUID().replaceAll('-', '').slice(0, 16);
    const queueName = `hg_crash_${run}`;
    const pool = newPool();
    await pool.query(`CREATE TABLE hg_crash_marks_${run} (id text PRIMARY KEY)`);
    await pool.query(`CREATE TABLE hg_crash_done_${run} (id text, attempt int)`);
    await pool.query(postgresDedupSchema(`hg_crash_dedup_${run}`));
    const inbox = createPgBossInbox({ connection: DATABASE_URL, queueName, expireInSeconds: 2 });
    cleanups.push(async () => {
      await inbox.close();
      for (const table of ['marks', 'done', 'dedup'])
        await pool.query(`DROP TABLE IF EXISTS hg_crash_${table}_${run}`);
      await pool.end();
    });
    const handle = createStripeHandler({ secret: INBOX_SECRET, inbox, logger: false, onEvent() {} });
    const events = Array.from({ length: 3 }, () => stripeEvent('invoice.paid'));
    for (const event of events) {
      expect((await handle({ method: 'POST', ...signStripePayload(event, INBOX_SECRET) })).status).toBe(200);
    }
    const env = { RUN: run, QUEUE: queueName };
    const [crashing] = await startWorkers(1, { ...env, CRASH_ON_FIRST: '1' }, SCRIPT);
    expect(await crashing!.exited).toBe(null); // died in the middle of its first event
    const workers = await startWorkers(1, env, SCRIPT);
    cleanups.push(() => stopWorkers(workers));
    const done = async () =>
      (
        await pool.query<{ id: string; n: string }>(
          `SELECT id, count(*) AS n FROM hg_crash_done_${run} GROUP BY id`,
        )
      ).rows;
    for (let i = 0; i < 400 && (await done()).length < 3; i++) await sleep(100);
    await sleep(1500);
    const rows = await done();
    expect(rows).toHaveLength(3);
    expect(rows.every((r) => r.n === '1')).toBe(true);
    // The run the dead worker started counts: the event it died in reports attempt 2, the others 1.
    const marks = await pool.query<{ id: string }>(`SELECT id FROM hg_crash_marks_${run}`);
    expect(marks.rows).toHaveLength(1);
    const attempts = await pool.query<{ id: string; attempt: number }>(
      `SELECT id, attempt FROM hg_crash_done_${run}`,
    );
    expect(Object.fromEntries(attempts.rows.map((r) => [r.id, r.attempt]))).toEqual(
      Object.fromEntries(events.map((e) => [e.id, e.id === marks.rows[0]!.id ? 2 : 1])),
    );
  }, 90_000);
});
