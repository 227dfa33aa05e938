// Attacks on hookguard/otel with real components: the OpenTelemetry SDK (processors and exporters that
// count, throw or hang), real HTTP servers through the Express adapter, BullMQ on the machine's Redis and
// pg-boss on its PostgreSQL. Each test asserts a promised property: it passes while the property holds.
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as api from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } from '@opentelemetry/core';
import { AggregationTemporality, MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
  type SpanExporter,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import express from 'express';
import { afterEach, describe, expect, it } from 'vitest';
import { chatwootWebhook, stripeWebhook } from '../../src/adapters/express.js';
import { createBullMQInbox, type BullMQInbox } from '../../src/inbox/bullmq.js';
import type { InboxJob } from '../../src/inbox/inbox.js';
import { createPgBossInbox } from '../../src/inbox/pg-boss.js';
import {
  createChatwootHandler,
  createMemoryDedupStore,
  type DedupStore,
  type WebhookHandler,
} from '../../src/index.js';
import type { InboxStats } from '../../src/inbox/inbox-stats.js';
import { openTelemetry } from '../../src/otel/index.js';
import {
  chatwootEvent,
  signChatwootPayload,
  signStripePayload,
  stripeEvent,
} from '../../src/testing/index.js';
import { send, sleep } from '../helpers/http.js';
import { listening, type Running } from '../helpers/servers.js';
import { DATABASE_URL, newIoRedis, postgresUp, redisUp, requireService } from '../helpers/services.js';

const [redis, postgres] = await Promise.all([redisUp(), postgresUp()]);
const SECRET = 'cw-attack-secret-0123456789';
const STRIPE_SECRET = 'whsec_attack_secret_0123456789';
/** What the payloads carry and no span, metric or carrier may. */
const CONTENT = 'PAYLOADMARK card 4242 student@example.com';
const HEADER_VALUE = 'HEADERMARK-9f8e7d';
const RAW_KEY = 'RAWKEYMARK';

// ---------------------------------------------------------------------------------------------------------
// An SDK of our own: any processors, a span counter, a propagator, diag messages kept.

class Counting implements SpanProcessor {
  readonly started = new Map<string, string>();
  readonly ended = new Map<string, number>();
  onStart(span: { spanContext(): api.SpanContext; name: string }): void {
    this.started.set(span.spanContext().spanId, span.name);
  }
  onEnd(span: ReadableSpan): void {
    const id = span.spanContext().spanId;
    this.ended.set(id, (this.ended.get(id) ?? 0) + 1);
  }
  open(): string[] {
    return [...this.started].filter(([id]) => !this.ended.has(id)).map(([, name]) => name);
  }
  forceFlush = () => Promise.resolve();
  shutdown = () => Promise.resolve();
}

class OnDemandReader extends MetricReader {
  constructor() {
    super({ aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE });
  }
  protected override onForceFlush = () => Promise.resolve();
  protected override onShutdown = () => Promise.resolve();
}

interface Sdk {
  spans(): ReadableSpan[];
  counting: Counting;
  reader: OnDemandReader;
  /** diag warnings and errors (an ended span ended again, an invalid attribute, a processor failure). */
  diag: string[];
  shutdown(): Promise<void>;
}

let sdk: Sdk | undefined;
const cleanups: (() => Promise<unknown> | unknown)[] = [];
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => void unhandled.push(reason);
process.on('unhandledRejection', onUnhandled);

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  await sdk?.shutdown();
  sdk = undefined;
  expect(unhandled.splice(0)).toEqual([]);
});

function startSdk(
  options: {
    processors?: readonly SpanProcessor[];
    propagator?: api.TextMapPropagator;
    exporter?: SpanExporter;
  } = {},
): Sdk {
  const exporter = new InMemorySpanExporter();
  const counting = new Counting();
  const spanProcessors: SpanProcessor[] = [counting, ...(options.processors ?? [])];
  spanProcessors.push(new SimpleSpanProcessor(exporter));
  if (options.exporter !== undefined) spanProcessors.push(new SimpleSpanProcessor(options.exporter));
  const tracerProvider = new BasicTracerProvider({ spanProcessors });
  const reader = new OnDemandReader();
  const meterProvider = new MeterProvider({ readers: [reader] });
  const diag: string[] = [];
  const keep = (message: string, ...args: unknown[]) =>
    void diag.push([message, ...args.map((a) => (a instanceof Error ? a.message : String(a)))].join(' '));
  api.diag.setLogger(
    { error: keep, warn: keep, info: () => undefined, debug: () => undefined, verbose: () => undefined },
    api.DiagLogLevel.WARN,
  );
  api.trace.setGlobalTracerProvider(tracerProvider);
  api.metrics.setGlobalMeterProvider(meterProvider);
  api.context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  api.propagation.setGlobalPropagator(options.propagator ?? new W3CTraceContextPropagator());
  sdk = {
    spans: () => exporter.getFinishedSpans(),
    counting,
    reader,
    diag,
    async shutdown() {
      api.trace.disable();
      api.context.disable();
      api.propagation.disable();
      api.metrics.disable();
      api.diag.disable();
      await Promise.all([tracerProvider.shutdown(), meterProvider.shutdown()]).catch(() => undefined);
    },
  };
  return sdk;
}

