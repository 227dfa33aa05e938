import type { ClaimResult, DedupStore } from './dedup-store.js';

/**
 * Options for {@link createMemoryDedupStore}.
 *
 * @example
 * ```ts
 * import type { MemoryDedupStoreOptions } from 'hookguard';
 * const options: MemoryDedupStoreOptions = { maxEntries: 100_000 };
 * ```
 */
export interface MemoryDedupStoreOptions {
  /** Most keys remembered at once; past it the oldest are forgotten first. Default 10 000. */
  maxEntries?: number;
  /** Clock in milliseconds; default `Date.now`. */
  now?: () => number;
}

/**
 * The in-memory store: a {@link DedupStore} whose calls answer synchronously, with its current `size`.
 *
 * @example
 * ```ts
 * import { createMemoryDedupStore, type MemoryDedupStore } from 'hookguard';
 * const store: MemoryDedupStore = createMemoryDedupStore();
 * console.log(store.size);
 * ```
 */
export interface MemoryDedupStore extends DedupStore {
  /** Keys held now (completed and in flight). */
  readonly size: number;
  claim(key: string, leaseMs: number): ClaimResult;
  complete(key: string, token: string, ttlMs: number): void;
  release(key: string, token: string): void;
  close(): void;
}

/**
 * A live claim. Completed keys are stored as their bare expiry time (a number), which keeps the common
 * entry small; only in-flight keys need an object.
 */
interface Lease {
  readonly token: string;
  readonly expiresAt: number;
}

type Entry = Lease | number;

const DEFAULT_MAX_ENTRIES = 10_000;
// Expired entries at the old end are swept a few at a time on each claim: O(1) per call, and idle
// memory shrinks back as traffic ages out instead of waiting for the cap.
const SWEEP_PER_CLAIM = 2;

/**
 * An in-process {@link DedupStore}: a capped set that forgets the **oldest** keys first (never all at
 * once: clearing would make every recent delivery look new again). Honours lease and TTL expiry; every
 * operation is O(1) and memory is bounded by `maxEntries`. It only sees one process: several instances
 * need a shared store (Redis, PostgreSQL).
 *
 * @example
 * ```ts
 * import { createMemoryDedupStore } from 'hookguard';
 * const store = createMemoryDedupStore({ maxEntries: 10_000 });
 * const claim = await store.claim('stripe:evt_1', 60_000);
 * if (claim.status === 'claimed') await store.complete('stripe:evt_1', claim.token, 3 * 86_400_000);
 * ```
 */
export function createMemoryDedupStore(options: MemoryDedupStoreOptions = {}): MemoryDedupStore {
  const maxEntries = normaliseMax(options.maxEntries);
  const now = options.now ?? Date.now;
  // A Map iterates in insertion order, so its first key is always the oldest: eviction and sweeping
  // are O(1) by deleting from the front; refreshing a key is delete + set (moves it to the back).
  const entries = new Map<string, Entry>();
  let counter = 0;

  const expiresAt = (entry: Entry): number => (typeof entry === 'number' ? entry : entry.expiresAt);

  function sweep(at: number): void {
    for (let i = 0; i < SWEEP_PER_CLAIM; i++) {
      const first = entries.entries().next();
      if (first.done || expiresAt(first.value[1]) > at) return;
      entries.delete(first.value[0]);
    }
  }

  function put(key: string, entry: Entry): void {
    entries.delete(key);
    entries.set(key, entry);
    while (entries.size > maxEntries) {
      const oldest = entries.keys().next();
      if (oldest.done) break;
      entries.delete(oldest.value);
    }
  }

  return {
    get size() {
      return entries.size;
    },
    claim(key: string, leaseMs: number): ClaimResult {
      const at = now();
      sweep(at);
      const existing = entries.get(key);
      if (existing !== undefined && expiresAt(existing) > at) {
        return typeof existing === 'number' ? { status: 'duplicate' } : { status: 'in-flight' };
      }
      counter = (counter + 1) % Number.MAX_SAFE_INTEGER;
      const token = `m${counter.toString(36)}`;
      put(key, { token, expiresAt: at + leaseMs });
      return { status: 'claimed', token };
    },
    complete(key: string, token: string, ttlMs: number): void {
      const existing = entries.get(key);
      // A lease that expired but was not taken over still belongs to its holder: the work did finish.
      if (typeof existing === 'object' && existing.token === token) put(key, now() + ttlMs);
    },
    release(key: string, token: string): void {
      const existing = entries.get(key);
      if (typeof existing === 'object' && existing.token === token) entries.delete(key);
    },
    close(): void {
      entries.clear();
    },
  };
}

function normaliseMax(value: number | undefined): number {
  if (value === undefined) return DEFAULT_MAX_ENTRIES;
  if (!Number.isFinite(value) || value < 1) {
    throw new RangeError(`maxEntries must be a finite number >= 1 (got ${String(value)}).`);
  }
  return Math.floor(value);
}
