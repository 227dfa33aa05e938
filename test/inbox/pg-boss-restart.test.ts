// The engine itself restarting while deliveries arrive: a private PostgreSQL cluster (fsync on) is crashed
// (`pg_ctl stop -m immediate`) mid-stream and started again ~2.5 s later. The web side answers 5xx during the
// outage and Stripe's sender retries; a worker in its own process (so its death shows) runs every event
// exactly once: nothing answered 200 is lost, no finished handler runs again.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { createStripeHandler } from '../../src/index.js';
import { createPgBossInbox } from '../../src/inbox/pg-boss.js';
import { createStripeSender, signStripePayload, stripeEvent } from '../../src/testing/index.js';
import { INBOX_SECRET } from '../helpers/cluster.js';
import { sleep } from '../helpers/http.js';
import { startPrivatePostgres, uncaughtDuring } from '../helpers/private-engines.js';
import { serveCore } from '../helpers/servers.js';

const SCRIPT = fileURLToPath(new URL('../helpers/pgboss-restart-worker.ts', import.meta.url));
const EVENTS = 150;
const QUEUE = 'hg_restart';
const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** The worker process: every "RAN <id>" line it prints, its stderr, and how it exited (if it did). */
function startWorker(url: string) {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', SCRIPT], {
    env: { ...process.env, DB_URL: url, QUEUE },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const runs = new Map<string, number>();
  const duplicates: string[] = [];
  let stderr = '';
  let pending = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    const lines = (pending + chunk.toString()).split('\n');
    pending = lines.pop()!;
    for (const line of lines) {
      const id = /^RAN (\S+)$/.exec(line)?.[1];
      if (id !== undefined) runs.set(id, (runs.get(id) ?? 0) + 1);
      if (line.startsWith('DUPLICATE ')) duplicates.push(line.slice(10));
    }
  });
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exit = {
    code: undefined as number | null | undefined,
    signal: undefined as string | null | undefined,
  };
  child.once('exit', (code, signal) => Object.assign(exit, { code, signal }));
  return { child, runs, duplicates, stderr: () => stderr, exit };
}

