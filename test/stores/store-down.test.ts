// A store that is unreachable or stalls: requests answer 503 STORE_UNAVAILABLE within timeoutMs + 100 ms,
// no handler runs, and once the store is back the provider's retries are processed.
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { stripeWebhook } from '../../src/adapters/express.js';
import type { DedupStore } from '../../src/index.js';
import { createPostgresDedupStore } from '../../src/stores/postgres.js';
import { createRedisDedupStore } from '../../src/stores/redis.js';
import { signStripePayload, stripeEvent } from '../../src/testing/index.js';
import express from 'express';
import { listening, type Running } from '../helpers/servers.js';
import { DATABASE_URL, postgresUp, REDIS_URL, redisUp, requireService } from '../helpers/services.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';

const redisAvailable = await redisUp();
const postgresAvailable = await postgresUp();
const SECRET = 'whsec_store_down';
const TIMEOUT_MS = 300;

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function app(store: DedupStore, leaseMs: number): Promise<{ running: Running; calls: () => number }> {
  let calls = 0;
  const server = express();
  server.post('/stripe', stripeWebhook({ secret: SECRET, store, leaseMs, onEvent: () => void calls++ }));
  const running = await listening(server.listen(0, '127.0.0.1'));
  cleanups.push(() => running.close());
  return { running, calls: () => calls };
}

async function timed(url: string, signed: { body: string; headers: Record<string, string> }) {
  const started = performance.now();
  const response = await fetch(url, { method: 'POST', body: signed.body, headers: signed.headers });
  const body = (await response.json()) as unknown;
  return {
    status: response.status,
    body,
    ms: performance.now() - started,
    retryAfter: response.headers.get('retry-after'),
  };
}

async function retryUntil2xx(
  url: string,
  signed: { body: string; headers: Record<string, string> },
  withinMs: number,
) {
  const deadline = Date.now() + withinMs;
  for (;;) {
    const answer = await timed(url, signed);
    if (answer.status < 300 || Date.now() > deadline) return answer;
    await new Promise((r) => setTimeout(r, 100));
  }
}

interface Backend {
  name: string;
  available: boolean;
  target: { host: string; port: number };
  /** The store through the proxy, and how long a lease lasts there. */
  connect(port: number): { store: DedupStore; close: () => Promise<void> | void };
}

const redisUrl = new URL(REDIS_URL);
const pgUrl = new URL(DATABASE_URL);
const backends: Backend[] = [
  {
    name: 'Redis (ioredis)',
    available: redisAvailable,
    target: { host: redisUrl.hostname, port: Number(redisUrl.port || 6379) },
    connect(port) {
      // enableOfflineQueue: false fails commands at once while disconnected instead of queueing them.
      const client = new Redis({
        host: '127.0.0.1',
        port,
        enableOfflineQueue: false,
        maxRetriesPerRequest: 0,
        retryStrategy: () => 50,
      });
      client.on('error', () => {});
      return {
        store: createRedisDedupStore({ client, timeoutMs: TIMEOUT_MS, prefix: 'hookguard-down:' }),
        close: () => client.disconnect(),
      };
    },
  },
  {
    name: 'PostgreSQL',
    available: postgresAvailable,
    target: { host: pgUrl.hostname, port: Number(pgUrl.port || 5432) },
    connect(port) {
      const pool = new pg.Pool({
        host: '127.0.0.1',
        port,
        user: decodeURIComponent(pgUrl.username) || 'postgres',
        database: pgUrl.pathname.slice(1) || 'test',
        connectionTimeoutMillis: 10_000,
      });
      pool.on('error', () => {});
      return {
        store: createPostgresDedupStore({ pool, timeoutMs: TIMEOUT_MS }),
        close: () => pool.end().catch(() => undefined),
      };
    },
  },
];

