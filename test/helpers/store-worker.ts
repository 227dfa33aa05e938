// One app server of the multi-process tests: Express + hookguard with a shared Redis or PostgreSQL store.
// Handlers record completions in the shared database, never in this process's memory.
// Env: STORE (redis|postgres), RUN (unique id), LEASE_MS, CRASH_EVENT (exit on its first attempt).
import express from 'express';
import type { AddressInfo } from 'node:net';
import type { DedupStore } from '../../src/index.js';
import { stripeWebhook } from '../../src/adapters/express.js';
import { createPostgresDedupStore } from '../../src/stores/postgres.js';
import { createRedisDedupStore } from '../../src/stores/redis.js';
import { WORKER_SECRET } from './cluster.js';
import { newIoRedis, newPool } from './services.js';

const run = process.env.RUN ?? 'run';
const leaseMs = Number(process.env.LEASE_MS ?? 10_000);
const crashEvent = process.env.CRASH_EVENT;

let store: DedupStore;
let record: (eventId: string) => Promise<void>;
let firstAttempt: (eventId: string) => Promise<boolean>;

if (process.env.STORE === 'postgres') {
  const pool = newPool();
  store = createPostgresDedupStore({ pool, table: `hookguard_mp_${run}` });
  record = async (id) =>
    void (await pool.query(`INSERT INTO hookguard_mp_done_${run} (event_id) VALUES ($1)`, [id]));
  firstAttempt = async (id) =>
    (
      await pool.query(
        `INSERT INTO hookguard_mp_crash_${run} (event_id) VALUES ($1) ON CONFLICT DO NOTHING`,
        [id],
      )
    ).rowCount === 1;
} else {
  const redis = newIoRedis();
  store = createRedisDedupStore({ client: redis, prefix: `hookguard-mp:${run}:` });
  record = async (id) => void (await redis.hincrby(`hookguard-mp:${run}:done`, id, 1));
  firstAttempt = async (id) => (await redis.set(`hookguard-mp:${run}:crash:${id}`, '1', 'NX')) === 'OK';
}

const app = express();
app.post(
  '/stripe',
  stripeWebhook({
    secret: WORKER_SECRET,
    store,
    leaseMs,
    async onEvent(event) {
      if (event.id === crashEvent && (await firstAttempt(event.id))) {
        // Die after the claim, before completing: the lease must expire before anyone else runs it.
        process.exit(1);
      }
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 10));
      await record(event.id);
    },
  }),
);
const server = app.listen(0, '127.0.0.1', () => {
  process.stdout.write(`READY ${(server.address() as AddressInfo).port}\n`);
});
