import type { DedupStore } from '../dedup/dedup-store.js';
import type { WebhookResponse } from '../pipeline/types.js';
import { within } from './within.js';

// What a load balancer or Kubernetes asks before sending traffic: can this instance take a webhook now?
// It can when its stores and inbox engines answer a round trip and it is not stopping. Without it, an
// instance whose Redis is gone keeps getting deliveries it must refuse.

/** Options for {@link createHealthCheck}. */
export interface HealthCheckOptions {
  /** Dedup stores to check: a claim of a key of their own, released at once (one round trip each). */
  stores?: Record<string, DedupStore>;
  /** Inboxes to check: their `stats()` (a round trip to the engine). */
  inboxes?: Record<string, { stats(): Promise<unknown> }>;
  /** The {@link GracefulStop} of this server: once it began, the answer is 503 `stopping`. */
  stop?: { readonly stopping: boolean };
  /** Longest a check may take before it counts as failed; default 2000 ms. */
  timeoutMs?: number;
}

/** One check's result, as the answer's body lists it. */
export interface HealthCheckResult {
  ok: boolean;
  ms: number;
  /**
   * Why it failed: the error's code (`STORE_UNAVAILABLE`, `ECONNREFUSED`, …) or name, or `timeout`; never
   * its message (the answer is public, a message can name hosts and users).
   */
  error?: string;
}

/**
 * Builds a readiness answer: 200 `{"ok":true,"checks":{…}}` when every store and inbox answered within
 * `timeoutMs`, else 503 with the failing checks named (and `Retry-After`); 503 `{"ok":false,"stopping":true}`
 * once `stop` began. Mount it on a GET route of your framework.
 *
 * @example
 * ```ts
 * import express from 'express';
 * import { createMemoryDedupStore } from 'hookguard';
 * import { createHealthCheck } from 'hookguard/shutdown';
 * const health = createHealthCheck({ stores: { dedup: createMemoryDedupStore() } });
 * const app = express();
 * app.get('/ready', async (_req, res) => {
 *   const answer = await health();
 *   res.status(answer.status).set(answer.headers).send(answer.body);
 * });
 * ```
 */
export function createHealthCheck(options: HealthCheckOptions): () => Promise<WebhookResponse> {
  const timeoutMs = typeof options.timeoutMs === 'number' && options.timeoutMs > 0 ? options.timeoutMs : 2000;
  const checks: [string, () => Promise<unknown>][] = [
    ...Object.entries(options.stores ?? {}).map(([name, store]): [string, () => Promise<unknown>] => [
      `store:${name}`,
      () => roundTrip(store, timeoutMs),
    ]),
    ...Object.entries(options.inboxes ?? {}).map(([name, inbox]): [string, () => Promise<unknown>] => [
      `inbox:${name}`,
      () => inbox.stats(),
    ]),
  ];
  return async () => {
    if (options.stop?.stopping === true) return answer(503, { ok: false, stopping: true });
    const results = await Promise.all(
      checks.map(async ([name, run]) => [name, await timed(run, timeoutMs)] as const),
    );
    const ok = results.every(([, result]) => result.ok);
    return answer(ok ? 200 : 503, { ok, checks: Object.fromEntries(results) });
  };
}

/** A claim of a key no delivery uses, released at once. */
async function roundTrip(store: DedupStore, leaseMs: number): Promise<void> {
  const key = `hookguard:health:${Math.random().toString(36).slice(2)}`;
  const claim = await store.claim(key, Math.max(1000, leaseMs));
  if (claim.status === 'claimed') await store.release(key, claim.token);
}

async function timed(run: () => Promise<unknown>, timeoutMs: number): Promise<HealthCheckResult> {
  const started = performance.now();
  let error: string | undefined;
  const work = Promise.resolve()
    .then(run)
    .catch((err: unknown) => {
      error = errorCode(err);
    });
  const late = (await within(work, timeoutMs)) === 'late';
  const ms = Math.round(performance.now() - started);
  if (late) return { ok: false, ms, error: 'timeout' };
  return error === undefined ? { ok: true, ms } : { ok: false, ms, error };
}

/**
 * What a public answer may say of an error: its code (`ECONNREFUSED`, `STORE_UNAVAILABLE`, …) or its name
 * when they look like identifiers, else `Error`; never its message. Shared with `inboxHealth`.
 */
export function errorCode(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && /^[A-Za-z0-9_.-]{1,64}$/.test(code)) return code;
  return err instanceof Error && /^[A-Za-z0-9_]{1,64}$/.test(err.name) ? err.name : 'Error';
}

function answer(status: number, body: Record<string, unknown>): WebhookResponse {
  const headers: Record<string, string> = { 'content-type': 'application/json', 'cache-control': 'no-store' };
  if (status === 503) headers['retry-after'] = '5';
  return { status, headers, body: JSON.stringify(body) };
}
