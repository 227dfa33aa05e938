import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMemoryDedupStore, type DedupStore } from '../../src/index.js';
import { createPostgresDedupStore, postgresDedupSchema } from '../../src/stores/postgres.js';
import { createRedisDedupStore } from '../../src/stores/redis.js';
import { checkDedupStore } from '../../src/testing/index.js';
import {
  newIoRedis,
  newNodeRedis,
  newPool,
  postgresUp,
  redisUp,
  requireService,
} from '../helpers/services.js';

const redisAvailable = await redisUp();
const postgresAvailable = await postgresUp();

describe('checkDedupStore', () => {
  it('passes for the memory store', async () => {
    expect(await checkDedupStore(() => createMemoryDedupStore())).toEqual([]);
  });

  it('reports the failures of a store that breaks the contract', async () => {
    // Always "claimed": no dedup at all, the seed bot's worst case.
    const amnesiac: DedupStore = {
      claim: () => ({ status: 'claimed', token: 't' }),
      complete: () => {},
      release: () => {},
    };
    const failures = await checkDedupStore(() => amnesiac, { shortMs: 50 });
    expect(failures.length).toBeGreaterThanOrEqual(5);
    expect(failures.join('\n')).toMatch(/concurrent claims: 25 claimed/);
    // Forgets completions (clears everything, like the seed code at 1000 entries).
    const memory = createMemoryDedupStore();
    const forgetful: DedupStore = {
      ...memory,
      claim: (k, l) => memory.claim(k, l),
      complete: () => {},
      release: (k, t) => memory.release(k, t),
    };
    expect((await checkDedupStore(() => forgetful, { shortMs: 50 })).join('\n')).toMatch(
      /claim after complete: expected duplicate/,
    );
  });
});

describe.runIf(requireService('Redis', redisAvailable))('Redis store', () => {
  it('passes checkDedupStore with an ioredis client', async () => {
    const client = newIoRedis();
    try {
      expect(
        await checkDedupStore(() => createRedisDedupStore({ client, prefix: 'hookguard-test:' })),
      ).toEqual([]);
    } finally {
      client.disconnect();
    }
  });

  it('passes checkDedupStore with a node-redis client', async () => {
    const client = await newNodeRedis();
    try {
      expect(
        await checkDedupStore(() => createRedisDedupStore({ client, prefix: 'hookguard-test:' })),
      ).toEqual([]);
    } finally {
      await client.quit();
    }
  });

  it('recovers from an empty script cache (NOSCRIPT) by sending the script once', async () => {
    const client = newIoRedis();
    try {
      const store = createRedisDedupStore({ client, prefix: 'hookguard-test:' });
      await client.script('FLUSH');
      const key = randomUUID();
      const claim = await store.claim(key, 10_000);
      expect(claim.status).toBe('claimed');
      await client.script('FLUSH');
      expect((await store.claim(key, 10_000)).status).toBe('in-flight');
    } finally {
      client.disconnect();
    }
  });

  it('stores one key per event under the prefix, with the lease as its expiry', async () => {
    const client = newIoRedis();
    try {
      const store = createRedisDedupStore({ client, prefix: 'hookguard-test:' });
      const key = randomUUID();
      await store.claim(key, 5_000);
      const ttl = await client.pttl(`hookguard-test:${key}`);
      expect(ttl).toBeGreaterThan(4_000);
      expect(ttl).toBeLessThanOrEqual(5_000);
    } finally {
      client.disconnect();
    }
  });
});

