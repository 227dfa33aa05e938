// The examples and the demo are part of the product: they run here exactly as a newcomer runs them.
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import { fileURLToPath } from 'node:url';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { chatwootEvent, signChatwootPayload, signStripePayload, stripeEvent } from '../src/testing/index.js';
import { runDemo } from '../scripts/demo.js';
import { createFastifyApp } from '../examples/fastify.js';
import { createHonoApp } from '../examples/fetch.js';
import { createKoaApp } from '../examples/koa.js';
import { createInboxGauges, createMetricsApp } from '../examples/metrics.js';
import { createBullMQInbox } from '../src/inbox/bullmq.js';
import { createPinoApp } from '../examples/pino.js';
import { Writable } from 'node:stream';
import { sleep } from './helpers/http.js';
import { listening, serveFetch } from './helpers/servers.js';
import { newIoRedis, redisUp, requireService } from './helpers/services.js';

const redisAvailable = await redisUp();
const ROOT = fileURLToPath(new URL('..', import.meta.url));

const secrets = { chatwoot: 'example-cw-secret', stripe: 'whsec_example' };
let close: (() => Promise<void>) | undefined;
afterEach(async () => {
  vi.restoreAllMocks();
  await close?.();
  close = undefined;
});

async function baseOf(server: Server): Promise<string> {
  const running = await listening(server);
  close = running.close;
  return running.url('');
}

async function exercise(base: string): Promise<number[]> {
  const cw = signChatwootPayload(chatwootEvent('message_created'), secrets.chatwoot);
  const st = signStripePayload(stripeEvent('checkout.session.completed'), secrets.stripe);
  const statuses: number[] = [];
  for (const [path, signed] of [
    ['/cw', cw],
    ['/cw', cw],
    ['/webhook/payments', st],
    ['/webhook/payments', st],
  ] as const) {
    const response = await fetch(`${base}${path}`, {
      method: 'POST',
      body: signed.body,
      headers: signed.headers,
    });
    statuses.push(response.status);
  }
  const forged = signChatwootPayload(chatwootEvent('message_created'), 'wrong');
  statuses.push(
    (await fetch(`${base}/cw`, { method: 'POST', body: forged.body, headers: forged.headers })).status,
  );
  return statuses;
}

describe('npm run demo', () => {
  it('prints one row per request and a summary where every handler ran exactly once', async () => {
    const lines: string[] = [];
    const result = await runDemo((line) => void lines.push(line));
    expect(result.rows.map((r) => `${r.status} ${r.outcome}`)).toEqual([
      '200 processed',
      '200 duplicate',
      '401 rejected SIGNATURE_MISMATCH',
      '200 ignored',
      '200 processed',
      '200 duplicate',
      '500 failed HANDLER_FAILED',
      '200 processed',
      '413 rejected BODY_TOO_LARGE',
    ]);
    expect(result.summary).toBe(
      '9 requests: 3 processed, 2 duplicates, 1 ignored, 2 rejected, 1 failed (then retried). ' +
        'Handlers ran: 1 reply, 2 fulfilments, each exactly once: yes.',
    );
    // Header, 9 rows, a blank line, the summary, a blank line, a title, then the server's console: one
    // line per warning or error.
    expect(lines.slice(0, 12).at(-1)).toBe(result.summary);
    expect(lines.slice(14).map((line) => line.split(':')[0])).toEqual([
      'hookguard warn',
      'hookguard error',
      'hookguard warn',
    ]);
    expect(lines.slice(14).join('\n')).toMatch(
      /X-Chatwoot-Signature does not match[^]*handler failed[^]*over the 4194304-byte limit/,
    );
  });
});

