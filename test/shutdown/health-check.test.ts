// The readiness answer a load balancer polls: 200 while the real Redis store and BullMQ inbox answer a round
// trip, 503 naming the check that failed (a store whose Redis is gone) within the bound, 503 once stopping.
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { createBullMQInbox } from '../../src/inbox/bullmq.js';
import { createMemoryDedupStore } from '../../src/index.js';
import { createHealthCheck } from '../../src/shutdown/index.js';
import { createRedisDedupStore } from '../../src/stores/redis.js';
import { freePort } from '../helpers/private-engines.js';
import { newIoRedis, redisUp, requireService } from '../helpers/services.js';

const available = await redisUp();
const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe.runIf(requireService('Redis', available))('createHealthCheck', () => {
  it('200 while the store and the inbox answer; 503 naming the store whose Redis is gone; 503 once stopping', async () => {
    const redis = newIoRedis();
    const gone = new Redis({
      port: await freePort(),
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
    });
    gone.on('error', () => undefined);
    const inbox = createBullMQInbox({
      connection: { host: '127.0.0.1', port: 6379 },
      queueName: `hg-health-${randomUUID()}`,
      logger: false,
    });
    cleanups.push(async () => {
      await inbox.queue.obliterate({ force: true }).catch(() => undefined);
      await inbox.close(1000);
      redis.disconnect();
      gone.disconnect();
    });
    const prefix = `hg-health:${randomUUID()}:`;
    const stores = {
      dedup: createRedisDedupStore({ client: redis, prefix }),
      local: createMemoryDedupStore(),
    };
    const healthy = await createHealthCheck({ stores, inboxes: { events: inbox } })();
    expect(healthy.status).toBe(200);
    expect(JSON.parse(healthy.body)).toEqual({
      ok: true,
      checks: {
        'store:dedup': { ok: true, ms: expect.any(Number) },
        'store:local': { ok: true, ms: expect.any(Number) },
        'inbox:events': { ok: true, ms: expect.any(Number) },
      },
    });
    expect(await redis.keys(`${prefix}*`)).toEqual([]); // the probe's key was released

    const t0 = performance.now();
    const broken = await createHealthCheck({
      stores: { ...stores, lost: createRedisDedupStore({ client: gone }) },
      timeoutMs: 1000,
    })();
    expect(performance.now() - t0).toBeLessThan(1500);
    expect(broken.status).toBe(503);
    expect(broken.headers['retry-after']).toBe('5');
    const body = JSON.parse(broken.body) as {
      ok: boolean;
      checks: Record<string, { ok: boolean; error?: string }>;
    };
    expect(body.ok).toBe(false);
    expect(body.checks['store:dedup']?.ok).toBe(true);
    expect(body.checks['store:lost']).toMatchObject({
      ok: false,
      error: expect.stringMatching(/^[A-Za-z0-9_.-]+$/),
    });
    expect(broken.body).not.toContain(String((gone.options as { port?: number }).port)); // no host or port

    const stopping = await createHealthCheck({ stores, stop: { stopping: true } })();
    expect(stopping).toMatchObject({ status: 503, body: '{"ok":false,"stopping":true}' });
  });
});
