// Exactly once across processes: four app servers share one store; a provider-like driver delivers every
// event four times, shuffled over all servers, and retries whatever is not a 2xx.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgresDedupStore } from '../../src/stores/postgres.js';
import { signStripePayload, stripeEvent } from '../../src/testing/index.js';
import { shuffle } from '../helpers/http.js';
import {
  deliverAll,
  startWorkers,
  stopWorkers,
  WORKER_SECRET,
  type Delivery,
  type Worker,
} from '../helpers/cluster.js';
import { newIoRedis, newPool, postgresUp, redisUp, requireService } from '../helpers/services.js';

const redisAvailable = await redisUp();
const postgresAvailable = await postgresUp();

interface Backend {
  name: 'redis' | 'postgres';
  available: boolean;
  setup(run: string): Promise<void>;
  completions(run: string): Promise<Map<string, number>>;
  teardown(run: string): Promise<void>;
}

const pool = newPool();
const redis = newIoRedis();
afterAll(async () => {
  await pool.end();
  redis.disconnect();
});

const backends: Backend[] = [
  {
    name: 'redis',
    available: redisAvailable,
    setup: async () => {},
    completions: async (run) => {
      const hash = await redis.hgetall(`hookguard-mp:${run}:done`);
      return new Map(Object.entries(hash).map(([k, v]) => [k, Number(v)]));
    },
    teardown: async (run) => {
      const keys = await redis.keys(`hookguard-mp:${run}:*`);
      if (keys.length > 0) await redis.del(...keys);
    },
  },
  {
    name: 'postgres',
    available: postgresAvailable,
    setup: async (run) => {
      await createPostgresDedupStore({ pool, table: `hookguard_mp_${run}` }).ensureSchema();
      await pool.query(`CREATE TABLE hookguard_mp_done_${run} (event_id text NOT NULL)`);
      await pool.query(`CREATE TABLE hookguard_mp_crash_${run} (event_id text PRIMARY KEY)`);
    },
    completions: async (run) => {
      const { rows } = await pool.query(
        `SELECT event_id, count(*)::int AS n FROM hookguard_mp_done_${run} GROUP BY event_id`,
      );
      return new Map(rows.map((r: { event_id: string; n: number }) => [r.event_id, r.n]));
    },
    teardown: async (run) => {
      for (const t of ['', 'done_', 'crash_'])
        await pool.query(`DROP TABLE IF EXISTS hookguard_mp_${t}${run}`);
    },
  },
];

describe.each(backends)('$name store shared by separate processes', (backend) => {
  const enabled = requireService(backend.name === 'redis' ? 'Redis' : 'PostgreSQL', backend.available);
  const run = randomUUID().replaceAll('-', '').slice(0, 12);
  let workers: Worker[] = [];
  beforeAll(async () => {
    if (enabled) await backend.setup(run);
  });
  afterAll(async () => {
    await stopWorkers(workers);
    if (enabled) await backend.teardown(run);
  });

  it.runIf(enabled)(
    '2,000 deliveries of 500 events over 4 servers: every event completed exactly once',
    async () => {
      workers = await startWorkers(4, { STORE: backend.name, RUN: run, LEASE_MS: '10000' });
      const events = Array.from({ length: 500 }, () =>
        signStripePayload(stripeEvent('invoice.paid'), WORKER_SECRET),
      );
      const deliveries: Delivery[] = shuffle(
        events.flatMap((e) => [e, e, e, e]),
        4242,
      );
      const started = Date.now();
      const { statuses, retries } = await deliverAll(
        deliveries,
        workers.map((w) => w.port),
        48,
      );
      const completions = await backend.completions(run);
      console.log(
        `${backend.name}: ${deliveries.length} deliveries in ${Date.now() - started} ms, answers ${JSON.stringify(Object.fromEntries(statuses))}, ` +
          `${retries} retries, ${completions.size} events completed`,
      );
      expect(completions.size).toBe(500);
      expect([...completions.values()].filter((n) => n !== 1)).toEqual([]);
      expect(statuses.get(200)).toBeGreaterThanOrEqual(2_000);
      await stopWorkers(workers);
    },
  );

  it.runIf(enabled)(
    'a worker that dies after claiming: 409 while the lease lives, 200 after, completed once',
    async () => {
      const crashing = stripeEvent('invoice.paid');
      const leaseMs = 1500;
      workers = await startWorkers(2, {
        STORE: backend.name,
        RUN: run,
        LEASE_MS: String(leaseMs),
        CRASH_EVENT: crashing.id,
      });
      const [a, b] = workers as [Worker, Worker];
      const signed = signStripePayload(crashing, WORKER_SECRET);
      const post = (port: number) =>
        fetch(`http://127.0.0.1:${port}/stripe`, {
          method: 'POST',
          body: signed.body,
          headers: signed.headers,
        }).then(
          (r) => r.status,
          () => 0,
        );
      const started = Date.now();
      expect(await post(a.port)).toBe(0); // the process died mid-request
      expect(await a.exited).toBe(1);
      expect(await post(b.port)).toBe(409);
      let status = 409;
      while (status === 409 && Date.now() - started < leaseMs + 3000) {
        await new Promise((r) => setTimeout(r, 100));
        status = await post(b.port);
      }
      expect(status).toBe(200);
      expect(Date.now() - started).toBeGreaterThanOrEqual(leaseMs - 100);
      expect((await backend.completions(run)).get(crashing.id)).toBe(1);
      expect(await post(b.port)).toBe(200); // now a duplicate
      expect((await backend.completions(run)).get(crashing.id)).toBe(1);
    },
  );
});