describe('examples', () => {
  it('fastify: verifies, dedupes and refuses forgeries, and keeps JSON for its other route', async () => {
    vi.spyOn(console, 'log').mockImplementation(() => {});
    const app = await createFastifyApp(secrets);
    await app.listen({ port: 0, host: '127.0.0.1' });
    const base = await baseOf(app.server);
    expect(await exercise(base)).toEqual([200, 200, 200, 200, 401]);
    const echo = await fetch(`${base}/api/echo`, {
      method: 'POST',
      body: '{"a":1}',
      headers: { 'content-type': 'application/json' },
    });
    expect(await echo.json()).toEqual({ a: 1 });
  });

  it('koa: verifies, dedupes and refuses forgeries', async () => {
    vi.spyOn(console, 'log').mockImplementation(() => {});
    const base = await baseOf(createKoaApp(secrets).listen(0, '127.0.0.1'));
    expect(await exercise(base)).toEqual([200, 200, 200, 200, 401]);
  });

  it('fetch (Hono): verifies, dedupes and refuses forgeries', async () => {
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    const app = createHonoApp(secrets);
    const base = await baseOf(serveFetch((request) => Promise.resolve(app.fetch(request))));
    expect(await exercise(base)).toEqual([200, 200, 200, 200, 401]);
    // One log line per processed event: the duplicates did not run the handlers again.
    expect(log).toHaveBeenCalledTimes(2);
  });
});

describe('observability examples', () => {
  it('metrics: /metrics counts a known sequence of deliveries by provider, result and status; /health has stats()', async () => {
    const base = await baseOf(createMetricsApp(secrets).listen(0, '127.0.0.1'));
    expect(await exercise(base)).toEqual([200, 200, 200, 200, 401]);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    const count = (labels: string) =>
      Number(new RegExp(`^webhook_deliveries_total\\{${labels}\\} (\\d+)$`, 'm').exec(metrics)?.[1] ?? 'NaN');
    expect(count('provider="chatwoot",result="processed",status="200"')).toBe(1);
    expect(count('provider="chatwoot",result="duplicate",status="200"')).toBe(1);
    expect(count('provider="chatwoot",result="rejected",status="401"')).toBe(1);
    expect(count('provider="stripe",result="processed",status="200"')).toBe(1);
    expect(count('provider="stripe",result="duplicate",status="200"')).toBe(1);
    expect(metrics).toMatch(/^webhook_duration_seconds_count\{provider="chatwoot"\} 3$/m);
    const health = (await (await fetch(`${base}/health`)).json()) as {
      chatwoot: { counts: Record<string, number>; storeSize: number };
    };
    expect(health.chatwoot.counts).toMatchObject({ processed: 1, duplicate: 1, rejected: 1 });
    expect(health.chatwoot.storeSize).toBe(1);
  });

  it('otel: `npx tsx examples/otel.ts` prints one trace: request → verify, claim, handler → the user span', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'examples/otel.ts'], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => void (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => void (output += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    expect(code, output).toBe(0);
    expect(output).toContain('POST /cw answered 200 {"ok":true}');
    // ConsoleSpanExporter prints each span as an object; the top-level keys are indented by two spaces.
    const spans = output
      .split(/^(?=\{$)/m)
      .filter((block) => block.startsWith('{'))
      .map((block) => ({
        name: /^ {2}name: '([^']*)'/m.exec(block)?.[1],
        traceId: /^ {2}traceId: '([0-9a-f]{32})'/m.exec(block)?.[1],
        id: /^ {2}id: '([0-9a-f]{16})'/m.exec(block)?.[1],
        parent:
          /^ {2}parentSpanContext: \{\n {4}traceId: '[0-9a-f]{32}',\n {4}spanId: '([0-9a-f]{16})'/m.exec(
            block,
          )?.[1],
        block,
      }));
    const named = (name: string) => {
      const found = spans.filter((s) => s.name === name);
      expect(found, `${name} in\n${output}`).toHaveLength(1);
      return found[0]!;
    };
    const request = named('hookguard.webhook chatwoot');
    const handler = named('hookguard.handler');
    const user = named('write reply');
    expect(request.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(request.parent).toBeUndefined();
    expect(request.block).toContain("'hookguard.outcome': 'processed'");
    expect(request.block).toContain("'hookguard.response.status_code': 200");
    for (const step of [named('hookguard.verify'), named('hookguard.claim'), handler]) {
      expect(step.parent).toBe(request.id);
    }
    expect(user.parent).toBe(handler.id);
    expect(new Set(spans.map((s) => s.traceId))).toEqual(new Set([request.traceId]));
    expect(spans).toHaveLength(5);
  });

  it('metrics: the inbox gauges never fail or hold up a scrape: a failing or silent engine reports up 0', async () => {
    for (const stats of [
      () => Promise.reject(new Error('ECONNREFUSED')),
      () => new Promise<never>(() => {}), // an engine that never answers
    ]) {
      const registry = new Registry();
      createInboxGauges(registry, { stats }, 200);
      const started = Date.now();
      const metrics = await registry.metrics();
      expect(Date.now() - started).toBeLessThan(2000);
      expect(metrics).toMatch(/^hookguard_inbox_up 0$/m);
      expect(metrics).not.toMatch(/^hookguard_inbox_jobs\{/m);
      expect(metrics).not.toMatch(/^hookguard_inbox_oldest_waiting_seconds\{/m);
    }
  });

  it('pino: structured lines with event, key, delivery id and outcome, and no secret or signature', async () => {
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString().split('\n').filter(Boolean))
          lines.push(JSON.parse(line) as Record<string, unknown>);
        done();
      },
    });
    const base = await baseOf(createPinoApp(secrets.chatwoot, sink).listen(0, '127.0.0.1'));
    const signed = signChatwootPayload(
      chatwootEvent('message_created', { content: 'secret plans 123' }),
      secrets.chatwoot,
      { deliveryId: 'd-77' },
    );
    expect(
      (await fetch(`${base}/cw`, { method: 'POST', body: signed.body, headers: signed.headers })).status,
    ).toBe(200);
    const processed = lines.find((l) => l.outcome === 'processed');
    expect(processed).toMatchObject({
      provider: 'chatwoot',
      event: 'message_created',
      deliveryId: 'd-77',
      status: 200,
    });
    expect(String(processed?.key)).toMatch(/^chatwoot:1:message_created:\d+$/);
    expect(lines.find((l) => l.msg === 'replying')).toMatchObject({ deliveryId: 'd-77' });
    const all = JSON.stringify(lines);
    expect(all).not.toContain(secrets.chatwoot);
    expect(all).not.toContain(signed.headers['x-chatwoot-signature']!.slice(7));
  });
});