async function until(check: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await sleep(20);
  }
}

/** Everything a span exports, as one string. */
const exported = (spans: readonly ReadableSpan[]) =>
  JSON.stringify(
    spans.map((s) => ({
      name: s.name,
      attributes: s.attributes,
      events: s.events,
      status: s.status,
      links: s.links,
      traceState: s.spanContext().traceState?.serialize(),
    })),
  );

async function metricPoints(reader: MetricReader) {
  const { resourceMetrics, errors } = await reader.collect();
  const points: { name: string; attributes: api.Attributes; value: unknown }[] = [];
  for (const scope of resourceMetrics.scopeMetrics) {
    for (const metric of scope.metrics) {
      for (const p of metric.dataPoints) {
        points.push({ name: metric.descriptor.name, attributes: { ...p.attributes }, value: p.value });
      }
    }
  }
  return { points, errors };
}

function signedChatwoot(id: number, content = CONTENT, name: 'message_created' = 'message_created') {
  const event = chatwootEvent(name, {
    id,
    content,
    conversation: { id: 100_000 + id },
    account: { id: 200_000 + id },
  });
  return signChatwootPayload(event, SECRET);
}

async function serve(app: express.Express): Promise<Running> {
  const running = await listening(app.listen(0, '127.0.0.1'));
  cleanups.push(() => running.close());
  return running;
}

function bullmqInbox(extra: Partial<Parameters<typeof createBullMQInbox>[0]> = {}): BullMQInbox {
  const inbox = createBullMQInbox({
    connection: { host: '127.0.0.1', port: 6379 },
    queueName: `hg-attack-${randomUUID()}`,
    backoffMs: 50,
    logger: false,
    ...extra,
  });
  cleanups.push(async () => {
    await inbox.close(2000).catch(() => undefined);
    await inbox.queue.obliterate({ force: true }).catch(() => undefined);
    await inbox.queue.close().catch(() => undefined);
  });
  return inbox;
}

/** A job as the web side writes it, for writing hostile ones straight to the queue. */
function jobOf(id: number, patch: Record<string, unknown> = {}): InboxJob & Record<string, unknown> {
  return {
    provider: 'chatwoot',
    event: chatwootEvent('message_created', { id, content: `job ${id}` }),
    key: `attack:${id}`,
    deliveryId: undefined,
    name: 'message_created',
    ...patch,
  };
}

// ---------------------------------------------------------------------------------------------------------

