// The machine's real Redis and PostgreSQL. Locally a missing server is a loud skip; in CI (CI=true) it
// is a failure: .ci/run starts both before the tests.
import { Redis } from 'ioredis';
import pg from 'pg';
import { createClient } from 'redis';

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
export const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

async function reachable(check: () => Promise<unknown>): Promise<boolean> {
  try {
    await check();
    return true;
  } catch {
    return false;
  }
}

export async function redisUp(): Promise<boolean> {
  const client = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: 1000 });
  const up = await reachable(async () => {
    await client.connect();
    await client.ping();
  });
  client.disconnect();
  return up;
}

export async function postgresUp(): Promise<boolean> {
  const pool = new pg.Pool({ connectionString: DATABASE_URL, connectionTimeoutMillis: 1000 });
  const up = await reachable(() => pool.query('SELECT 1'));
  await pool.end();
  return up;
}

/** Skips (with a printed reason) outside CI when a service is down; fails in CI. */
export function requireService(name: string, up: boolean): boolean {
  if (up) return true;
  const message = `${name} is not reachable (${name === 'Redis' ? REDIS_URL : DATABASE_URL})`;
  if (process.env.CI) throw new Error(`${message}: CI must have it running (.ci/run starts it)`);
  console.warn(`SKIPPED store tests: ${message}. Start it (see README) to run them.`);
  return false;
}

export const newIoRedis = () => new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
export const newNodeRedis = async () => createClient({ url: REDIS_URL }).connect();
export const newPool = () => new pg.Pool({ connectionString: DATABASE_URL, max: 10 });
