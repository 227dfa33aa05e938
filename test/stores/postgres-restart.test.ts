// PostgreSQL restarts under load (issue 20, item 15): a private cluster is crashed (`pg_ctl stop -m
// immediate`) while claims are running inside it, then started again. The app runs in a child process, so
// an unhandled 'error' event on a pg Client ends the child, not vitest. The child is this file: run with
// HOOKGUARD_PG_RESTART_CHILD set, it serves the Express adapter on the PostgreSQL store instead of
// defining tests.
import { spawnSync } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import express from 'express';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { stripeWebhook } from '../../src/adapters/express.js';
import { stripeDedupKey } from '../../src/index.js';
import { createPostgresDedupStore } from '../../src/stores/postgres.js';
import { signStripePayload, stripeEvent } from '../../src/testing/index.js';
import { startWorkers, stopWorkers, type Worker } from '../helpers/cluster.js';
import { sleep } from '../helpers/http.js';
import { startPrivatePostgres } from '../helpers/private-engines.js';

const CHILD = 'HOOKGUARD_PG_RESTART_CHILD';
const SECRET = 'whsec_pg_restart';
const TABLE = 'hookguard_restart';
const EVENTS = 120;
const LANES = 8;
/** The claims of these events wait on a row lock when PostgreSQL dies: one per lane, so every lane is in a claim. */
const LOCKED_FROM = 40;
const OUTAGE_MS = 1500;
const RETRY_MS = 100;

interface ChildReport {
  runs: Record<string, number>;
  lostCompletions: string[];
  poolErrors: number;
}

/** The child: the README's pool (with its 'error' listener) under the Express adapter, counting runs. */
async function serveChild(url: string): Promise<void> {
  const pool = new pg.Pool({ connectionString: url, max: 10 });
  let poolErrors = 0;
  pool.on('error', () => void poolErrors++);
  const store = createPostgresDedupStore({ pool, table: TABLE, timeoutMs: 10_000 });
  await store.ensureSchema();
  const runs: Record<string, number> = {};
  const lostCompletions: string[] = [];
  const app = express();
  app.post(
    '/stripe',
    stripeWebhook({
      secret: SECRET,
      store,
      onEvent: (event) => void (runs[event.id] = (runs[event.id] ?? 0) + 1),
      logger: {
        info() {},
        warn() {},
        error(obj, msg) {
          // The one way an event may run twice: it ran, then recording its completion failed.
          if (msg?.startsWith('could not record completion')) lostCompletions.push(String(obj.key));
        },
      },
    }),
  );
  app.get('/runs', (_req, res) => void res.json({ runs, lostCompletions, poolErrors } satisfies ChildReport));
  const server = app.listen(0, '127.0.0.1', () => {
    process.stdout.write(`READY ${(server.address() as AddressInfo).port}\n`);
  });
}

function initdbAvailable(): boolean {
  if (spawnSync('initdb', ['--version']).status === 0) return true;
  // The same rule as requireService: a loud skip locally, a failure in CI.
  const message = 'initdb is not on PATH: the private PostgreSQL cluster cannot be created';
  if (process.env.CI) throw new Error(message);
  console.warn(`SKIPPED PostgreSQL restart test: ${message}.`);
  return false;
}

interface Attempt {
  event: number;
  sentAt: number;
  answeredAt: number;
  status: number;
  code: string | undefined;
  retryAfter: string | null;
}

