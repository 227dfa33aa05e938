import type { ClaimResult, DedupStore } from '../dedup/dedup-store.js';

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

/** A live claim. */
interface Lease {
  readonly token: string;
  readonly expiresAt: number;
}

/**
 * A completed key is stored as its bare expiry time, in ms since the store was created: a small integer,
 * which V8 keeps inline (no allocation), so the common entry costs only its key and a map slot.
 */
type Entry = Lease | number;

const DEFAULT_MAX_ENTRIES = 10_000;
// Expired entries at the old end are swept a few at a time on each claim: O(1) per call, and idle
// memory shrinks back as traffic ages out instead of waiting for the cap.
const SWEEP_PER_CLAIM = 2;

/**
 * An in-process {@link DedupStore}: a capped set that forgets the **oldest** keys first (never all at
 * once: clearing would make every recent delivery look new again). Honours lease and TTL expiry; every
 * operation is O(1) (amortised) and memory is bounded by `maxEntries`. It only sees one process: several
 * instances need a shared store (Redis, PostgreSQL).
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
  const clock = options.now ?? Date.now;
  const epoch = clock();
  const now = () => clock() - epoch;
  const entries = new Map<string, Entry>();
  // Keys in claim order, oldest at `head`: eviction pops from here in O(1). (Iterating a Map from its
  // start is not O(1): V8 walks over the slots of deleted entries.) A key that was released, or expired
  // and claimed again, leaves an older slot behind; `stale` counts those so they are skipped, not evicted.
  let order: string[] = [];
  let head = 0;
  const stale = new Map<string, number>();
  let counter = 0;

  const expiresAt = (entry: Entry): number => (typeof entry === 'number' ? entry : entry.expiresAt);

  function markStale(key: string): void {
    stale.set(key, (stale.get(key) ?? 0) + 1);
  }

  /** Takes the oldest slot; returns its key when it is live (the caller decides), skipping stale ones. */
  function oldestLive(): string | undefined {
    while (head < order.length) {
      const key = order[head]!;
      const count = stale.get(key);
      if (count === undefined) return key;
      head++;
      if (count === 1) stale.delete(key);
      else stale.set(key, count - 1);
    }
    return undefined;
  }

  function dropOldest(): void {
    head++;
    if (head > 1024 && head * 2 > order.length) {
      order = order.slice(head);
      head = 0;
    }
  }

  function sweep(at: number): void {
    for (let i = 0; i < SWEEP_PER_CLAIM; i++) {
      const key = oldestLive();
      const entry = key === undefined ? undefined : entries.get(key);
      if (key === undefined || entry === undefined || expiresAt(entry) > at) return;
      entries.delete(key);
      dropOldest();
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
      if (existing !== undefined) {
        if (expiresAt(existing) > at) {
          return typeof existing === 'number' ? { status: 'duplicate' } : { status: 'in-flight' };
        }
        markStale(key); // its old slot is no longer its age
      }
      counter = (counter + 1) % Number.MAX_SAFE_INTEGER;
      const token = `m${counter.toString(36)}`;
      entries.set(key, { token, expiresAt: at + leaseMs });
      order.push(key);
      while (entries.size > maxEntries) {
        const oldest = oldestLive();
        if (oldest === undefined) break;
        entries.delete(oldest);
        dropOldest();
      }
      return { status: 'claimed', token };
    },
    complete(key: string, token: string, ttlMs: number): void {
      const existing = entries.get(key);
      // A lease that expired but was not taken over still belongs to its holder: the work did finish.
      if (typeof existing === 'object' && existing.token === token) entries.set(key, now() + ttlMs);
    },
    release(key: string, token: string): void {
      const existing = entries.get(key);
      if (typeof existing === 'object' && existing.token === token) {
        entries.delete(key);
        markStale(key);
      }
    },
    close(): void {
      entries.clear();
      stale.clear();
      order = [];
      head = 0;
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