describe.runIf(requireService('Redis', redisAvailable))('metrics example with an inbox', () => {
  it('/metrics reports the queue read at scrape time: jobs by state and the oldest waiting age', async () => {
    const queueName = `hg-metrics-example-${randomUUID()}`;
    vi.spyOn(console, 'warn').mockImplementation(() => {}); // "Redis has appendonly no" on this machine
    const inbox = createBullMQInbox({ connection: { host: '127.0.0.1', port: 6379 }, queueName });
    try {
      const base = await baseOf(createMetricsApp(secrets, inbox).listen(0, '127.0.0.1'));
      const scrape = async () => (await fetch(`${base}/metrics`)).text();
      const gauge = (metrics: string, name: string, labels: string) =>
        Number(new RegExp(`^${name}\\{${labels}\\} ([0-9.e+-]+)$`, 'm').exec(metrics)?.[1] ?? 'NaN');
      const queue = `queue="${queueName}"`;

      let metrics = await scrape();
      expect(metrics).toMatch(/^hookguard_inbox_up 1$/m);
      for (const state of ['waiting', 'active', 'delayed', 'failed']) {
        expect(gauge(metrics, 'hookguard_inbox_jobs', `${queue},state="${state}"`), state).toBe(0);
      }
      expect(gauge(metrics, 'hookguard_inbox_oldest_waiting_seconds', queue)).toBe(0);

      // Two events queued, no worker: they wait, and the oldest ages.
      for (const id of [1, 2]) {
        const signed = signChatwootPayload(chatwootEvent('message_created', { id }), secrets.chatwoot);
        const response = await fetch(`${base}/cw`, {
          method: 'POST',
          body: signed.body,
          headers: signed.headers,
        });
        expect(await response.text()).toBe('{"ok":true,"queued":true}');
      }
      await sleep(1100);
      metrics = await scrape();
      expect(gauge(metrics, 'hookguard_inbox_jobs', `${queue},state="waiting"`)).toBe(2);
      expect(gauge(metrics, 'hookguard_inbox_jobs', `${queue},state="active"`)).toBe(0);
      expect(gauge(metrics, 'hookguard_inbox_jobs', `${queue},state="failed"`)).toBe(0);
      const oldest = gauge(metrics, 'hookguard_inbox_oldest_waiting_seconds', queue);
      expect(oldest).toBeGreaterThanOrEqual(1);
      expect(oldest).toBeLessThan(30);
      // The request counters are still there, the events counted as queued.
      expect(metrics).toMatch(
        /^webhook_deliveries_total\{provider="chatwoot",result="queued",status="200"\} 2$/m,
      );
    } finally {
      await inbox.queue.obliterate({ force: true }).catch(() => undefined);
      await inbox.close();
      const redis = newIoRedis();
      const keys = await redis.keys(`hookguard:inbox:${queueName}:*`);
      if (keys.length > 0) await redis.del(...keys);
      redis.disconnect();
    }
  });
});

