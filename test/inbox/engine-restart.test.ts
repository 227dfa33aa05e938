// The engine itself restarting while deliveries arrive: a private redis-server (persistent, every write
// fsynced) is killed and started again mid-stream. Answers are 5xx during the outage, the sender retries
// like Stripe, nothing answered 200 is lost and nothing runs twice.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createStripeHandler } from '../../src/index.js';
import { createBullMQInbox } from '../../src/inbox/bullmq.js';
import { createStripeSender, stripeEvent } from '../../src/testing/index.js';
import { sleep } from '../helpers/http.js';
import { listening } from '../helpers/servers.js';

const SECRET = 'whsec_engine_restart';
const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const freePort = () =>
  new Promise<number>((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });

async function startRedis(port: number, dir: string): Promise<ChildProcess> {
  const child = spawn(
    'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--dir',
      dir,
      '--save',
      '',
      '--appendonly',
      'yes',
      '--appendfsync',
      'always',
    ],
    { stdio: 'ignore' },
  );
  for (let i = 0; i < 100; i++) {
    const up = await new Promise<boolean>((resolve) => {
      const socket = createServer().listen(port, '127.0.0.1');
      socket.once('listening', () => socket.close(() => resolve(false)));
      socket.once('error', () => resolve(true)); // taken: redis is listening
    });
    if (up) return child;
    await sleep(50);
  }
  throw new Error('private redis-server did not start');
}

describe('BullMQ inbox while its Redis restarts', () => {
  it('answers 5xx during the outage, loses nothing answered 200, runs nothing twice', async () => {
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'hookguard-redis-'));
    let redis = await startRedis(port, dir);
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    cleanups.push(() => void redis.kill('SIGKILL'));
    const connection = { host: '127.0.0.1', port };
    const inbox = createBullMQInbox({
      connection,
      queueName: 'restart',
      enqueueTimeoutMs: 300,
      backoffMs: 50,
    });
    cleanups.push(() => inbox.close().catch(() => undefined));
    const runs = new Map<string, number>();
    const options = {
      secret: SECRET,
      inbox,
      logger: false as const,
      onEvent: (event: { id: string }) => void runs.set(event.id, (runs.get(event.id) ?? 0) + 1),
    };
    const handle = createStripeHandler(options);
    const { createServer: httpServer } = await import('node:http');
    const server = httpServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        void handle({ method: 'POST', headers: req.headers, body: Buffer.concat(chunks) }).then((a) =>
          res.writeHead(a.status, a.headers).end(a.body),
        );
      });
    }).listen(0, '127.0.0.1');
    const running = await listening(server);
    cleanups.push(() => running.close());
    const worker = inbox.worker({ stripe: options, concurrency: 4, logger: false });
    cleanups.push(() => worker.close(3000));

    const stripe = createStripeSender({
      url: running.url('/'),
      secret: SECRET,
      attempts: 12,
      firstRetryMs: 100,
    });
    const events = Array.from({ length: 60 }, () => stripeEvent('invoice.paid'));
    const deliveries = events.map(async (event, i) => {
      await sleep(i * 50); // 20 per second over 3 s
      return stripe.deliver(event);
    });
    await sleep(1000);
    redis.kill('SIGKILL'); // every write so far was fsynced: what was acknowledged survives
    await sleep(1000);
    redis = await startRedis(port, dir);
    const results = await Promise.all(deliveries);

    expect(results.every((d) => d.delivered)).toBe(true);
    const statuses = results.flatMap((d) => d.attempts.map((a) => a.status));
    expect(statuses.filter((s) => s !== undefined && s >= 500).length).toBeGreaterThan(0); // the outage was seen
    for (let i = 0; i < 200 && runs.size < 60; i++) await sleep(50);
    await sleep(500);
    expect(runs.size).toBe(60);
    expect([...runs.values()].every((n) => n === 1)).toBe(true);
    console.log(
      `engine restart: 60 events, ${statuses.filter((s) => s === 503).length} answers 503 during the outage, all processed exactly once`,
    );
  }, 60_000);
});
