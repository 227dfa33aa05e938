// One process of the inbox crash tests. ROLE=web: Express + hookguard with the BullMQ inbox, printing
// READY <port>; with KILL_AFTER_ANSWER it kills itself (SIGKILL) as soon as its first 200 is flushed.
// ROLE=worker: an inbox worker whose handler records each success in Redis; with CRASH_ON_FIRST it kills
// itself in the middle of an event's first run. Each success records its ctx.attempt. Env: QUEUE, RUN.
import express from 'express';
import type { AddressInfo } from 'node:net';
import { stripeWebhook } from '../../src/adapters/express.js';
import type { WebhookContext } from '../../src/index.js';
import { createBullMQInbox } from '../../src/inbox/bullmq.js';
import { createRedisDedupStore } from '../../src/stores/redis.js';
import { INBOX_SECRET } from './cluster.js';
import { newIoRedis } from './services.js';

const run = process.env.RUN ?? 'run';
const inbox = createBullMQInbox({
  connection: { host: '127.0.0.1', port: 6379 },
  queueName: process.env.QUEUE ?? 'hookguard-crash',
  backoffMs: 50,
  attempts: Number(process.env.ATTEMPTS ?? 8),
  logger: false,
});
const redis = newIoRedis();

const stripe = {
  secret: INBOX_SECRET,
  inbox,
  logger: false as const,
  onEvent: async (event: { id: string }, ctx: WebhookContext) => {
    if (
      process.env.CRASH_ON_FIRST === '1' &&
      (await redis.set(`hg-crash:${run}:${event.id}`, '1', 'NX')) === 'OK'
    ) {
      await new Promise((resolve) => setTimeout(resolve, 50)); // mid-handler
      process.kill(process.pid, 'SIGKILL');
    }
    // Events the test marked as failing until it declares the dependency healthy again.
    if (
      (await redis.sismember(`hg-forever:${run}`, event.id)) === 1 &&
      (await redis.exists(`hg-healthy:${run}`)) === 0
    ) {
      throw new Error('dependency down');
    }
    // About one event in five fails its first attempt.
    if (
      process.env.FAIL_FIRST === '1' &&
      event.id.charCodeAt(event.id.length - 1) % 5 === 0 &&
      (await redis.set(`hg-first:${run}:${event.id}`, '1', 'NX')) === 'OK'
    ) {
      throw new Error('flaky dependency');
    }
    await redis.hincrby(`hg-done:${run}`, event.id, 1);
    await redis.hset(`hg-attempt:${run}`, event.id, String(ctx.attempt));
  },
};

if (process.env.ROLE === 'worker') {
  inbox.worker({
    stripe,
    concurrency: Number(process.env.CONCURRENCY ?? 1),
    store: createRedisDedupStore({ client: redis, prefix: `hg-dedup:${run}:` }),
    lockDurationMs: 1000,
    leaseMs: 1500,
    inFlightDelayMs: 300,
    logger: false,
  });
  console.log('READY 0');
} else {
  const app = express();
  app.post('/stripe', (_req, res, next) => {
    if (process.env.KILL_AFTER_ANSWER === '1') {
      res.once('finish', () => {
        if (res.statusCode === 200) process.kill(process.pid, 'SIGKILL');
      });
    }
    next();
  });
  app.post('/stripe', stripeWebhook(stripe));
  const server = app.listen(0, '127.0.0.1', () => {
    console.log(`READY ${(server.address() as AddressInfo).port}`);
  });
}