describe.runIf(requireService('Redis', redisAvailable))('inbox example (examples/inbox)', () => {
  it('web queues a message and answers its retry duplicate; the worker runs it once, attempt 1', async () => {
    // chatwoot.ts reads its settings when first imported: a queue of this run's own, a short "LLM".
    const queue = `hg-example-${randomUUID()}`;
    vi.stubEnv('HOOKGUARD_QUEUE', queue);
    vi.stubEnv('CW_HMAC_SECRET', secrets.chatwoot);
    vi.stubEnv('ANSWER_DELAY_MS', '300');
    const info: string[] = [];
    vi.spyOn(console, 'info').mockImplementation((line: unknown) => void info.push(String(line)));
    vi.spyOn(console, 'warn').mockImplementation(() => {}); // "Redis has appendonly no" on this machine
    const { inbox } = await import('../examples/inbox/chatwoot.js');
    const { createWebApp } = await import('../examples/inbox/web.js');
    const { startWorker } = await import('../examples/inbox/worker.js');
    let worker: ReturnType<typeof startWorker> | undefined;
    try {
      expect(inbox.queue.name).toBe(queue);
      const base = await baseOf(createWebApp().listen(0, '127.0.0.1'));
      const event = chatwootEvent('message_created', { content: 'What is a prime number?' });
      const deliver = async (timestamp: number) => {
        const signed = signChatwootPayload(event, secrets.chatwoot, { deliveryId: 'd-1', timestamp });
        const response = await fetch(`${base}/cw`, {
          method: 'POST',
          body: signed.body,
          headers: signed.headers,
        });
        return `${response.status} ${await response.text()}`;
      };
      const now = Math.floor(Date.now() / 1000);
      // The delivery, then Chatwoot's retry of it (re-signed, same body and delivery id); no worker yet.
      expect(await deliver(now)).toBe('200 {"ok":true,"queued":true}');
      expect(await deliver(now + 1)).toBe('200 {"ok":true,"duplicate":true}');
      expect(info).toEqual([]); // the web process runs no handler

      worker = startWorker();
      for (let i = 0; i < 200 && info.length === 0; i++) await sleep(50);
      await sleep(1000); // time for a second run, were there one
      expect(info).toEqual([
        expect.stringMatching(
          /^hookguard info: answered provider=chatwoot event=message_created .*attempt=1 /,
        ),
      ]);
      expect(worker.stats()).toMatchObject({ processed: 1, duplicate: 0, failed: 0 });
    } finally {
      await worker?.close(5000);
      await inbox.queue.obliterate({ force: true }).catch(() => undefined);
      await inbox.close();
      const redis = newIoRedis();
      const keys = await redis.keys(`hookguard:inbox:${queue}:*`);
      if (keys.length > 0) await redis.del(...keys);
      redis.disconnect();
      vi.unstubAllEnvs();
    }
  });
});
