// Micro benchmarks: verifiers against the official SDK, octokit and raw node:crypto, and the memory store
// against a bare Map, all in the same run. Used by bench/run.ts.
import { verify as octokitVerify } from '@octokit/webhooks-methods';
import { createHmac, timingSafeEqual } from 'node:crypto';
import Stripe from 'stripe';
import { Bench } from 'tinybench';
import * as otelApi from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { core, otel, testing } from './built.js';

const {
  createMemoryDedupStore,
  createStripeHandler,
  stripeDedupKey,
  verifyChatwootSignature,
  verifyStripeEvent,
} = core;
const { signChatwootPayload, signStripePayload, stripeEvent } = testing;

export interface Row {
  group: string;
  name: string;
  opsPerSecond: number;
  /** Name of the row this one is compared with, in the same group. */
  baseline?: string;
  ratio?: number;
}

const ROUNDS = 3;
const SECRET = 'whsec_bench_secret_0123456789';
/** The secret of the HTTP benchmark's servers. */
export const HTTP_SECRET = 'whsec_http_bench_secret';
const NOW_S = 1_767_225_600;
const now = () => NOW_S * 1000;

export const SIZES = [
  ['1 KB', 1024],
  ['16 KB', 16 * 1024],
  ['256 KB', 256 * 1024],
] as const;

/** A JSON event body of about `bytes` bytes (the padding is a string field). */
export function bodyOfSize(bytes: number, id = 'evt_bench'): string {
  const base = stripeEvent('invoice.paid', { id });
  const skeleton = JSON.stringify({ ...base, pad: '' });
  return JSON.stringify({ ...base, pad: 'x'.repeat(Math.max(0, bytes - skeleton.length)) });
}

/**
 * Runs the tasks of one group in ROUNDS rounds, in alternating order, and keeps each task's best round:
 * on a shared two-core machine the speed drifts between tasks run one after the other, and a single
 * round can compare a task measured in a slow second with one measured in a fast one.
 */
async function measure(group: string, tasks: [string, () => unknown][], time: number): Promise<Row[]> {
  const best = new Map<string, number>(tasks.map(([name]) => [name, 0]));
  for (let round = 0; round < ROUNDS; round++) {
    const bench = new Bench({ time: time / ROUNDS, warmupTime: Math.min(100, time / 4), throws: true });
    for (const [name, fn] of round % 2 === 0 ? tasks : [...tasks].reverse()) bench.add(name, fn);
    await bench.run();
    for (const task of bench.tasks) {
      const result = task.result as { throughput?: { mean: number } } | undefined;
      best.set(task.name, Math.max(best.get(task.name)!, Math.round(result?.throughput?.mean ?? 0)));
    }
  }
  return tasks.map(([name]) => ({ group, name, opsPerSecond: best.get(name)! }));
}

function compare(rows: Row[], baseline: string): Row[] {
  const base = rows.find((r) => r.name === baseline);
  return rows.map((r) =>
    r.name === baseline || base === undefined
      ? r
      : { ...r, baseline, ratio: Math.round((r.opsPerSecond / base.opsPerSecond) * 100) / 100 },
  );
}

export async function chatwootRows(time: number): Promise<Row[]> {
  const rows: Row[] = [];
  for (const [label, size] of SIZES) {
    const text = bodyOfSize(size);
    const body = Buffer.from(text);
    const signed = signChatwootPayload(text, SECRET, { timestamp: NOW_S });
    const hex = signed.headers['x-chatwoot-signature']!.slice(7);
    const ts = signed.headers['x-chatwoot-timestamp']!;
    const bodyOnlyHex = createHmac('sha256', SECRET).update(body).digest('hex');
    const group = `verifyChatwootSignature, ${label}`;
    const measured = await measure(
      group,
      [
        [
          'raw limit: createHmac(ts + body) + timingSafeEqual',
          () => {
            const expected = createHmac('sha256', SECRET).update(`${ts}.`).update(body).digest();
            if (!timingSafeEqual(expected, Buffer.from(hex, 'hex'))) throw new Error('mismatch');
          },
        ],
        [
          'hookguard verifyChatwootSignature',
          () => verifyChatwootSignature(body, signed.headers, { secret: SECRET, now }),
        ],
        [
          '@octokit/webhooks-methods verify (body-only HMAC, same work)',
          async () => {
            if (!(await octokitVerify(SECRET, text, `sha256=${bodyOnlyHex}`))) throw new Error('mismatch');
          },
        ],
      ],
      time,
    );
    rows.push(...compare(measured, 'raw limit: createHmac(ts + body) + timingSafeEqual'));
  }
  return rows;
}