describe('1. spans never carry a payload, a header value, a signature, a secret or a raw key', () => {
  it('every error path, over real HTTP', async () => {
    const { spans, counting } = startSdk();
    const telemetry = openTelemetry(api);
    const failingStore: DedupStore = {
      claim: () => Promise.reject(new Error(`store down while holding ${CONTENT}`)),
      complete: () => undefined,
      release: () => undefined,
    };
    const messaging = { system: 'bullmq', destination: 'q', messageId: (k: string) => `id-${k.length}` };
    const downInbox = {
      enqueue: () => Promise.reject(new Error(`inbox down: ${CONTENT}`)),
      messaging,
    };
    const okInbox = { enqueue: async () => 'queued' as const, messaging };
    const common = { logger: false as const, telemetry, maxBodyBytes: 4096 };
    const handlerOf = (content: string) => {
      if (content.includes('throw-error')) throw new TypeError(`could not answer ${CONTENT}`);
      if (content.includes('throw-string')) throw `a string: ${CONTENT}`;
      if (content.includes('throw-object')) throw { secret: SECRET, content: CONTENT };
      return undefined;
    };
    const dedupKey = (event: { content?: unknown; id?: unknown }) => {
      if (String(event.content).includes('throw-key')) throw new Error(`no key for ${CONTENT}`);
      return `${RAW_KEY}-${String(event.id)}-${String(event.content)}`;
    };
    const app = express();
    app.post(
      '/cw',
      chatwootWebhook({
        ...common,
        secret: SECRET,
        dedupKey: dedupKey as never,
        on: { message_created: (e) => handlerOf(String(e.content)) },
      }),
    );
    app.post(
      '/nosecret',
      chatwootWebhook({ ...common, secret: '', on: { message_created: () => undefined } }),
    );
    app.post(
      '/store-down',
      chatwootWebhook({
        ...common,
        secret: SECRET,
        store: failingStore,
        on: { message_created: () => undefined },
      }),
    );
    app.post(
      '/inbox-down',
      chatwootWebhook({
        ...common,
        secret: SECRET,
        inbox: downInbox,
        dedupKey: dedupKey as never,
        on: { message_created: () => undefined },
      }),
    );
    app.post(
      '/orderkey',
      chatwootWebhook({
        ...common,
        secret: SECRET,
        inbox: okInbox,
        orderKey: () => {
          throw new Error(`no order for ${CONTENT}`);
        },
        on: { message_created: () => undefined },
      }),
    );
    app.post(
      '/stripe',
      stripeWebhook({
        ...common,
        secret: STRIPE_SECRET,
        on: { 'payment_intent.succeeded': () => undefined },
      }),
    );
    const server = await serve(app);
    const sent: { path: string; body: string; headers: Record<string, string>; expect: number }[] = [];
    const cw = (
      path: string,
      content: string,
      expectStatus: number,
      id = Math.floor(Math.random() * 1e9),
    ) => {
      const { body, headers } = signedChatwoot(id, content);
      sent.push({
        path,
        body,
        headers: { ...headers, 'x-custom-token': HEADER_VALUE },
        expect: expectStatus,
      });
    };
    cw('/cw', `${CONTENT} ok`, 200);
    cw('/cw', `${CONTENT} throw-error`, 500);
    cw('/cw', `${CONTENT} throw-string`, 500);
    cw('/cw', `${CONTENT} throw-object`, 500);
    cw('/cw', `${CONTENT} throw-key`, 500);
    cw('/nosecret', CONTENT, 500);
    cw('/store-down', CONTENT, 503);
    cw('/inbox-down', CONTENT, 503);
    cw('/orderkey', CONTENT, 500);
    // Body too large, bad JSON (signed), a forged signature, a timestamp out of range.
    const big = signedChatwoot(1, CONTENT.repeat(200));
    sent.push({ path: '/cw', ...big, expect: 413 });
    const badJson = signChatwootPayload(`{"content": "${CONTENT}", `, SECRET);
    sent.push({ path: '/cw', ...badJson, expect: 400 });
    const forged = signChatwootPayload(
      chatwootEvent('message_created', { content: CONTENT }),
      'wrong-secret',
    );
    sent.push({ path: '/cw', ...forged, expect: 401 });
    const old = signStripePayload(
      JSON.stringify(stripeEvent('payment_intent.succeeded', { data: { object: { description: CONTENT } } })),
      STRIPE_SECRET,
      { timestamp: Math.floor(Date.now() / 1000) - 3600 },
    );
    sent.push({ path: '/stripe', ...old, expect: 400 });
    const answers = await Promise.all(
      sent.map((s) => send(server.url(s.path), { body: s.body, headers: s.headers })),
    );
    const statuses = answers.map((a) => a.status);
    // Not the property under attack, but what each path is: 4xx for the sender's faults, 5xx for ours.
    expect(statuses.map((s) => Math.floor(s / 100))).toEqual(sent.map((s) => Math.floor(s.expect / 100)));
    await until(() => counting.open().length === 0, 2000).catch(() => undefined);
    expect(counting.open()).toEqual([]);
    const all = spans();
    expect(all.filter((s) => s.name.startsWith('hookguard.webhook')).length).toBe(sent.length);
    const text = exported(all);
    const forbidden = [
      'PAYLOADMARK',
      '4242',
      'student@example.com',
      SECRET,
      STRIPE_SECRET,
      'wrong-secret',
      HEADER_VALUE,
      RAW_KEY,
      ...sent.flatMap((s) => [
        s.headers['x-chatwoot-delivery'],
        s.headers['x-chatwoot-signature']?.slice(7, 40),
        s.headers['stripe-signature']?.slice(-40),
      ]),
    ].filter((x): x is string => typeof x === 'string' && x.length > 0);
    for (const secretish of forbidden) expect(text, secretish).not.toContain(secretish);
  });

  it('a job carries only trace context in Redis: not the baggage an outside request brought in', async () => {
    if (!requireService('Redis', redis)) return;
    startSdk({
      propagator: new CompositePropagator({
        propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()],
      }),
    });
    const inbox = bullmqInbox();
    const handler = createChatwootHandler({
      secret: SECRET,
      logger: false,
      inbox,
      telemetry: openTelemetry(api),
      on: { message_created: () => undefined },
    });
    // What NodeSDK's HTTP instrumentation puts in the context from the provider's request headers
    // (`traceparent`, `tracestate`, `baggage`): header values the sender chose.
    const incoming = api.propagation.extract(api.ROOT_CONTEXT, {
      traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
      baggage: `leak=${encodeURIComponent(HEADER_VALUE)}`,
    });
    const { body, headers } = signedChatwoot(77);
    const answer = await api.context.with(incoming, () => handler({ method: 'POST', headers, body }));
    expect(answer.status).toBe(200);
    const [job] = await inbox.queue.getJobs(['waiting', 'delayed', 'active', 'completed', 'prioritized']);
    const traceContext = (job?.data as InboxJob | undefined)?.traceContext ?? {};
    expect(Object.keys(traceContext)).toContain('traceparent');
    expect(JSON.stringify(traceContext)).not.toContain(HEADER_VALUE);
    expect(JSON.stringify(job?.data)).not.toContain(SECRET);
  });

  it('a pg-boss job carries only traceparent (and tracestate) in PostgreSQL', async () => {
    if (!requireService('PostgreSQL', postgres)) return;
    startSdk();
    const queueName = `hg_attack_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
    const inbox = createPgBossInbox({ connection: DATABASE_URL, queueName, logger: false });
    cleanups.push(async () => {
      await inbox.boss.deleteQueue(queueName).catch(() => undefined);
      await inbox.close(2000);
    });
    const handler = createChatwootHandler({
      secret: SECRET,
      logger: false,
      inbox,
      telemetry: openTelemetry(api),
      on: { message_created: () => undefined },
    });
    const { body, headers } = signedChatwoot(78);
    expect((await handler({ method: 'POST', headers, body })).status).toBe(200);
    const pool = new (await import('pg')).default.Pool({ connectionString: DATABASE_URL });
    cleanups.push(() => pool.end());
    const { rows } = await pool.query<{ data: InboxJob }>(`SELECT data FROM pgboss.job WHERE name = $1`, [
      queueName,
    ]);
    expect(rows).toHaveLength(1);
    const traceContext = rows[0]!.data.traceContext ?? {};
    expect(Object.keys(traceContext).filter((k) => k !== 'traceparent' && k !== 'tracestate')).toEqual([]);
    expect(traceContext.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/);
  });
});

// ---------------------------------------------------------------------------------------------------------

/** What a handler answers to: a fresh event, the same again, a forged one, one whose handler fails. */
async function answersOf(handle: WebhookHandler): Promise<unknown[]> {
  const id = Math.floor(Math.random() * 1e9);
  const good = signedChatwoot(id, 'hello');
  const failing = signedChatwoot(id + 1, 'fail');
  const forged = signChatwootPayload(chatwootEvent('message_created', { id: id + 2 }), 'nope');
  const out: unknown[] = [];
  for (const { body, headers } of [good, good, forged, failing, failing]) {
    let answer: Promise<{ status: number }>;
    try {
      answer = handle({ method: 'POST', headers, body });
    } catch (err) {
      out.push(`threw synchronously: ${(err as Error).message}`);
      continue;
    }
    out.push(
      await answer.then(
        (a) => a.status,
        (err: Error) => `rejected: ${err.message}`,
      ),
    );
  }
  // What was counted: a claim left held shows as in-flight (Chatwoot's in-flight answer is a 200).
  out.push(handle.stats().counts);
  return out;
}

const chatwootOn = {
  message_created: (e: { content?: unknown }) => {
    if (e.content === 'fail') throw new Error('handler failed');
  },
};

class Throwing implements SpanProcessor {
  constructor(private readonly where: 'onStart' | 'onEnd') {}
  onStart(): void {
    if (this.where === 'onStart') throw new Error('span processor onStart fails');
  }
  onEnd(): void {
    if (this.where === 'onEnd') throw new Error('span processor onEnd fails');
  }
  forceFlush = () => Promise.resolve();
  shutdown = () => Promise.resolve();
}

const throwingMeterProvider: api.MeterProvider = {
  getMeter: () =>
    new Proxy({} as api.Meter, {
      get: () => () =>
        new Proxy(
          {},
          {
            get: () => () => {
              throw new Error('instrument fails');
            },
          },
        ),
    }),
};

const throwingPropagator = (where: 'inject' | 'extract'): api.TextMapPropagator => {
  const w3c = new W3CTraceContextPropagator();
  return {
    inject(context, carrier, setter) {
      if (where === 'inject') throw new Error('inject fails');
      w3c.inject(context, carrier, setter);
    },
    extract(context, carrier, getter) {
      if (where === 'extract') throw new Error('extract fails');
      return w3c.extract(context, carrier, getter);
    },
    fields: () => w3c.fields(),
  };
};

describe('2. telemetry never changes an answer or loses an event', () => {
  const baseline = async () =>
    answersOf(createChatwootHandler({ secret: SECRET, logger: false, on: chatwootOn }));

  it.each([
    ['an exporter that throws', { exporter: throwingExporter() }],
    ['a span processor whose onStart throws', { processors: [new Throwing('onStart')] }],
    ['a span processor whose onEnd throws', { processors: [new Throwing('onEnd')] }],
  ] as const)('inline, with %s: the same answers as without telemetry', async (_, sdkOptions) => {
    const expected = await baseline();
    expect(expected.slice(0, 5)).toEqual([200, 200, 401, 500, 500]);
    startSdk(sdkOptions);
    const handle = createChatwootHandler({
      secret: SECRET,
      logger: false,
      telemetry: openTelemetry(api),
      on: chatwootOn,
    });
    expect(await answersOf(handle)).toEqual(expected);
  });

  it('inline, with a meter provider whose instruments throw: same answers, claims settled, spans ended', async () => {
    const expected = await baseline();
    const { counting } = startSdk();
    const handle = createChatwootHandler({
      secret: SECRET,
      logger: false,
      telemetry: openTelemetry(api, { meterProvider: throwingMeterProvider }),
      on: chatwootOn,
    });
    // The second delivery of the good event must be a duplicate (its claim completed), the second
    // failing one a retry that runs again (its claim released), not IN_FLIGHT.
    expect(await answersOf(handle)).toEqual(expected);
    expect(counting.open()).toEqual([]);
  });

  it('with an inbox and a propagator whose inject throws: still 200 queued, the job written', async () => {
    startSdk({ propagator: throwingPropagator('inject') });
    const jobs: InboxJob[] = [];
    const inbox = { enqueue: async (job: InboxJob) => (jobs.push(job), 'queued' as const) };
    const handle = createChatwootHandler({
      secret: SECRET,
      logger: false,
      inbox,
      telemetry: openTelemetry(api),
      on: chatwootOn,
    });
    const { body, headers } = signedChatwoot(5);
    let status: number | string;
    try {
      status = (await handle({ method: 'POST', headers, body })).status;
    } catch (err) {
      status = `threw ${(err as Error).message}`;
    }
    expect(status).toBe(200);
    expect(jobs).toHaveLength(1);
  });

  it.each([
    ['a propagator whose extract throws', () => startSdk({ propagator: throwingPropagator('extract') }), {}],
    ['a span processor whose onStart throws', () => startSdk({ processors: [new Throwing('onStart')] }), {}],
    ['a meter whose instruments throw', () => startSdk(), { meterProvider: throwingMeterProvider }],
  ] as const)(
    'a BullMQ worker with %s runs each job exactly once and completes it',
    async (_, start, otelOptions) => {
      if (!requireService('Redis', redis)) return;
      start();
      const inbox = bullmqInbox({ attempts: 3 });
      const runs = new Map<number, number>();
      const worker = inbox.worker({
        logger: false,
        telemetry: openTelemetry(api, otelOptions),
        chatwoot: {
          on: { message_created: (e) => void runs.set(Number(e.id), (runs.get(Number(e.id)) ?? 0) + 1) },
        },
      });
      const ids = [1, 2, 3];
      for (const id of ids) await inbox.queue.add('attack', jobOf(id), { attempts: 3, backoff: 50 });
      await until(() => ids.every((id) => runs.get(id) === 1), 5000).catch(() => undefined);
      await sleep(400); // a run that failed after the handler would be retried (and dead-lettered) now
      expect(Object.fromEntries(runs)).toEqual({ 1: 1, 2: 1, 3: 1 });
      const counts = await inbox.queue.getJobCounts('completed', 'failed', 'delayed', 'waiting', 'active');
      expect(counts).toMatchObject({ completed: 3, failed: 0, delayed: 0 });
      expect(worker.stats()).toMatchObject({ processed: 3, failed: 0 });
    },
  );
});

function throwingExporter(): SpanExporter {
  return {
    export: () => {
      throw new Error('exporter fails');
    },
    shutdown: () => Promise.resolve(),
  };
}

// ---------------------------------------------------------------------------------------------------------

describe('3. context isolation under load', () => {
  it("200 concurrent requests over HTTP: each user span nests under its own request's handler span", async () => {
    const { spans, counting } = startSdk();
    const tracer = api.trace.getTracer('attack');
    const app = express();
    // The framework's HTTP span, as instrumentation-http makes it, tagged with the request's own id.
    app.use((req, _res, next) => {
      const span = tracer.startSpan('POST /cw', {
        attributes: { 'test.id': String(req.headers['x-test-id']) },
      });
      _res.on('finish', () => span.end());
      api.context.with(api.trace.setSpan(api.context.active(), span), next);
    });
    let done = 0;
    app.post(
      '/cw',
      chatwootWebhook({
        secret: SECRET,
        logger: false,
        telemetry: openTelemetry(api),
        ackAfterMs: 40,
        on: {
          message_created: async (event) => {
            const id = Number(event.id);
            await sleep(id % 3 === 0 ? 80 + (id % 50) : id % 25);
            await tracer.startActiveSpan(
              'user.work',
              { attributes: { 'test.id': String(id) } },
              async (s) => {
                await sleep(id % 7);
                tracer.startSpan('user.inner').end();
                s.end();
              },
            );
            done++;
          },
        },
      }),
    );
    const server = await serve(app);
    const ids = Array.from({ length: 200 }, (_, i) => i + 1);
    const answers = await Promise.all(
      ids.map((id) => {
        const { body, headers } = signedChatwoot(id, `msg ${id}`);
        return send(server.url('/cw'), { body, headers: { ...headers, 'x-test-id': String(id) } });
      }),
    );
    expect(answers.every((a) => a.status === 200 || a.status === 202)).toBe(true);
    expect(answers.some((a) => a.status === 202)).toBe(true);
    await until(() => done === 200 && counting.open().length === 0, 10_000).catch(() => undefined);
    expect(counting.open()).toEqual([]);
    expect([...counting.ended.values()].every((n) => n === 1)).toBe(true);
    const all = spans();
    const byId = new Map(all.map((s) => [s.spanContext().spanId, s]));
    const parentOf = (s: ReadableSpan) => byId.get(s.parentSpanContext?.spanId ?? '');
    const users = all.filter((s) => s.name === 'user.work');
    expect(users).toHaveLength(200);
    const wrong: string[] = [];
    for (const user of users) {
      const run = parentOf(user);
      const request = run && parentOf(run);
      const http = request && parentOf(request);
      if (run?.name !== 'hookguard.handler' || request?.name !== 'hookguard.webhook chatwoot') {
        wrong.push(`${String(user.attributes['test.id'])}: parents ${run?.name} / ${request?.name}`);
      } else if (http?.attributes['test.id'] !== user.attributes['test.id']) {
        wrong.push(`${String(user.attributes['test.id'])} under ${String(http?.attributes['test.id'])}`);
      }
    }
    expect(wrong).toEqual([]);
    for (const inner of all.filter((s) => s.name === 'user.inner')) {
      expect(parentOf(inner)?.name).toBe('user.work');
    }
    expect(sdk!.diag).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------------------

describe.runIf(requireService('Redis', redis))('4. a hostile traceContext (and job) from the queue', () => {
  it('does not crash the worker, is bounded, and joins no huge or invalid context', async () => {
    const { spans, counting } = startSdk();
    const inbox = bullmqInbox();
    const runs = new Map<number, number>();
    const worker = inbox.worker({
      logger: false,
      concurrency: 4,
      telemetry: openTelemetry(api),
      chatwoot: {
        on: { message_created: (e) => void runs.set(Number(e.id), (runs.get(Number(e.id)) ?? 0) + 1) },
      },
    });
    const validParent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    const thousands = Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`k${i}`, 'v'.repeat(20)]));
    const hostile: Record<number, unknown> = {
      1: { traceparent: `00-${'a'.repeat(32)}-${'b'.repeat(16)}-01`.repeat(50_000) },
      2: thousands,
      3: { ...thousands, traceparent: validParent },
      4: { traceparent: 42, tracestate: { nested: true }, baggage: ['x'] },
      5: JSON.parse(`{"__proto__": {"traceparent": "${validParent}"}, "constructor": "x", "toString": "y"}`),
      6: { traceparent: `00-${'0'.repeat(32)}-${'0'.repeat(16)}-01` },
      7: { traceparent: '00-zzzz-yyyy-01' },
      8: 'traceparent',
      9: [validParent],
      10: null,
      11: { traceparent: validParent, tracestate: `a=${'x'.repeat(250)},b=${'y'.repeat(250)}` },
      12: { traceparent: validParent, tracestate: 'k=v,'.repeat(10_000) },
    };
    for (const [id, traceContext] of Object.entries(hostile)) {
      await inbox.queue.add('attack', jobOf(Number(id), { traceContext }), { attempts: 2, backoff: 50 });
    }
    const ids = Object.keys(hostile).map(Number);
    await until(() => ids.every((id) => runs.get(id) === 1), 8000).catch(() => undefined);
    await until(() => counting.open().length === 0, 1000).catch(() => undefined);
    expect(Object.fromEntries(runs)).toEqual(Object.fromEntries(ids.map((id) => [id, 1])));
    expect(worker.stats()).toMatchObject({ processed: ids.length, failed: 0 });
    expect(counting.open()).toEqual([]);
    const processes = spans().filter((s) => s.name.startsWith('process '));
    expect(processes).toHaveLength(ids.length);
    const validTrace = validParent.split('-')[1];
    for (const span of processes) {
      const { traceId } = span.spanContext();
      const parent = span.parentSpanContext;
      // Joined a context only where the carrier holds a valid traceparent within bounds.
      if (parent !== undefined) expect(traceId).toBe(validTrace);
      expect(span.spanContext().traceState?.serialize().length ?? 0).toBeLessThanOrEqual(512);
    }
    expect(exported(processes).length).toBeLessThan(50_000);
  });

  it('a hostile job name is bounded on the process span (it is queue data, like the trace context)', async () => {
    const { spans } = startSdk();
    const inbox = bullmqInbox();
    let ran = 0;
    inbox.worker({
      logger: false,
      telemetry: openTelemetry(api),
      chatwoot: { on: { message_created: () => void ran++ } },
    });
    await inbox.queue.add('attack', jobOf(1, { name: `message_created ${CONTENT}`.repeat(5000) }));
    await inbox.queue.add('attack', jobOf(2, { name: { nested: CONTENT } }));
    await until(() => ran === 2 && spans().filter((s) => s.name.startsWith('process ')).length === 2);
    const unbounded = spans()
      .filter((s) => s.name.startsWith('process '))
      .map((s) => s.attributes['hookguard.event'])
      .filter((n) => !(n === undefined || (typeof n === 'string' && n.length <= 100)))
      .map((n) => (typeof n === 'string' ? `a string of ${n.length} characters` : typeof n));
    expect(unbounded).toEqual([]);
    expect(sdk!.diag.filter((d) => d.includes('Invalid attribute'))).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------------------

describe.runIf(requireService('Redis', redis))(
  '5. worker outcomes: one process span each, runs metric equals stats()',
  () => {
    it('processed, ignored, retried, duplicate, in-flight, no handler, store failing on claim', async () => {
      const { spans, counting, reader } = startSdk();
      const inbox = bullmqInbox({ attempts: 3 });
      const memory = createMemoryDedupStore();
      cleanups.push(() => memory.close?.());
      let storeFails = 1;
      const store: DedupStore = {
        claim: (key, leaseMs) => {
          if (key === 'attack:6' && storeFails-- > 0) return Promise.reject(new Error('store down'));
          return memory.claim(key, leaseMs);
        },
        complete: (key, token, ttl) => memory.complete(key, token, ttl),
        release: (key, token) => memory.release(key, token),
      };
      const held = memory.claim('attack:5', 60_000);
      const runs = new Map<number, number>();
      const worker = inbox.worker({
        logger: false,
        store,
        inFlightDelayMs: 100,
        telemetry: openTelemetry(api),
        chatwoot: {
          on: {
            message_created: (e, ctx) => {
              runs.set(Number(e.id), (runs.get(Number(e.id)) ?? 0) + 1);
              if (e.id === 3 && ctx.attempt === 1) throw new Error('first attempt fails');
            },
          },
        },
      });
      const add = (id: number, patch: Record<string, unknown> = {}) =>
        inbox.queue.add('attack', jobOf(id, patch), { attempts: 3, backoff: 50 });
      await add(1);
      await add(2, { event: chatwootEvent('conversation_created', { id: 2 }), name: 'conversation_created' });
      await add(3);
      await add(5);
      await add(6);
      await add(7, { namespace: 'elsewhere' });
      await until(() => runs.get(1) === 1);
      await add(4, { key: 'attack:1' }); // the key of a run that completed: a duplicate
      await until(() => worker.stats().deferred >= 2);
      if (held.status === 'claimed') memory.release('attack:5', held.token);
      await until(
        () => runs.get(5) === 1 && runs.get(3) === 2 && runs.get(6) === 1 && worker.stats().duplicate === 1,
      );
      await inbox.queue
        .remove(
          (await inbox.queue.getJobs(['delayed', 'waiting'])).find(
            (j) => (j.data as InboxJob).namespace === 'elsewhere',
          )?.id ?? '',
        )
        .catch(() => undefined);
      await worker.close(2000);
      await until(() => counting.open().length === 0, 1000).catch(() => undefined);
      expect(counting.open()).toEqual([]);
      expect([...counting.ended.values()].every((n) => n === 1)).toBe(true);
      const stats = worker.stats();
      const processes = spans().filter((s) => s.name.startsWith('process '));
      const byOutcome = (o: string) => processes.filter((s) => s.attributes['hookguard.outcome'] === o);
      const { points } = await metricPoints(reader);
      const metered = (o: string) =>
        points
          .filter((p) => p.name === 'hookguard.inbox.runs' && p.attributes['hookguard.outcome'] === o)
          .reduce((n, p) => n + Number(p.value), 0);
      const table = (['processed', 'duplicate', 'ignored', 'failed', 'deferred'] as const).map((o) => ({
        outcome: o,
        stats: stats[o],
        spans: byOutcome(o).length,
        runs: metered(o),
      }));
      expect(table).toEqual(table.map((row) => ({ ...row, spans: row.stats, runs: row.stats })));
      const failed = byOutcome('failed')
        .map((s) => s.attributes['error.type'])
        .sort();
      expect(failed).toEqual(['HANDLER_FAILED', 'STORE_UNAVAILABLE']);
      for (const span of byOutcome('deferred')) expect(span.status.code).toBe(api.SpanStatusCode.UNSET);
      for (const span of [...byOutcome('processed'), ...byOutcome('duplicate'), ...byOutcome('ignored')]) {
        expect(span.attributes['error.type']).toBeUndefined();
      }
    });
  },
);

// ---------------------------------------------------------------------------------------------------------

describe('6. metrics: low cardinality, gauges that never block a collection', () => {
  it('no event id, key, delivery id, conversation or account id in any metric attribute', async () => {
    const { reader } = startSdk();
    const telemetry = openTelemetry(api);
    const handle = createChatwootHandler({
      secret: SECRET,
      logger: false,
      telemetry,
      on: { message_created: (e) => void (e.content === 'fail' && Promise.reject(new Error('x'))) },
    });
    telemetry.observeHandler(handle);
    const ids = [901_234, 902_345, 903_456];
    const deliveries: string[] = [];
    for (const id of ids) {
      const { body, headers } = signedChatwoot(id, 'hello');
      deliveries.push(headers['x-chatwoot-delivery']!);
      await handle({ method: 'POST', headers, body });
      await handle({ method: 'POST', headers, body });
    }
    const { points, errors } = await metricPoints(reader);
    expect(errors).toEqual([]);
    const allowed = new Set([
      'hookguard.provider',
      'hookguard.outcome',
      'hookguard.error.code',
      'hookguard.response.status_code',
      'hookguard.handler.where',
      'hookguard.handler.result',
      'hookguard.inbox.state',
      'messaging.system',
      'messaging.destination.name',
    ]);
    const keys = new Set(points.flatMap((p) => Object.keys(p.attributes)));
    expect([...keys].filter((k) => !allowed.has(k))).toEqual([]);
    const text = JSON.stringify(points.map((p) => p.attributes));
    for (const id of ids) {
      for (const n of [id, 100_000 + id, 200_000 + id]) expect(text).not.toContain(String(n));
    }
    for (const d of deliveries) expect(text).not.toContain(d);
  });

  it('observeInbox: a hanging, a throwing and a down engine never hold or fail a collection; one reading at a time', async () => {
    const { reader } = startSdk();
    const telemetry = openTelemetry(api);
    let hangingCalls = 0;
    const stats = (queueName: string): InboxStats =>
      ({
        queueName,
        engine: 'bullmq',
        waiting: 3,
        active: 0,
        delayed: 0,
        failed: 1,
        oldestWaitingMs: 1500,
      }) as unknown as InboxStats;
    telemetry.observeInbox(
      {
        stats: () => {
          hangingCalls++;
          return new Promise<InboxStats>(() => undefined);
        },
      },
      { timeoutMs: 200 },
    );
    telemetry.observeInbox({
      stats: () => {
        throw new Error('engine client threw synchronously');
      },
    });
    telemetry.observeInbox({ stats: () => Promise.reject(new Error('engine down')) });
    telemetry.observeInbox({ stats: async () => stats('healthy') });
    const started = performance.now();
    const [first, second] = await Promise.all([metricPoints(reader), metricPoints(reader)]);
    expect(performance.now() - started).toBeLessThan(1500);
    expect(hangingCalls).toBe(1);
    for (const collection of [first, second]) {
      const healthy = collection.points.filter(
        (p) => p.name === 'hookguard.inbox.jobs' && p.attributes['messaging.destination.name'] === 'healthy',
      );
      expect(healthy.map((p) => [p.attributes['hookguard.inbox.state'], p.value])).toEqual(
        expect.arrayContaining([
          ['waiting', 3],
          ['failed', 1],
        ]),
      );
      expect(collection.errors).toEqual([]);
    }
  });

  it('observeInbox on a BullMQ inbox whose Redis is unreachable: the collection ends within its timeout', async () => {
    const { reader } = startSdk();
    const telemetry = openTelemetry(api);
    const inbox = createBullMQInbox({
      connection: { host: '127.0.0.1', port: 1, maxRetriesPerRequest: 1, connectTimeout: 200 },
      queueName: 'hg-attack-down',
      logger: false,
    });
    cleanups.push(() => inbox.close(500).catch(() => undefined));
    telemetry.observeInbox(inbox, { timeoutMs: 300 });
    const started = performance.now();
    const { errors } = await metricPoints(reader);
    expect(performance.now() - started).toBeLessThan(1500);
    expect(errors).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------------------

describe('7. without the option: nothing of OpenTelemetry loads, the job carries no trace context', () => {
  const root = fileURLToPath(new URL('../../', import.meta.url));
  const dist = `${root}dist/`;
  const built = (file: string): boolean => {
    if (existsSync(`${dist}${file}`)) return true;
    console.warn(
      `SKIPPED: dist/${file} is absent; run \`npm run build\` to check what the built package loads.`,
    );
    return false;
  };

  it.runIf(built('index.cjs'))(
    'CommonJS: the core, adapters and inboxes load no @opentelemetry module',
    () => {
      const script = `
      const hg = require('./dist/index.cjs');
      for (const entry of ['express', 'fastify', 'koa', 'fetch', 'bullmq', 'pg-boss', 'redis', 'postgres', 'shutdown', 'chatwoot', 'testing'])
        require('./dist/' + entry + '.cjs');
      const handle = hg.createChatwootHandler({ secret: 's', logger: false, on: {} });
      handle({ method: 'POST', headers: {}, body: '{}' }).then(() => {
        const loaded = Object.keys(require.cache).filter((k) => k.includes('opentelemetry'));
        process.stdout.write(JSON.stringify(loaded));
      });
    `;
      const run = spawnSync(process.execPath, ['-e', script], {
        cwd: root,
        encoding: 'utf8',
        timeout: 20_000,
      });
      expect(run.stderr).toBe('');
      expect(JSON.parse(run.stdout)).toEqual([]);
    },
  );

  it.runIf(built('index.js'))(
    'ESM: no entry but hookguard/otel imports @opentelemetry, even through chunks',
    () => {
      const importsOf = (file: string): string[] => {
        const text = readFileSync(`${dist}${file}`, 'utf8');
        return [...text.matchAll(/(?:from\s*|import\s*\(?\s*)["']([^"']+)["']/g)].map((m) => m[1]!);
      };
      const reach = (entry: string) => {
        const seen = new Set<string>();
        const bare = new Set<string>();
        const visit = (file: string) => {
          if (seen.has(file)) return;
          seen.add(file);
          for (const spec of importsOf(file)) {
            if (spec.startsWith('./')) visit(spec.slice(2));
            else bare.add(spec);
          }
        };
        visit(entry);
        return [...bare];
      };
      for (const entry of ['index', 'express', 'fastify', 'koa', 'fetch', 'bullmq', 'pg-boss', 'otel']) {
        expect(
          reach(`${entry}.js`).filter((s) => s.includes('opentelemetry')),
          entry,
        ).toEqual([]);
      }
    },
  );

  it.runIf(requireService('Redis', redis))(
    'a job written without the option has no traceContext in Redis, even under an active span',
    async () => {
      startSdk();
      const inbox = bullmqInbox();
      const handle = createChatwootHandler({
        secret: SECRET,
        logger: false,
        inbox,
        on: { message_created: () => undefined },
      });
      const { body, headers } = signedChatwoot(11);
      await api.trace.getTracer('attack').startActiveSpan('POST /cw', async (span) => {
        expect((await handle({ method: 'POST', headers, body })).status).toBe(200);
        span.end();
      });
      const redisClient = newIoRedis();
      cleanups.push(() => redisClient.quit());
      const keys = await redisClient.keys(`bull:${inbox.queue.name}:hg-*`);
      expect(keys.length).toBeGreaterThan(0);
      for (const key of keys) {
        const data = await redisClient.hget(key, 'data');
        if (data !== null) expect(JSON.parse(data)).not.toHaveProperty('traceContext');
      }
    },
  );
});
