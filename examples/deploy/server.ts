// One instance of a bot's webhook server that restarts without handing a conversation to a human. Chatwoot
// retries neither a refused connection nor a request cut off by a dying process, so a deploy must (1) keep
// another instance, or the same listening socket, taking connections while this one stops, and (2) answer
// everything this one already received before it exits. `serve()` does (2) for every recipe in this folder:
// a readiness route for the load balancer, the graceful stop on SIGTERM / SIGINT, and PM2's `ready` signal.
// The recipes differ only in (1): pm2/ (cluster mode, `pm2 reload`), nginx/ (two instances, restarted one at
// a time) and kubernetes/ (readiness off, then drain). Run one instance: `npx tsx examples/deploy/server.ts`
// (PORT, REDIS_URL, CW_HMAC_SECRET, SHUTDOWN_DELAY_MS).
import express from 'express';
import type { Server } from 'node:http';
import { pathToFileURL } from 'node:url';
import { Redis } from 'ioredis';
import { chatwootWebhook } from 'hookguard/express';
import { createRedisDedupStore } from 'hookguard/redis';
import {
  createHealthCheck,
  stopGracefully,
  type Closeable,
  type GracefulStop,
  type HealthCheckOptions,
} from 'hookguard/shutdown';

/** What one instance serves: the webhook routes, what its readiness answer checks, what it closes. */
export interface Instance {
  app: express.Express;
  /** The stores and inboxes a load balancer should wait for. */
  health: Omit<HealthCheckOptions, 'stop'>;
  /** Closed in order once the last request was answered: the webhook handlers first, then the rest. */
  close: Closeable[];
}

/** Listens on `port` and stops gracefully on SIGTERM / SIGINT; resolves once it listens. */
export async function serve(
  instance: Instance,
  port: number,
  shutdownDelayMs = Number(process.env.SHUTDOWN_DELAY_MS ?? 0),
): Promise<{ server: Server; stop: GracefulStop }> {
  const { app } = instance;
  await untilReady(createHealthCheck(instance.health));
  const server = await new Promise<Server>((resolve, reject) => {
    const listening = app.listen(port, (err) => (err ? reject(err) : resolve(listening)));
  });
  // Under Kubernetes, readiness turns 503 at once and the server keeps serving for shutdownDelayMs, until
  // the Service stops sending here; then it drains. Bounded by timeoutMs, below the platform's own kill.
  const stop = stopGracefully(server, { close: instance.close, shutdownDelayMs, timeoutMs: 10_000 });
  const ready = createHealthCheck({ ...instance.health, stop });
  app.get('/ready', async (_req, res) => {
    const answer = await ready();
    res.status(answer.status).set(answer.headers).send(answer.body);
  });
  process.send?.('ready'); // PM2's wait_ready: the old instance is stopped only once this one listens
  return { server, stop };
}

/**
 * Listening before the stores answer would turn the first deliveries into 500s (a proxy that does not
 * check readiness sends them at once): wait for them, at most 30 s, then listen anyway (readiness says why).
 */
async function untilReady(check: () => Promise<{ status: number; body: string }>): Promise<void> {
  for (const deadline = Date.now() + 30_000; Date.now() < deadline;) {
    const answer = await check();
    if (answer.status === 200) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  console.warn('starting although a store or inbox does not answer: GET /ready says which');
}

/** The bot: Chatwoot messages answered inline, deduplicated in Redis across every instance. */
export function createBot(redis: Redis): Instance {
  const store = createRedisDedupStore({ client: redis });
  const chatwoot = chatwootWebhook({
    secret: process.env.CW_HMAC_SECRET,
    store,
    on: {
      async message_created(event, ctx) {
        // A real bot answers through Chatwoot's API here (examples/recipes/chatwoot-reply.ts).
        ctx.log.info({ conversation: event.conversation?.id }, 'answered');
      },
    },
  });
  const app = express();
  app.post('/cw', chatwoot);
  return {
    app,
    health: { stores: { redis: store } },
    close: [chatwoot, { close: () => redis.quit() }],
  };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { enableOfflineQueue: false });
  redis.on('error', (err: Error) => console.warn(`Redis: ${err.message}`));
  const port = Number(process.env.PORT ?? 3000);
  await serve(createBot(redis), port);
  console.log(`POST http://localhost:${port}/cw, readiness GET /ready (pid ${process.pid})`);
}
