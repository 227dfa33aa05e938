import { randomUUID } from 'node:crypto';
import type { ClaimResult, DedupStore } from '../dedup/dedup-store.js';

/**
 * Options for {@link checkDedupStore}.
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
 * re-claim, lease expiry (a late complete from the expired holder neither steals a key taken over nor is
 * lost when nobody took it over, even after the store swept or pruned the lease; a `prune()` the store has
 * is called), TTL expiry, and concurrent claims of one key (exactly one winner). Keys are random, so it can run against a shared server.
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
  const checker = new Checker(await factory(), options.shortMs ?? 300, options.concurrency ?? 25);
  for (const scenario of SCENARIOS) {
    const name = typeof scenario.name === 'string' ? scenario.name : scenario.name(checker);
    try {
      await scenario.run(checker);
    } catch (err) {
      checker.failures.push(`${name}: threw ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  return checker.failures;
}

/** What every scenario works with: the store, fresh keys and the list of failures. */
class Checker {
  readonly failures: string[] = [];
  readonly #run = `check-${randomUUID()}`;
  #n = 0;

  constructor(
    readonly store: DedupStore,
    readonly shortMs: number,
    readonly concurrency: number,
  ) {}

  /** A key no other scenario (or run) uses. */
  key(): string {
    return `${this.#run}:${++this.#n}`;
  }

  expect(scenario: string, got: ClaimResult, want: ClaimResult['status']): void {
    if (got?.status !== want) this.failures.push(`${scenario}: expected ${want}, got ${JSON.stringify(got)}`);
  }

  /** Claims `key` and returns the token, or records a failure and returns undefined. */
  async claimed(scenario: string, key: string, leaseMs = LONG): Promise<string | undefined> {
    const result = await this.store.claim(key, leaseMs);
    if (result?.status !== 'claimed' || typeof result.token !== 'string' || result.token === '') {
      this.failures.push(`${scenario}: expected a claim with a token, got ${JSON.stringify(result)}`);
      return undefined;
    }
    return result.token;
  }
}

interface Scenario {
  name: string | ((c: Checker) => string);
  run(c: Checker): Promise<void>;
}

const SCENARIOS: readonly Scenario[] = [
  {
    name: 'claim, then in-flight, then duplicate after complete',
    async run(c) {
      const k = c.key();
      const token = await c.claimed('first claim', k);
      c.expect('second claim while leased', await c.store.claim(k, LONG), 'in-flight');
      if (token === undefined) return;
      await c.store.complete(k, token, LONG);
      c.expect('claim after complete', await c.store.claim(k, LONG), 'duplicate');
    },
  },
  {
    name: 'complete and release with a wrong token do nothing',
    async run(c) {
      const k = c.key();
      const token = await c.claimed('claim', k);
      await c.store.complete(k, `not-${token}`, LONG);
      c.expect('claim after wrong-token complete', await c.store.claim(k, LONG), 'in-flight');
      await c.store.release(k, `not-${token}`);
      c.expect('claim after wrong-token release', await c.store.claim(k, LONG), 'in-flight');
    },
  },
  {
    name: 'a released key can be claimed again; a completed one cannot be released',
    async run(c) {
      const k = c.key();
      const token = await c.claimed('claim', k);
      if (token === undefined) return;
      await c.store.release(k, token);
      const again = await c.claimed('claim after release', k);
      if (again === undefined) return;
      await c.store.complete(k, again, LONG);
      await c.store.release(k, again);
      c.expect('claim after complete then release', await c.store.claim(k, LONG), 'duplicate');
    },
  },
  {
    name: 'an expired lease can be claimed again, and the old holder cannot complete it',
    async run(c) {
      const k = c.key();
      const old = await c.claimed('claim with a short lease', k, c.shortMs);
      await sleep(c.shortMs * 1.5 + 50);
      const fresh = await c.claimed('claim after the lease expired', k);
      if (old === undefined || fresh === undefined) return;
      if (old === fresh) c.failures.push('lease expiry: the new claim reused the old token');
      await c.store.complete(k, old, LONG);
      c.expect('claim after the expired holder completed', await c.store.claim(k, LONG), 'in-flight');
      await c.store.release(k, old);
      c.expect('claim after the expired holder released', await c.store.claim(k, LONG), 'in-flight');
    },
  },
  {
    name: 'a holder whose lease ran out still completes the key when nobody took it over',
    async run(c) {
      const k = c.key();
      const token = await c.claimed('claim with a short lease', k, c.shortMs);
      await sleep(c.shortMs * 1.5 + 50);
      // Give the store its chance to forget the expired lease: other traffic (the memory store sweeps
      // on claims) and, where the store has one, its prune().
      for (let i = 0; i < 4; i++) {
        const other = c.key();
        const otherToken = await c.claimed('claim of another key', other);
        if (otherToken !== undefined) await c.store.complete(other, otherToken, LONG);
      }
      const prune = (c.store as { prune?: unknown }).prune;
      if (typeof prune === 'function') await (prune as () => unknown).call(c.store);
      if (token === undefined) return;
      await c.store.complete(k, token, LONG);
      c.expect('claim after the late completion', await c.store.claim(k, LONG), 'duplicate');
    },
  },
  {
    name: 'a completed key is forgotten when its TTL expires',
    async run(c) {
      const k = c.key();
      const token = await c.claimed('claim', k);
      if (token === undefined) return;
      await c.store.complete(k, token, c.shortMs);
      c.expect('claim within the TTL', await c.store.claim(k, LONG), 'duplicate');
      await sleep(c.shortMs * 1.5 + 50);
      await c.claimed('claim after the TTL', k);
    },
  },
  {
    name: (c) => `${c.concurrency} concurrent claims of one key have exactly one winner`,
    async run(c) {
      const k = c.key();
      const claims = Array.from({ length: c.concurrency }, () => Promise.resolve(c.store.claim(k, LONG)));
      const results = await Promise.all(claims);
      const winners = results.filter((r) => r?.status === 'claimed').length;
      const others = results.filter((r) => r?.status === 'in-flight').length;
      if (winners !== 1 || others !== c.concurrency - 1) {
        c.failures.push(`concurrent claims: ${winners} claimed and ${others} in-flight of ${c.concurrency}`);
      }
    },
  },
  {
    name: 'keys are independent',
    async run(c) {
      const a = c.key();
      const b = c.key();
      const token = await c.claimed('claim a', a);
      if (token !== undefined) await c.store.complete(a, token, LONG);
      await c.claimed('claim b after a completed', b);
    },
  },
];
