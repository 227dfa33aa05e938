// One instance of the deploy recipes' tests, built on examples/deploy/server.ts's serve(): the recipe's own
// readiness route and graceful stop. Two routes, so one restart exercises both ways of handling: /cw runs
// its handler inline (HANDLER_MS, then records the message id in Redis) and /cw/queued only writes the event
// to a BullMQ inbox that ROLE=worker (run it once, outside the recipe) handles and records. Every handled id
// goes to the Redis list hg-deploy:<RUN>:<inline|queued>; the test counts lost and doubled ids there.
// DRAIN=off replaces the graceful stop by Node's default (exit at once), to show what the recipes prevent.
// Env: RUN, SECRET, PORT (0: any), QUEUE, HANDLER_MS, SHUTDOWN_DELAY_MS, ROLE, DRAIN.
import express from 'express';
import type { AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import { serve } from '../../examples/deploy/server.js';
import { chatwootWebhook } from '../../src/adapters/express.js';
import { createBullMQInbox } from '../../src/inbox/bullmq.js';
import { createRedisDedupStore } from '../../src/stores/redis.js';

const run = process.env.RUN ?? 'run';
const handlerMs = Number(process.env.HANDLER_MS ?? 150);
const redis = new Redis({ host: '127.0.0.1', port: 6379, enableOfflineQueue: false });
redis.on('error', () => undefined);
const inbox = createBullMQInbox({
  connection: { host: '127.0.0.1', port: 6379 },
  queueName: process.env.QUEUE ?? `hg-deploy-${run}`,
  backoffMs: 100,
  logger: false,
});
const record = (list: 'inline' | 'queued', id: unknown) =>
  redis.rpush(`hg-deploy:${run}:${list}`, String(id));
const pause = () => new Promise((resolve) => setTimeout(resolve, handlerMs));

const queued = {
  secret: process.env.SECRET,
  inbox,
  logger: false as const,
  on: {
    async message_created(event: { id?: unknown }) {
      await pause();
      await record('queued', event.id);
    },
  },
};

if (process.env.ROLE === 'worker') {
  inbox.worker({ chatwoot: queued, concurrency: 16 });
  process.once(
    'SIGTERM',
    () =>
      void inbox
        .close()
        .then(() => redis.quit())
        .then(() => process.exit(0)),
  );
  console.log('READY 0');
} else {
  const store = createRedisDedupStore({ client: redis, prefix: `hg-deploy:${run}:dedup:` });
  const inline = chatwootWebhook({
    secret: process.env.SECRET,
    store,
    logger: false,
    on: {
      async message_created(event) {
        await pause();
        await record('inline', event.id);
      },
    },
  });
  const toQueue = chatwootWebhook({ ...queued, store });
  const app = express();
  app.post('/cw', inline);
  app.post('/cw/queued', toQueue);
  const { server } = await serve(
    {
      app,
      health: { stores: { redis: store }, inboxes: { queue: inbox } },
      close: [inline, toQueue, inbox, { close: () => redis.quit() }],
    },
    Number(process.env.PORT ?? 0),
  );
  if (process.env.DRAIN === 'off') {
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      process.removeAllListeners(signal);
      process.once(signal, () => process.exit(0));
    }
  }
  console.log(`READY ${(server.address() as AddressInfo).port} ${process.pid}`);
}