if (process.env[CHILD] !== undefined) {
  await serveChild(process.env[CHILD]);
} else {
  const cleanups: (() => Promise<unknown> | void)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  describe('PostgreSQL store when PostgreSQL restarts', () => {
    it.runIf(initdbAvailable())(
      'claims broken by a crash answer 503, the process lives, and after the restart every event runs once',
      async () => {
        const engine = await startPrivatePostgres();
        cleanups.push(() => engine.stop());
        const workers: Worker[] = await startWorkers(
          1,
          { [CHILD]: engine.url },
          fileURLToPath(import.meta.url),
        );
        cleanups.push(() => stopWorkers(workers));
        const worker = workers[0]!;
        const alive = () => worker.child.exitCode === null && worker.child.signalCode === null;
        const url = `http://127.0.0.1:${worker.port}`;

        const events = Array.from({ length: EVENTS }, () => stripeEvent('invoice.paid'));
        const signed = events.map((event) => signStripePayload(event, SECRET));
        // Lock the keys of one event per lane (uncommitted rows): their claims wait inside PostgreSQL, so
        // when it dies every lane holds a checked-out client mid-query, and no completion is in flight.
        const admin = new pg.Client({ connectionString: engine.url });
        admin.on('error', () => {}); // the crash ends this connection too
        await admin.connect();
        cleanups.push(() => admin.end().catch(() => undefined));
        await admin.query('BEGIN');
        await admin.query(
          `INSERT INTO ${TABLE} (key, token, expires_at) SELECT k, 'lock', now() + interval '1 hour' FROM unnest($1::text[]) k`,
          [events.slice(LOCKED_FROM, LOCKED_FROM + LANES).map((event) => stripeDedupKey(event))],
        );

        const attempts: Attempt[] = [];
        let next = 0;
        async function lane(): Promise<void> {
          for (let index = next++; index < EVENTS; index = next++) {
            const delivery = signed[index]!;
            for (;;) {
              if (!alive()) return;
              const sentAt = performance.now();
              let status = 0;
              let code: string | undefined;
              let retryAfter: string | null = null;
              try {
                const response = await fetch(`${url}/stripe`, {
                  method: 'POST',
                  body: delivery.body,
                  headers: delivery.headers,
                });
                status = response.status;
                retryAfter = response.headers.get('retry-after');
                code = ((await response.json()) as { error?: { code?: string } }).error?.code;
              } catch {
                // refused or reset: the child is gone
              }
              attempts.push({
                event: index,
                sentAt,
                answeredAt: performance.now(),
                status,
                code,
                retryAfter,
              });
              if (status >= 200 && status < 300) break;
              await sleep(RETRY_MS);
            }
            await sleep(5 + Math.random() * 10); // a steady stream, not a burst
          }
        }
        const stream = Promise.all(Array.from({ length: LANES }, lane));

        // Wait until every lane's claim is waiting on a lock, then crash PostgreSQL under them.
        let waiting = 0;
        for (let i = 0; i < 200 && waiting < LANES; i++) {
          await sleep(25);
          await admin.query('SELECT pg_stat_clear_snapshot()'); // else the transaction sees its first snapshot
          const { rows } = await admin.query<{ n: number }>(
            `SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%${TABLE}%'`,
          );
          waiting = rows[0]!.n;
        }
        expect(waiting).toBe(LANES);
        const crashing = performance.now();
        await engine.crash();
        const crashed = performance.now();
        await sleep(OUTAGE_MS);
        const restarting = performance.now();
        await engine.start();
        await stream;

        expect(alive(), 'the app process died when PostgreSQL went away').toBe(true);
        const broken = attempts.filter((a) => a.sentAt < crashing && a.answeredAt >= crashed);
        const outage = attempts.filter((a) => a.sentAt >= crashed && a.answeredAt < restarting);
        const storeUnavailable = { status: 503, code: 'STORE_UNAVAILABLE' };
        expect(broken).toHaveLength(LANES);
        for (const a of [...broken, ...outage]) expect(a).toMatchObject(storeUnavailable);
        for (const a of [...broken, ...outage]) expect(Number(a.retryAfter)).toBeGreaterThan(0);
        expect(outage.length).toBeGreaterThan(0);

        // After the restart: the broken claims' retries and every new delivery are processed, once each.
        const processed = attempts.filter((a) => a.status === 200);
        expect(new Set(processed.map((a) => a.event)).size).toBe(EVENTS);
        for (const { event } of broken) {
          expect(processed.find((a) => a.event === event)?.sentAt).toBeGreaterThanOrEqual(restarting);
        }
        const fresh = new Set(attempts.filter((a) => a.sentAt >= restarting).map((a) => a.event));
        for (const a of attempts) if (a.sentAt < restarting) fresh.delete(a.event);
        const report = (await (await fetch(`${url}/runs`)).json()) as ChildReport;
        expect(report.lostCompletions).toEqual([]);
        expect(Object.keys(report.runs)).toHaveLength(EVENTS);
        expect(events.filter((event) => report.runs[event.id] !== 1)).toEqual([]);
        expect(alive()).toBe(true);
        console.log(
          `postgres restart: ${EVENTS} events in ${attempts.length} deliveries; ${broken.length} claims broken mid-query ` +
            `and ${outage.length} deliveries during the ${OUTAGE_MS} ms outage answered 503 STORE_UNAVAILABLE; ` +
            `process alive (idle clients reported on the pool: ${report.poolErrors}); after the restart the ${broken.length} ` +
            `retried and ${fresh.size} new events were processed, and all ${EVENTS} ran exactly once`,
        );
      },
      30_000,
    );
  });
}
