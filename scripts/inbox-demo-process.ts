// One process of `npm run demo:inbox`: ROLE=web (Express + hookguard, Chatwoot messages into the BullMQ
// inbox, prints READY <port>) or ROLE=worker (the bot: replies after REPLY_MS, counting each reply in
// Redis so the count survives the processes the demo kills). Env: REDIS_PORT, QUEUE, RUN, REPLY_MS.
import express from 'express';
import { Redis } from 'ioredis';
import type { AddressInfo } from 'node:net';
import { createBullMQInbox } from 'hookguard/bullmq';
import { chatwootWebhook } from 'hookguard/express';
import { createRedisDedupStore } from 'hookguard/redis';

const port = Number(process.env.REDIS_PORT ?? 6379);
const run = process.env.RUN ?? 'demo';
const replyMs = Number(process.env.REPLY_MS ?? 8000);
const redis = new Redis({ host: '127.0.0.1', port, maxRetriesPerRequest: null });
const inbox = createBullMQInbox({
  connection: { host: '127.0.0.1', port },
  queueName: process.env.QUEUE ?? 'hookguard-demo',
  backoffMs: 200,
  // The demo's Redis may keep nothing on disk; the demo says so once itself (the README's Durability).
  logger: false,
});
const bot = {
  secret: process.env.SECRET,
  inbox,
  logger: false as const,
  on: {
    // The LLM takes longer than Chatwoot waits (5 s); the reply is "sent" when it is ready.
    async message_created(event: { id?: number | null }) {
      await new Promise((resolve) => setTimeout(resolve, replyMs));
      await redis.hincrby(`hg-demo:${run}:replies`, String(event.id), 1);
    },
  },
};

if (process.env.ROLE === 'worker') {
  inbox.worker({
    chatwoot: bot,
    store: createRedisDedupStore({ client: redis, prefix: `hg-demo:${run}:dedup:` }),
    concurrency: 8,
    lockDurationMs: 2000,
    leaseMs: replyMs + 2000,
    inFlightDelayMs: 500,
    logger: false,
  });
  console.log('READY 0');
} else {
  const app = express();
  app.post('/cw', chatwootWebhook(bot));
  const server = app.listen(0, '127.0.0.1', () =>
    console.log(`READY ${(server.address() as AddressInfo).port}`),
  );
}
