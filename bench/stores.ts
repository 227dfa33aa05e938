// Shared-store throughput on this machine's real Redis and PostgreSQL, beside the raw baseline on the
// same connection. `npm run bench:stores` writes bench/stores-results.json and bench/STORES.md;
// `--smoke` runs tiny counts and writes nothing (CI runs it so the bench cannot rot).
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { Redis } from 'ioredis';
import pg from 'pg';
import { createClient } from 'redis';
import type { DedupStore } from '../src/index.js';
import { postgres, redis } from './built.js';

const smoke = process.argv.includes('--smoke');
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const CONCURRENCY = 64;
const REDIS_OPS = smoke ? 200 : 50_000;
const PG_OPS = smoke ? 100 : 10_000;
const TTL = 60_000;

interface Row {
  name: string;
  ops: number;
  seconds: number;
  opsPerSecond: number;
  baseline?: string;
  ratio?: number;
}

/** Runs `op(i)` for i < total with `concurrency` in flight; returns elapsed seconds. */
async function drive(
  total: number,
  concurrency: number,
  op: (i: number) => Promise<unknown>,
): Promise<number> {
  let next = 0;
  const started = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let i = next++; i < total; i = next++) await op(i);
    }),
  );
  return Number(process.hrtime.bigint() - started) / 1e9;
}

function row(name: string, ops: number, seconds: number): Row {
  return { name, ops, seconds, opsPerSecond: Math.round(ops / seconds) };
}

async function claimComplete(store: DedupStore, run: string, total: number): Promise<number> {
  return drive(total, CONCURRENCY, async (i) => {
    const key = `${run}:${i}`;
    const claim = await store.claim(key, TTL);
    if (claim.status !== 'claimed') throw new Error(`unexpected ${claim.status}`);
    await store.complete(key, claim.token, TTL);
  });
}

async function main(): Promise<void> {
  const rows: Row[] = [];
  const run = randomUUID().slice(0, 8);

  const io = new Redis(REDIS_URL);
  const setNx = await drive(REDIS_OPS, CONCURRENCY, (i) =>
    io.set(`hookguard-bench:${run}:raw:${i}`, '1', 'PX', TTL, 'NX'),
  );
  const raw = row('Redis raw SET NX PX (ioredis, 1 round trip)', REDIS_OPS, setNx);
  rows.push(raw);
  const ioStore = redis.createRedisDedupStore({ client: io, prefix: 'hookguard-bench:' });
  const ioSeconds = await claimComplete(ioStore, `${run}:io`, REDIS_OPS);
  rows.push({
    ...row('Redis claim + complete (ioredis, 2 round trips)', REDIS_OPS, ioSeconds),
    baseline: raw.name,
  });

  const nodeRedis = await createClient({ url: REDIS_URL }).connect();
  const nodeStore = redis.createRedisDedupStore({ client: nodeRedis, prefix: 'hookguard-bench:' });
  const nodeSeconds = await claimComplete(nodeStore, `${run}:node`, REDIS_OPS);
  rows.push({
    ...row('Redis claim + complete (node-redis, 2 round trips)', REDIS_OPS, nodeSeconds),
    baseline: raw.name,
  });
  const keys = await io.keys(`hookguard-bench:${run}*`);
  for (let i = 0; i < keys.length; i += 1000) await io.del(...keys.slice(i, i + 1000));
  io.disconnect();
  await nodeRedis.quit();

  const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 10 });
  const table = `hookguard_bench_${run}`;
  const pgStore = postgres.createPostgresDedupStore({ pool, table });
  await pgStore.ensureSchema();
  const claimsSeconds = await drive(PG_OPS, 32, async (i) => pgStore.claim(`${run}:claim:${i}`, TTL));
  rows.push(row('PostgreSQL claim (pool of 10, 32 in flight)', PG_OPS, claimsSeconds));
  const pairSeconds = await claimComplete(pgStore, `${run}:pair`, PG_OPS);
  rows.push(row('PostgreSQL claim + complete', PG_OPS, pairSeconds));
  await pool.query(`DROP TABLE ${table}`);
  await pool.end();

  for (const r of rows) {
    const base = rows.find((b) => b.name === r.baseline);
    if (base !== undefined) r.ratio = Math.round((r.opsPerSecond / base.opsPerSecond) * 100) / 100;
  }
  const machine = {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    node: process.version,
    date: new Date().toISOString(),
  };
  const table_ = [
    '| what | operations | ops/s | vs baseline |',
    '|---|---:|---:|---:|',
    ...rows.map(
      (r) =>
        `| ${r.name} | ${r.ops} | ${r.opsPerSecond.toLocaleString('en-US')} | ${r.ratio === undefined ? '' : `${r.ratio} × raw SET NX`} |`,
    ),
  ].join('\n');
  console.log(`${machine.cpu}, ${machine.cores} cores, Node ${machine.node}\n\n${table_}`);
  if (smoke) return;
  writeFileSync(
    new URL('./stores-results.json', import.meta.url),
    `${JSON.stringify({ machine, concurrency: CONCURRENCY, rows }, null, 2)}\n`,
  );
  writeFileSync(
    new URL('./STORES.md', import.meta.url),
    `# Shared dedup stores: throughput\n\nMeasured by \`npm run bench:stores\` on ${machine.cpu}, ${machine.cores} cores, Node ${machine.node}, ` +
      `${machine.date.slice(0, 10)}, against the machine's own Redis and PostgreSQL over loopback, ${CONCURRENCY} operations in flight ` +
      `(32 for PostgreSQL claims).\n\n${table_}\n\n` +
      'A claim + complete is two round trips (one per call, each an atomic Lua script), so about half the raw\n' +
      'single-command rate is the ceiling; the difference beyond that is the script execution in Redis.\n',
  );
}

await main();