describe('pg-boss inbox while its PostgreSQL restarts', () => {
  it('answers 5xx during the outage, loses nothing answered 200, runs nothing twice, the worker survives', async () => {
    const cluster = await startPrivatePostgres();
    cleanups.push(() => cluster.stop());
    const uncaught = uncaughtDuring(cleanups);

    const inbox = createPgBossInbox({
      connection: { connectionString: cluster.url },
      queueName: QUEUE,
      enqueueTimeoutMs: 1000,
      // Each job carries it: a job whose fetch was answered by the crash instead of its worker comes back
      // 5 s later rather than after pg-boss's 15 minutes.
      expireInSeconds: 5,
      logger: false,
    });
    cleanups.push(() => inbox.close(1000));
    await inbox.failed(); // pg-boss's schema and the queue exist before the worker starts
    const handle = createStripeHandler({ secret: INBOX_SECRET, inbox, logger: false, onEvent() {} });
    const running = await serveCore(handle);
    cleanups.push(() => running.close());
    const worker = startWorker(cluster.url);
    cleanups.push(() => void worker.child.kill('SIGKILL'));

    const stripe = createStripeSender({
      url: running.url('/'),
      secret: INBOX_SECRET,
      attempts: 12,
      firstRetryMs: 200,
    });
    const events = Array.from({ length: EVENTS }, () => stripeEvent('invoice.paid'));
    const deliveries = events.map(async (event, i) => {
      await sleep(i * 30); // about 33 per second over 4.5 s
      return stripe.deliver(event);
    });
    await sleep(1500);
    await cluster.crash();
    await sleep(2500);
    await cluster.start();
    const results = await Promise.all(deliveries);
    expect(results.filter((d) => !d.delivered)).toEqual([]);

    // Every job completed in pg-boss: a completion lost in the crash would leave its job active.
    const db = new pg.Client({ connectionString: cluster.url });
    await db.connect();
    cleanups.push(() => db.end());
    const completed = async () =>
      Number(
        (
          await db.query(`SELECT count(*) AS n FROM pgboss.job WHERE name = $1 AND state = 'completed'`, [
            QUEUE,
          ])
        ).rows[0].n,
      );
    for (let i = 0; i < 400 && (await completed()) < EVENTS; i++) await sleep(100);
    await sleep(1000);

    const statuses = results.flatMap((d) => d.attempts.map((a) => a.status));
    const outage = statuses.filter((s) => s === undefined || s >= 500).length;
    const lost = events.filter((e) => !worker.runs.has(e.id)).length;
    const doubles = [...worker.runs.values()].filter((n) => n > 1).length;
    // Jobs handed out again after their run completed: the run outlived its job's expiry (5 s) while its
    // completion waited for the restart, so pg-boss handed the job out again and the claim answered
    // duplicate. Informative: that is the claim doing its job, not a lost completion.
    const again = worker.duplicates.length;
    console.log(
      `pg-boss engine restart: ${EVENTS} events, ${outage} answers 5xx during the outage, ${lost} lost, ${doubles} doubles (${again} completed jobs handed out again)`,
    );
    if (lost + doubles > 0 || worker.exit.code !== undefined) {
      console.log(worker.stderr().slice(-3000));
      for (const event of events.filter((e) => !worker.runs.has(e.id)))
        console.log(await explain(db, event.id));
    }
    expect(outage).toBeGreaterThan(0); // the outage was seen
    expect(worker.exit).toEqual({ code: undefined, signal: undefined }); // the worker survived
    expect(uncaught).toEqual([]);
    expect(await completed()).toBe(EVENTS);
    expect(lost).toBe(0);
    expect(doubles).toBe(0);
  }, 75_000);

  it('an inbox and worker started while PostgreSQL is down start for real once it is back', async () => {
    // pg-boss's start() that fails half-way stays "starting" for good: without a fresh instance, its
    // schema would never be created here and its maintenance (expiry, archive) never run.
    const cluster = await startPrivatePostgres();
    cleanups.push(() => cluster.stop());
    await cluster.crash();
    const inbox = createPgBossInbox({
      connection: { connectionString: cluster.url, maintenanceIntervalSeconds: 1 },
      queueName: QUEUE,
      enqueueTimeoutMs: 1000,
      logger: false,
    });
    cleanups.push(() => inbox.close(1000));
    const ran: string[] = [];
    const stripe = {
      secret: INBOX_SECRET,
      inbox,
      logger: false as const,
      onEvent: (event: { id: string }) => void ran.push(event.id),
    };
    const worker = inbox.worker({ stripe, pollingIntervalSeconds: 0.5, logger: false });
    cleanups.push(() => worker.close(1000));
    const event = stripeEvent('invoice.paid');
    const handle = createStripeHandler(stripe);
    const deliver = () => handle({ method: 'POST', ...signStripePayload(event, INBOX_SECRET) });
    expect((await deliver()).status).toBe(503);
    await sleep(1000); // the worker's loop failed to start pg-boss too
    await cluster.start();
    // Retried like a provider: pg-boss's first start creates its schema, which can outlast enqueueTimeoutMs.
    let status = 0;
    for (let i = 0; i < 20 && status !== 200; i++) {
      status = (await deliver()).status;
      if (status !== 200) await sleep(250);
    }
    expect(status).toBe(200);
    for (let i = 0; i < 100 && ran.length === 0; i++) await sleep(100);
    expect(ran).toEqual([event.id]);
    const db = new pg.Client({ connectionString: cluster.url });
    await db.connect();
    cleanups.push(() => db.end());
    const maintained = async () =>
      (await db.query(`SELECT maintained_on FROM pgboss.version`)).rows[0]?.maintained_on != null;
    for (let i = 0; i < 50 && !(await maintained()); i++) await sleep(100);
    expect(await maintained()).toBe(true);
  }, 40_000);
});

/** Where an event that never ran is stuck: its job and its claim, for the failure message. */
async function explain(db: pg.Client, id: string): Promise<string> {
  const job = await db.query(
    `SELECT state, retry_count, started_on, output FROM pgboss.job WHERE name = $1 AND data->>'key' LIKE $2`,
    [QUEUE, `%${id}`],
  );
  const claim = await db.query(`SELECT token, expires_at FROM pgboss.hookguard_dedup WHERE key LIKE $1`, [
    `%${id}`,
  ]);
  return `never ran: ${id} job ${JSON.stringify(job.rows)} claim ${JSON.stringify(claim.rows)}`;
}