export async function stripeRows(time: number): Promise<Row[]> {
  const rows: Row[] = [];
  for (const [label, size] of SIZES) {
    const text = bodyOfSize(size);
    const body = Buffer.from(text);
    const header = signStripePayload(text, SECRET, { timestamp: NOW_S }).headers['stripe-signature']!;
    const hex = header.split('v1=')[1]!;
    const group = `verifyStripeEvent, ${label}`;
    const measured = await measure(
      group,
      [
        [
          'Stripe.webhooks.constructEvent (Buffer)',
          () => Stripe.webhooks.constructEvent(body, header, SECRET, 300, undefined, now()),
        ],
        [
          'Stripe.webhooks.constructEvent (string)',
          () => Stripe.webhooks.constructEvent(text, header, SECRET, 300, undefined, now()),
        ],
        [
          'raw limit: createHmac + timingSafeEqual + JSON.parse',
          () => {
            const expected = createHmac('sha256', SECRET).update(`${NOW_S}.`).update(body).digest();
            if (!timingSafeEqual(expected, Buffer.from(hex, 'hex'))) throw new Error('mismatch');
            return JSON.parse(body.toString('utf8')) as unknown;
          },
        ],
        [
          'hookguard verifyStripeEvent (Buffer)',
          () => verifyStripeEvent(body, header, { secret: SECRET, now }),
        ],
      ],
      time,
    );
    rows.push(...compare(measured, 'Stripe.webhooks.constructEvent (Buffer)'));
  }
  return rows;
}

const BATCH = 1000;

export async function storeRows(time: number, uniqueKeys: number): Promise<Row[]> {
  // Batches of 1000 operations per timed call: a single claim is far below the timer's resolution. Every
  // key is new (made before the run, so key building is not measured), and the default cap of 10 000 is
  // passed at once, so eviction runs on every claim as it does under a flood.
  const keys = Array.from({ length: uniqueKeys }, (_, i) => realisticKey(i));
  let n = 0;
  const next = () => keys[n++ % uniqueKeys]!;
  const store = createMemoryDedupStore();
  const map = new Map<string, number>();
  const ring: (string | undefined)[] = Array.from({ length: 10_000 }, () => undefined);
  let slot = 0;
  const measured = await measure(
    'memory store, per operation (batches of 1000, unique keys, cap 10 000 reached)',
    [
      [
        'bare Map get + set, oldest deleted past 10 000',
        () => {
          for (let i = 0; i < BATCH; i++) {
            const key = next();
            if (map.get(key) === undefined) map.set(key, i);
            const oldest = ring[slot];
            if (oldest !== undefined) map.delete(oldest);
            ring[slot] = key;
            slot = (slot + 1) % ring.length;
          }
        },
      ],
      [
        'hookguard memory store claim + complete',
        () => {
          for (let i = 0; i < BATCH; i++) {
            const key = next();
            const claim = store.claim(key, 60_000);
            if (claim.status === 'claimed') store.complete(key, claim.token, 1);
          }
        },
      ],
    ],
    time,
  );
  return compare(
    measured.map((r) => ({ ...r, opsPerSecond: r.opsPerSecond * BATCH })),
    'bare Map get + set, oldest deleted past 10 000',
  );
}

const PIPELINE_BATCH = 250;

/** The row names of the pipeline rows, for bench/run.ts. */
export const PIPELINE = {
  verify: 'verifyStripeEvent alone',
  plain: 'createStripeHandler: verify, key, claim, handler, complete, answer',
  api: 'the same with telemetry: openTelemetry(api), no SDK registered',
  verifySdk: 'verifyStripeEvent alone (second loop)',
  sdk: 'the same with telemetry and an SDK: 4 spans (SimpleSpanProcessor, in-memory exporter), 3 metrics',
} as const;

/**
 * Per-request cost of the pipeline over a bare `verifyStripeEvent`: the same signed 1 KB events (unique
 * ids, more of them than the memory store keeps, so each is claimed and completed), no logger. The tasks
 * are timed in alternating batches of 250 within one loop, so the machine's drift (large on a shared
 * two-core machine) falls on all alike; tinybench's task-after-task runs showed differences of ±3 µs from
 * drift alone. The `telemetry` option is timed twice: with the OpenTelemetry API alone (what an
 * application that installed it but started no SDK pays), then, in a second loop against its own bare
 * verify, with an SDK registered globally as NodeSDK does (context manager, propagator, providers).
 */
