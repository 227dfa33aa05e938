// Closing a pg-boss inbox or worker: the running handlers finish (bounded), their completions reach the
// job table, the loop stops polling, and a process whose inbox was closed exits by itself.
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { createStripeHandler } from '../../src/index.js';
import { createPgBossInbox } from '../../src/inbox/pg-boss.js';
import { signStripePayload, stripeEvent } from '../../src/testing/index.js';
import { sleep } from '../helpers/http.js';
import { DATABASE_URL, newPool, postgresUp, requireService } from '../helpers/services.js';

const available = await postgresUp();
const SECRET = 'whsec_pgboss_close';
const SCRIPT = fileURLToPath(new URL('../helpers/pgboss-close-worker.ts', import.meta.url));
const pool = newPool();
const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});
afterAll(() => pool.end());

const newQueue = () => `hg_close_${randomUUID().replaceAll('-', '')}`;

/** An inbox with one queued event, and a worker whose handler does `work`. */
async function queued(work: () => Promise<unknown>) {
  const queueName = newQueue();
  const inbox = createPgBossInbox({ connection: DATABASE_URL, queueName, logger: false });
  cleanups.push(async () => {
    await inbox.boss.deleteQueue(queueName).catch(() => undefined);
    await inbox.close(500);
  });
  let runs = 0;
  let started = () => {};
  const running = new Promise<void>((resolve) => (started = resolve));
  const stripe = {
    secret: SECRET,
    inbox,
    logger: false as const,
    onEvent: () => {
      runs++;
      started();
      return work();
    },
  };
  await createStripeHandler(stripe)({
    method: 'POST',
    ...signStripePayload(stripeEvent('invoice.paid'), SECRET),
  });
  const worker = inbox.worker({ stripe, pollingIntervalSeconds: 0.5, logger: false });
  await running;
  return { inbox, worker, queueName, runs: () => runs };
}

/** Runs the close script in its own process: resolves with its output, how long close() took and whether it exited. */
function closeInChild(mode: 'hung' | 'slow') {
  const child = spawn(process.execPath, ['--import', 'tsx', SCRIPT], {
    env: { ...process.env, QUEUE: newQueue(), MODE: mode, CLOSE_MS: '1000' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return (async () => {
    // Up to 40 s to start: two children start tsx and pg-boss at once beside the rest of the suite.
    for (let i = 0; i < 800 && !out.includes('CLOSED') && child.exitCode === null; i++) await sleep(50);
    const closedMs = Number(/CLOSED (\d+)/.exec(out)?.[1] ?? NaN);
    const exit = await Promise.race([exited, sleep(8000).then(() => 'still running' as const)]);
    if (exit === 'still running') child.kill('SIGKILL');
    return { out, closedMs, exit };
  })();
}

describe.runIf(requireService('PostgreSQL', available))('closing a pg-boss inbox', () => {
  it('inbox.close() while a 1 s handler runs: it finishes, its job ends completed, it ran once', async () => {
    const { inbox, queueName, runs } = await queued(() => sleep(1000));
    const t0 = performance.now();
    await inbox.close();
    const closeMs = performance.now() - t0;
    const { rows } = await pool.query<{ state: string }>(`SELECT state FROM pgboss.job WHERE name = $1`, [
      queueName,
    ]);
    console.log(
      `pg-boss inbox.close() with a 1 s handler running: ${Math.round(closeMs)} ms, job ${rows[0]?.state}`,
    );
    expect(rows.map((r) => r.state)).toEqual(['completed']);
    expect(runs()).toBe(1);
    expect(closeMs).toBeGreaterThan(500); // it waited for the handler
  });

  it('worker.close(2000) with a hung handler resolves within 3.5 s, and the worker stops polling', async () => {
    const { inbox, worker } = await queued(() => new Promise<void>(() => {}));
    const fetch = vi.spyOn(inbox.boss, 'fetch');
    const t0 = performance.now();
    await worker.close(2000);
    const closeMs = performance.now() - t0;
    console.log(`pg-boss worker.close(2000) with a hung handler: ${Math.round(closeMs)} ms`);
    expect(closeMs).toBeGreaterThanOrEqual(1950);
    expect(closeMs).toBeLessThan(3500);
    const fetchesAtClose = fetch.mock.calls.length;
    await sleep(1200); // more than two polling intervals
    expect(fetch.mock.calls.length).toBe(fetchesAtClose);
  });

  it.concurrent.each(['hung', 'slow'] as const)(
    'a process whose only worker has a %s handler exits by itself after inbox.close(1000)',
    async (mode) => {
      const { out, closedMs, exit } = await closeInChild(mode);
      console.log(
        `pg-boss close in a child (${mode} handler): close() ${closedMs} ms, then ${exit === 0 ? 'exited' : `exit ${String(exit)}`}`,
      );
      expect(out, `the child printed:\n${out}`).toContain('STARTED');
      // It waited for the handler (the hung one up to the bound), then stopped within the bound.
      expect(closedMs).toBeGreaterThanOrEqual(mode === 'hung' ? 950 : 500);
      expect(closedMs).toBeLessThan(mode === 'hung' ? 2500 : 1500);
      expect(exit).toBe(0);
    },
    60_000,
  );
});
