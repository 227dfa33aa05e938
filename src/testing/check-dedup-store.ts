import { randomUUID } from 'node:crypto';
import type { ClaimResult, DedupStore } from '../dedup/dedup-store.js';

/**
 * Options for {@link checkDedupStore}.
 *
 * @example
 * ```ts
 * import type { CheckDedupStoreOptions } from 'hookguard/testing';
 * const options: CheckDedupStoreOptions = { shortMs: 500 };
 * ```
 */
export interface CheckDedupStoreOptions {
  /** A lease / TTL short enough to wait out; default 300 ms. Raise it for a slow remote store. */
  shortMs?: number;
  /** How many claims race for one key in the concurrency scenario; default 25. */
  concurrency?: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const LONG = 60_000;

/**
 * Runs the {@link DedupStore} contract against your store and returns what failed (empty: it conforms).
 * Scenarios: claim / duplicate / in-flight, complete and release with a wrong token, release then
 * re-claim, lease expiry (and a late complete from the expired holder), TTL expiry, and concurrent claims
 * of one key (exactly one winner). Keys are random, so it can run against a shared server.
 *
 * @example
 * ```ts
 * import { checkDedupStore } from 'hookguard/testing';
 * import { createMemoryDedupStore } from 'hookguard';
 * const failures = await checkDedupStore(() => createMemoryDedupStore());
 * if (failures.length > 0) throw new Error(failures.join('\n'));
 * ```
 */
export async function checkDedupStore(
  factory: () => DedupStore | Promise<DedupStore>,
  options: CheckDedupStoreOptions = {},
): Promise<string[]> {
  const shortMs = options.shortMs ?? 300;
  const concurrency = options.concurrency ?? 25;
  const failures: string[] = [];
  const run = `check-${randomUUID()}`;
  let n = 0;
  const key = () => `${run}:${++n}`;
  const store = await factory();
  const check = (scenario: string, got: ClaimResult, want: ClaimResult['status']) => {
    if (got?.status !== want) failures.push(`${scenario}: expected ${want}, got ${JSON.stringify(got)}`);
  };
  const claimed = async (scenario: string, k: string, leaseMs = LONG): Promise<string | undefined> => {
    const result = await store.claim(k, leaseMs);
    if (result?.status !== 'claimed' || typeof result.token !== 'string' || result.token === '') {
      failures.push(`${scenario}: expected a claim with a token, got ${JSON.stringify(result)}`);
      return undefined;
    }
    return result.token;
  };

  const scenarios: [string, () => Promise<void>][] = [
    [
      'claim, then in-flight, then duplicate after complete',
      async () => {
        const k = key();
        const token = await claimed('first claim', k);
        check('second claim while leased', await store.claim(k, LONG), 'in-flight');
        if (token === undefined) return;
        await store.complete(k, token, LONG);
        check('claim after complete', await store.claim(k, LONG), 'duplicate');
      },
    ],
    [
      'complete and release with a wrong token do nothing',
      async () => {
        const k = key();
        const token = await claimed('claim', k);
        await store.complete(k, `not-${token}`, LONG);
        check('claim after wrong-token complete', await store.claim(k, LONG), 'in-flight');
        await store.release(k, `not-${token}`);
        check('claim after wrong-token release', await store.claim(k, LONG), 'in-flight');
      },
    ],
    [
      'a released key can be claimed again; a completed one cannot be released',
      async () => {
        const k = key();
        const token = await claimed('claim', k);
        if (token === undefined) return;
        await store.release(k, token);
        const again = await claimed('claim after release', k);
        if (again === undefined) return;
        await store.complete(k, again, LONG);
        await store.release(k, again);
        check('claim after complete then release', await store.claim(k, LONG), 'duplicate');
      },
    ],
    [
      'an expired lease can be claimed again, and the old holder cannot complete it',
      async () => {
        const k = key();
        const old = await claimed('claim with a short lease', k, shortMs);
        await sleep(shortMs * 1.5 + 50);
        const fresh = await claimed('claim after the lease expired', k);
        if (old === undefined || fresh === undefined) return;
        if (old === fresh) failures.push('lease expiry: the new claim reused the old token');
        await store.complete(k, old, LONG);
        check('claim after the expired holder completed', await store.claim(k, LONG), 'in-flight');
        await store.release(k, old);
        check('claim after the expired holder released', await store.claim(k, LONG), 'in-flight');
      },
    ],
    [
      'a completed key is forgotten when its TTL expires',
      async () => {
        const k = key();
        const token = await claimed('claim', k);
        if (token === undefined) return;
        await store.complete(k, token, shortMs);
        check('claim within the TTL', await store.claim(k, LONG), 'duplicate');
        await sleep(shortMs * 1.5 + 50);
        await claimed('claim after the TTL', k);
      },
    ],
    [
      `${concurrency} concurrent claims of one key have exactly one winner`,
      async () => {
        const k = key();
        const results = await Promise.all(Array.from({ length: concurrency }, () => store.claim(k, LONG)));
        const winners = results.filter((r) => r?.status === 'claimed').length;
        const others = results.filter((r) => r?.status === 'in-flight').length;
        if (winners !== 1 || others !== concurrency - 1) {
          failures.push(`concurrent claims: ${winners} claimed and ${others} in-flight of ${concurrency}`);
        }
      },
    ],
    [
      'keys are independent',
      async () => {
        const a = key();
        const b = key();
        const token = await claimed('claim a', a);
        if (token !== undefined) await store.complete(a, token, LONG);
        await claimed('claim b after a completed', b);
      },
    ],
  ];

  for (const [name, scenario] of scenarios) {
    try {
      await scenario();
    } catch (err) {
      failures.push(`${name}: threw ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  return failures;
}