export async function pipelineRows(time: number, events: number): Promise<Row[]> {
  const template = bodyOfSize(1024, 'evt_TEMPLATE_ID_0000000000');
  const signed = Array.from({ length: events }, (_, i) => {
    const id = `evt_${i.toString(36).padStart(22, '0')}`;
    const { body, headers } = signStripePayload(template.replace('evt_TEMPLATE_ID_0000000000', id), SECRET, {
      timestamp: NOW_S,
    });
    return { body: Buffer.from(body), headers };
  });
  const verify = (i: number) => {
    const { body, headers } = signed[i % events]!;
    verifyStripeEvent(body, headers, { secret: SECRET, now });
  };
  const through = (handle: ReturnType<typeof createStripeHandler>) => async (i: number) => {
    const { body, headers } = signed[i % events]!;
    const answer = await handle({ method: 'POST', headers, body });
    if (answer.status !== 200) throw new Error(`pipeline answered ${answer.status}`);
  };
  const handler = (telemetry?: ReturnType<typeof otel.openTelemetry>) =>
    createStripeHandler({ secret: SECRET, now, onEvent: () => {}, ...(telemetry ? { telemetry } : {}) });
  const first = await alternate(time, {
    [PIPELINE.verify]: verify,
    [PIPELINE.plain]: through(handler()),
    [PIPELINE.api]: through(handler(otel.openTelemetry(otelApi))),
  });
  const sdk = startSdk();
  const second = await alternate(
    time,
    {
      [PIPELINE.verifySdk]: verify,
      [PIPELINE.sdk]: through(handler(otel.openTelemetry(otelApi))),
    },
    sdk.reset,
  );
  await sdk.shutdown();
  const group = 'pipeline over a bare verify, 1 KB Stripe events (alternating batches)';
  return Object.entries({ ...first, ...second }).map(([name, opsPerSecond]) => ({
    group,
    name,
    opsPerSecond,
  }));
}

/** Requests per second of each task, timed in alternating batches; the first round is warm-up. */
async function alternate(
  time: number,
  tasks: Record<string, (i: number) => unknown>,
  afterRound?: () => void,
): Promise<Record<string, number>> {
  const spent = Object.fromEntries(Object.keys(tasks).map((name) => [name, 0]));
  let n = 0;
  let rounds = 0;
  const until = performance.now() + time * Object.keys(tasks).length;
  while (performance.now() < until || rounds < 2) {
    for (const [name, task] of Object.entries(tasks)) {
      const t0 = performance.now();
      for (let i = 0; i < PIPELINE_BATCH; i++) {
        const done = task(n++);
        if (done instanceof Promise) await done;
      }
      if (rounds > 0) spent[name]! += performance.now() - t0;
    }
    afterRound?.();
    rounds++;
  }
  return Object.fromEntries(
    Object.entries(spent).map(([name, ms]) => [
      name,
      Math.round(((rounds - 1) * PIPELINE_BATCH * 1000) / ms),
    ]),
  );
}

/** An OpenTelemetry SDK registered globally, as NodeSDK registers it, with spans kept in memory. */
function startSdk() {
  const exporter = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const meterProvider = new MeterProvider();
  otelApi.trace.setGlobalTracerProvider(tracerProvider);
  otelApi.metrics.setGlobalMeterProvider(meterProvider);
  otelApi.context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  otelApi.propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  return {
    reset: () => exporter.reset(),
    async shutdown() {
      otelApi.trace.disable();
      otelApi.context.disable();
      otelApi.propagation.disable();
      otelApi.metrics.disable();
      await Promise.all([tracerProvider.shutdown(), meterProvider.shutdown()]);
    },
  };
}

/** A key as the pipeline makes it: stripeDedupKey of a parsed event with a real-looking 28-char id. */
function realisticKey(i: number): string {
  const event = JSON.parse(`{"id":"evt_1Q${i.toString(36).padStart(22, '0')}"}`) as { id: string };
  return stripeDedupKey(event)!;
}

/** Heap bytes per entry at `entries` completed keys (run node with --expose-gc). */
export function heapPerEntry(entries: number): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) return Number.NaN;
  gc();
  const before = process.memoryUsage().heapUsed;
  const store = createMemoryDedupStore({ maxEntries: entries });
  for (let i = 0; i < entries; i++) {
    const key = realisticKey(i);
    const claim = store.claim(key, 60_000);
    if (claim.status === 'claimed') store.complete(key, claim.token, 86_400_000);
  }
  gc();
  const after = process.memoryUsage().heapUsed;
  if (store.size !== entries) throw new Error('store lost entries');
  return Math.round((after - before) / entries);
}

/** Heap in MB after `total` distinct keys through a default store (capped at 10 000). */
export function heapAfterFlood(total: number): { heapMB: number; size: number } {
  const gc = (globalThis as { gc?: () => void }).gc;
  const store = createMemoryDedupStore();
  for (let i = 0; i < total; i++) {
    const key = realisticKey(i);
    const claim = store.claim(key, 60_000);
    if (claim.status === 'claimed') store.complete(key, claim.token, 86_400_000);
  }
  gc?.();
  return { heapMB: Math.round(process.memoryUsage().heapUsed / 1e5) / 10, size: store.size };
}