describe.each(backends)('$name unreachable or stalled', (backend) => {
  const enabled = requireService(
    backend.name.startsWith('Redis') ? 'Redis' : 'PostgreSQL',
    backend.available,
  );

  it.runIf(enabled)(
    'refused connections: 503 within timeoutMs + 100 ms, no handler; processed once the store is back',
    async () => {
      if (backend.name === 'PostgreSQL') {
        // The table must exist before the store goes away.
        const pool = new pg.Pool({ connectionString: DATABASE_URL });
        await createPostgresDedupStore({ pool }).ensureSchema();
        await pool.end();
      }
      const proxy = await TcpProxy.create(backend.target);
      cleanups.push(() => proxy.refuse());
      const { store, close } = backend.connect(proxy.port);
      cleanups.push(close);
      const { running, calls } = await app(store, 60_000);
      const signed = signStripePayload(stripeEvent('invoice.paid'), SECRET);

      for (let i = 0; i < 3; i++) {
        const answer = await timed(running.url('/stripe'), signed);
        expect(answer).toMatchObject({ status: 503, body: { error: { code: 'STORE_UNAVAILABLE' } } });
        expect(answer.ms).toBeLessThan(TIMEOUT_MS + 100);
        expect(Number(answer.retryAfter)).toBeGreaterThan(0);
      }
      expect(calls()).toBe(0);

      await proxy.forward();
      const back = await retryUntil2xx(running.url('/stripe'), signed, 10_000);
      expect(back).toMatchObject({ status: 200, body: { ok: true } });
      expect(calls()).toBe(1);
      expect((await timed(running.url('/stripe'), signed)).body).toEqual({ ok: true, duplicate: true });
    },
  );

  it.runIf(enabled)(
    'a stalled store: 503 at timeoutMs, no handler; afterwards the retry is processed without waiting out a phantom lease',
    async () => {
      const proxy = await TcpProxy.create(backend.target);
      cleanups.push(() => proxy.refuse());
      await proxy.forward();
      const { store, close } = backend.connect(proxy.port);
      cleanups.push(close);
      // A long lease: if a timed-out claim left a lease behind, the retry would get 409 for a minute.
      const { running, calls } = await app(store, 60_000);
      // Warm the connection so the stall hits a live, ready client.
      await retryUntil2xx(
        running.url('/stripe'),
        signStripePayload(stripeEvent('invoice.paid'), SECRET),
        10_000,
      );
      const before = calls();

      await proxy.stall();
      const signed = signStripePayload(stripeEvent('invoice.paid'), SECRET);
      const answer = await timed(running.url('/stripe'), signed);
      expect(answer).toMatchObject({ status: 503, body: { error: { code: 'STORE_UNAVAILABLE' } } });
      expect(answer.ms).toBeGreaterThanOrEqual(TIMEOUT_MS - 20);
      expect(answer.ms).toBeLessThan(TIMEOUT_MS + 100);
      expect(calls()).toBe(before);

      await proxy.forward();
      const back = await retryUntil2xx(running.url('/stripe'), signed, 5_000);
      expect(back).toMatchObject({ status: 200, body: { ok: true } });
      expect(calls()).toBe(before + 1);
    },
  );
});

describe('PostgreSQL backend terminated mid-request', () => {
  it.runIf(requireService('PostgreSQL', postgresAvailable))(
    'answers 5xx, keeps the process alive (the README pool has an error listener), and processes the retry',
    async () => {
      const crashes: unknown[] = [];
      const onCrash = (err: unknown) => void crashes.push(err);
      process.on('uncaughtException', onCrash);
      cleanups.push(() => void process.off('uncaughtException', onCrash));
      const table = `hookguard_terminate_${process.pid}`;
      // The pool as README.md sets it up: an 'error' listener, or a dropped idle client ends the process.
      const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 2 });
      const lost: string[] = [];
      pool.on('error', (err) => void lost.push(err.message));
      const admin = new pg.Client({ connectionString: DATABASE_URL });
      await admin.connect();
      cleanups.push(async () => {
        await admin.query(`DROP TABLE IF EXISTS "${table}"`).catch(() => undefined);
        await admin.end();
        await pool.end();
      });
      const store = createPostgresDedupStore({ pool, table, timeoutMs: 5000 });
      await store.ensureSchema();
      const { running, calls } = await app(store, 60_000);
      const signed = signStripePayload(stripeEvent('invoice.paid'), SECRET);

      // Hold the table so the claim waits inside PostgreSQL, then terminate the backend that runs it.
      const locker = new pg.Client({ connectionString: DATABASE_URL });
      await locker.connect();
      await locker.query('BEGIN');
      await locker.query(`LOCK TABLE "${table}" IN ACCESS EXCLUSIVE MODE`);
      const answer = timed(running.url('/stripe'), signed);
      let terminated = 0;
      for (let i = 0; i < 100 && terminated === 0; i++) {
        await new Promise((resolve) => setTimeout(resolve, 20));
        const { rows } = await admin.query<{ pid: number }>(
          `SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%${table}%'`,
        );
        for (const { pid } of rows) {
          await admin.query('SELECT pg_terminate_backend($1)', [pid]);
          terminated++;
        }
      }
      await locker.query('ROLLBACK');
      await locker.end();
      const first = await answer;
      expect(terminated).toBe(1);
      expect(first.status).toBe(503);
      expect(calls()).toBe(0);
      // Terminate the pool's idle connection too: the case that ends a process without a listener.
      await pool.query(`SELECT 1 AS "${table}"`);
      await admin.query(
        `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE state = 'idle' AND query LIKE $1`,
        [`%${table}%`],
      );
      for (let i = 0; i < 50 && lost.length === 0; i++)
        await new Promise((resolve) => setTimeout(resolve, 20));
      expect(lost.length).toBeGreaterThan(0);
      await new Promise((resolve) => setTimeout(resolve, 100));
      const retry = await timed(running.url('/stripe'), signed);
      expect(retry.status).toBe(200);
      expect(calls()).toBe(1);
      expect(crashes).toEqual([]);
      console.log(
        `backend terminated mid-claim: answered ${first.status}; idle clients lost: ${lost.length}; process alive`,
      );
    },
  );
});
