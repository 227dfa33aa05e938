// pg-boss archives finished jobs (and its archive forgets them): the inbox keeps completed jobs as long as
// keys are remembered (a copy is answered duplicate) and failed ones as long as an operator may act. Ages
// are faked in the job table, then pg-boss's own archive step runs with the inbox's configuration.
import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { createStripeHandler } from '../../src/index.js';
import { createPgBossInbox, type PgBossInbox } from '../../src/inbox/pg-boss.js';
import { signStripePayload, stripeEvent } from '../../src/testing/index.js';
import { DATABASE_URL, newPool, postgresUp, requireService } from '../helpers/services.js';

const available = await postgresUp();
const SECRET = 'whsec_pgboss_retention';
const HOUR = 60 * 60;
const DAY = 24 * HOUR;
// Its own schema: the archive step runs for every queue of a schema, and this file moves clocks back.
const schema = `hg_ret_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
const pool = newPool();
const inboxes: PgBossInbox[] = [];
afterAll(async () => {
  for (const inbox of inboxes) await inbox.close(1000).catch(() => undefined);
  await pool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => undefined);
  await pool.end();
});

function inboxWith(connection: object = {}, options: object = {}): PgBossInbox {
  const inbox = createPgBossInbox({
    connection: { connectionString: DATABASE_URL, schema, ...connection },
    queueName: `q_${randomUUID().replaceAll('-', '').slice(0, 12)}`,
    logger: false,
    ...options,
  });
  inboxes.push(inbox);
  return inbox;
}

/** Runs pg-boss's archive step, as its maintenance does, with the instance's own configuration. */
const archive = (inbox: PgBossInbox) => (inbox.boss as unknown as { archive(): Promise<void> }).archive();

const stateOf = async (inbox: PgBossInbox, id: string) =>
  (
    await pool.query<{ state: string }>(`SELECT state FROM ${schema}.job WHERE name = $1 AND id = $2`, [
      inbox.queueName,
      id,
    ])
  ).rows[0]?.state;

/** Sends an event through the web side, and marks its job as finished `ageSeconds` ago in `state`. */
async function finishedJob(inbox: PgBossInbox, state: 'completed' | 'failed', ageSeconds: number) {
  const handle = createStripeHandler({ secret: SECRET, inbox, logger: false, onEvent() {} });
  const event = stripeEvent('invoice.paid');
  const send = () => handle({ method: 'POST', ...signStripePayload(event, SECRET) });
  expect((await send()).body).toContain('"queued":true');
  const { rows } = await pool.query<{ id: string }>(
    `UPDATE ${schema}.job SET state = $2::${schema}.job_state, retry_count = retry_limit,
       completed_on = now() - $3 * interval '1 second', output = '{"message":"ledger offline"}'
     WHERE name = $1 AND state = 'created' RETURNING id`,
    [inbox.queueName, state, ageSeconds],
  );
  return { id: rows[0]!.id, send };
}

describe.runIf(requireService('PostgreSQL', available))('pg-boss inbox retention', () => {
  it('keeps a completed job 3 days by default (a copy is answered duplicate), not pg-boss’s 12 hours', async () => {
    const inbox = inboxWith();
    const job = await finishedJob(inbox, 'completed', 13 * HOUR);
    await archive(inbox);
    expect(await stateOf(inbox, job.id)).toBe('completed');
    expect((await job.send()).body).toContain('"duplicate":true');
    // Past the retention it is archived: the check above could fail.
    await pool.query(`UPDATE ${schema}.job SET completed_on = now() - interval '73 hours' WHERE id = $1`, [
      job.id,
    ]);
    await archive(inbox);
    expect(await stateOf(inbox, job.id)).toBeUndefined();
  });

  it('keeps a failed job 30 days by default: failed() lists it until then', async () => {
    const inbox = inboxWith();
    const kept = await finishedJob(inbox, 'failed', 29 * DAY);
    await archive(inbox);
    expect((await inbox.failed()).map((f) => f.id)).toEqual([kept.id]);
    await pool.query(`UPDATE ${schema}.job SET completed_on = now() - interval '31 days' WHERE id = $1`, [
      kept.id,
    ]);
    await archive(inbox);
    expect(await inbox.failed()).toEqual([]);
  });

  it('a failed job retried after weeks is not archived before it runs (completed_on and keep_until reset)', async () => {
    const inbox = inboxWith();
    const job = await finishedJob(inbox, 'failed', 20 * DAY);
    await pool.query(`UPDATE ${schema}.job SET keep_until = now() - interval '6 days' WHERE id = $1`, [
      job.id,
    ]);
    expect(await inbox.retry(job.id)).toBe(true);
    await archive(inbox);
    expect(await stateOf(inbox, job.id)).toBe('retry');
    expect(await inbox.retry(job.id)).toBe(false); // no longer failed
    expect(await inbox.retry('not-a-uuid')).toBe(false);
  });

  it('keepCompletedMs / keepFailedMs set it; the connection’s own archive options win', async () => {
    const short = inboxWith({}, { keepCompletedMs: HOUR * 1000, keepFailedMs: 2 * HOUR * 1000 });
    const completed = await finishedJob(short, 'completed', 2 * HOUR);
    const failed = await finishedJob(short, 'failed', HOUR + 60);
    await archive(short);
    expect(await stateOf(short, completed.id)).toBeUndefined();
    expect(await stateOf(short, failed.id)).toBe('failed');
    const own = inboxWith({ archiveCompletedAfterSeconds: HOUR });
    const mine = await finishedJob(own, 'completed', 2 * HOUR);
    await archive(own);
    expect(await stateOf(own, mine.id)).toBeUndefined();
  });

  it('sizes the retry budget: 15 runs, 1 s doubling (pg-boss retryBackoff)', async () => {
    const inbox = inboxWith();
    await finishedJob(inbox, 'completed', 0);
    expect(await inbox.boss.getQueue(inbox.queueName)).toMatchObject({
      retryLimit: 14,
      retryDelay: 1,
      retryBackoff: true,
    });
  });
});
