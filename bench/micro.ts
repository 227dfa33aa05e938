// Micro benchmarks: verifiers against the official SDK, octokit and raw node:crypto, and the memory store
// against a bare Map, all in the same run. Used by bench/run.ts.
import { verify as octokitVerify } from '@octokit/webhooks-methods';
import { createHmac, timingSafeEqual } from 'node:crypto';
import Stripe from 'stripe';
import { Bench } from 'tinybench';
import {
  createMemoryDedupStore,
  stripeDedupKey,
  verifyChatwootSignature,
  verifyStripeEvent,
} from '../dist/index.js';
import { signChatwootPayload, signStripePayload, stripeEvent } from '../dist/testing.js';

export interface Row {
  group: string;
  name: string;
  opsPerSecond: number;
  /** Name of the row this one is compared with, in the same group. */
  baseline?: string;
  ratio?: number;
}

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

async function measure(group: string, tasks: [string, () => unknown][], time: number): Promise<Row[]> {
  const bench = new Bench({ time, warmupTime: Math.min(200, time / 2), throws: true });
  for (const [name, fn] of tasks) bench.add(name, fn);
  await bench.run();
  return bench.tasks.map((task) => {
    const result = task.result as { throughput?: { mean: number } } | undefined;
    return { group, name: task.name, opsPerSecond: Math.round(result?.throughput?.mean ?? 0) };
  });
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

export async function storeRows(time: number): Promise<Row[]> {
  // Batches of 1000 operations per timed call: a single claim is far below the timer's resolution.
  let n = 0;
  const store = createMemoryDedupStore();
  const map = new Map<string, number>();
  const keys = Array.from({ length: 1 << 16 }, (_, i) => realisticKey(i));
  const measured = await measure(
    'memory store, per operation (batches of 1000)',
    [
      [
        'bare Map set + get',
        () => {
          for (let i = 0; i < BATCH; i++) {
            const key = keys[n++ & 0xffff]!;
            if (map.get(key) === undefined) map.set(key, i);
          }
        },
      ],
      [
        'hookguard memory store claim + complete',
        () => {
          for (let i = 0; i < BATCH; i++) {
            const key = keys[n++ & 0xffff]!;
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
    'bare Map set + get',
  );
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