describe.runIf(requireService('PostgreSQL', postgresAvailable))('PostgreSQL store', () => {
  const pool = newPool();
  const table = `hookguard_test_${randomUUID().slice(0, 8)}`;
  beforeAll(async () => {
    await createPostgresDedupStore({ pool, table }).ensureSchema();
  });
  afterAll(async () => {
    await pool.query(`DROP TABLE IF EXISTS ${table}`);
    await pool.end();
  });

  it('passes checkDedupStore', async () => {
    expect(await checkDedupStore(() => createPostgresDedupStore({ pool, table }))).toEqual([]);
  });

  it('ensureSchema is idempotent, and the exported SQL is what it runs', async () => {
    const store = createPostgresDedupStore({ pool, table });
    await store.ensureSchema();
    await store.ensureSchema();
    expect(postgresDedupSchema(table)).toContain(`CREATE TABLE IF NOT EXISTS "${table}"`);
    const { rows } = await pool.query(
      `SELECT indexname FROM pg_indexes WHERE tablename = $1 ORDER BY indexname`,
      [table],
    );
    expect(rows.map((r: { indexname: string }) => r.indexname)).toEqual([
      `${table}_expires_at_idx`,
      `${table}_pkey`,
    ]);
  });

  it('ensureSchema from several processes at once on a fresh database: every one resolves', async () => {
    // Each pool is its own sessions, as separate worker processes starting together are.
    const fresh = `hookguard_race_${randomUUID().slice(0, 8)}`;
    const pools = Array.from({ length: 6 }, () => newPool());
    try {
      for (let round = 0; round < 5; round++) {
        const results = await Promise.allSettled(
          pools.map((p) => createPostgresDedupStore({ pool: p, table: `${fresh}_${round}` }).ensureSchema()),
        );
        const failed = results.flatMap((r) =>
          r.status === 'rejected' ? [r.reason as Error & { code?: string }] : [],
        );
        expect(failed.map((err) => `${err.code}: ${err.message}`)).toEqual([]);
      }
    } finally {
      for (let round = 0; round < 5; round++) await pool.query(`DROP TABLE IF EXISTS ${fresh}_${round}`);
      await Promise.all(pools.map((p) => p.end()));
    }
  });

  it('prune() deletes expired rows only', async () => {
    const store = createPostgresDedupStore({ pool, table });
    const live = randomUUID();
    const dead = randomUUID();
    const a = await store.claim(live, 60_000);
    const b = await store.claim(dead, 60_000);
    if (a.status !== 'claimed' || b.status !== 'claimed') throw new Error('setup failed');
    await store.complete(dead, b.token, 1);
    await new Promise((r) => setTimeout(r, 20));
    expect(await store.prune()).toBeGreaterThanOrEqual(1);
    const { rows } = await pool.query(`SELECT key FROM ${table} WHERE key = ANY($1)`, [[live, dead]]);
    expect(rows.map((r: { key: string }) => r.key)).toEqual([live]);
  });

  it('refuses a table name that is not a plain identifier', () => {
    expect(() => createPostgresDedupStore({ pool, table: 'x; DROP TABLE users' })).toThrow(TypeError);
    expect(() => postgresDedupSchema('a.b.c')).toThrow(TypeError);
  });
});

describe('close()', () => {
  const stores = [
    {
      name: 'Redis',
      up: redisAvailable,
      async make() {
        const client = newIoRedis();
        return {
          store: createRedisDedupStore({ client, prefix: 'hookguard-close:' }),
          stillOpen: async () => (await client.ping()) === 'PONG',
          end: () => void client.disconnect(),
        };
      },
    },
    {
      name: 'PostgreSQL',
      up: postgresAvailable,
      async make() {
        const pool = newPool();
        const table = `hookguard_close_${process.pid}`;
        const store = createPostgresDedupStore({ pool, table });
        await store.ensureSchema();
        return {
          store,
          stillOpen: async () => (await pool.query('SELECT 1 AS one')).rows[0]?.one === 1,
          end: async () => {
            await pool.query(`DROP TABLE IF EXISTS "${table}"`);
            await pool.end();
          },
        };
      },
    },
  ];

  it.each(stores)(
    '$name: waits for the calls in flight, then refuses new ones, and leaves your client open',
    async ({ name, up, make }) => {
      if (!requireService(name, up)) return;
      const { store, stillOpen, end } = await make();
      try {
        const key = `close-${randomUUID()}`;
        const inFlight = Promise.resolve(store.claim(key, 60_000));
        await store.close();
        // The claim that was running when close() began has finished, and it counted.
        expect((await inFlight).status).toBe('claimed');
        await expect(Promise.resolve(store.claim(`${key}-after`, 60_000))).rejects.toMatchObject({
          code: 'STORE_UNAVAILABLE',
          message: expect.stringMatching(/store was closed/),
        });
        expect(await stillOpen()).toBe(true);
      } finally {
        await end();
      }
    },
  );
});
