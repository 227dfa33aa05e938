import type { ClaimResult, DedupStore } from '../dedup/dedup-store.js';

/**
 * Options for {@link createMemoryDedupStore}.
 */
export interface MemoryDedupStoreOptions {
  /**
   * Most keys remembered at once; past it the oldest completed keys are forgotten first. Default 10 000.
   * Claims still being processed are never forgotten, so the store may hold more by the requests in flight.
   */
  maxEntries?: number;
  /** Clock in milliseconds; default `Date.now`. */
  now?: () => number;
}

/**
 * The in-memory store: a {@link DedupStore} whose calls answer synchronously, with its current `size`.
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
// The cursor starts over after this many new keys, or as many as the map holds if more (see #append).
const CURSOR_REFRESH = 1024;

const expiryOf = (entry: Entry): number => (typeof entry === 'number' ? entry : entry.expiresAt);

/**
 * An in-process {@link DedupStore}: a capped set that forgets the **oldest** keys first (never all at
 * once: clearing would make every recent delivery look new again), and never a claim still being
 * processed. Honours lease and TTL expiry, and completes a key whose lease ran out while its holder was
 * still working, unless another claim took it over. Every operation is O(1) (amortised); memory is bounded
 * by `maxEntries` plus the claims in flight. It only sees one process: several instances need a shared
 * store (Redis, PostgreSQL).
 *
 * @example
 * ```ts
 * import { createMemoryDedupStore } from 'hookguard';
 * const store = createMemoryDedupStore({ maxEntries: 10_000 });
 * const claim = store.claim('stripe:evt_1', 60_000);
 * if (claim.status === 'claimed') store.complete('stripe:evt_1', claim.token, 3 * 86_400_000);
 * ```
 */
export function createMemoryDedupStore(options: MemoryDedupStoreOptions = {}): MemoryDedupStore {
  return new MemoryStore(normaliseMax(options.maxEntries), options.now ?? Date.now);
}

/**
 * The age order is the Map's own insertion order: a key claimed anew is deleted and set again, so it moves
 * to the young end. One iterator, kept across calls, walks the old end: it skips what was deleted behind
 * its back, so finding the oldest key is O(1) amortised without a second index of keys. Every key before the
 * one it stands on was removed, so a fresh iterator finds the same oldest key: it can start over at any time.
 */
class MemoryStore implements MemoryDedupStore {
  readonly #entries = new Map<string, Entry>();
  readonly #maxEntries: number;
  readonly #clock: () => number;
  readonly #epoch: number;
  #cursor: Iterator<string> = this.#entries.keys();
  /** The oldest key the cursor has read and not yet removed (an iterator cannot peek). */
  #oldest: string | undefined;
  #counter = 0;
  /** New keys set since the cursor last moved or started over. */
  #appended = 0;
  /** Entries that are leases (live or expired), so eviction knows when only leases are left. */
  #leases = 0;

  constructor(maxEntries: number, clock: () => number) {
    this.#maxEntries = maxEntries;
    this.#clock = clock;
    this.#epoch = clock();
  }

  get size(): number {
    return this.#entries.size;
  }

  claim(key: string, leaseMs: number): ClaimResult {
    const at = this.#clock() - this.#epoch;
    const entries = this.#entries;
    // At the cap the oldest goes anyway (below); under it, expired entries are swept so memory shrinks.
    if (entries.size < this.#maxEntries) this.#sweep(at);
    const existing = entries.get(key);
    if (existing !== undefined) {
      if (expiryOf(existing) > at) {
        return typeof existing === 'number' ? { status: 'duplicate' } : { status: 'in-flight' };
      }
      this.#remove(key); // expired: it ages from this claim, at the young end
    }
    this.#counter = (this.#counter + 1) % Number.MAX_SAFE_INTEGER;
    const token = `m${this.#counter}`;
    this.#append(key, { token, expiresAt: at + leaseMs });
    this.#leases++;
    this.#evict(at);
    return { status: 'claimed', token };
  }

  /**
   * Forgets the oldest entries past the cap, but never a live claim: one event must not run twice at once.
   * Live claims are bounded by the requests in flight, so the store may exceed its cap by them. A live
   * lease met at the old end moves to the young end (it is still being processed, so it is young).
   */
  #evict(at: number): void {
    const entries = this.#entries;
    while (entries.size > this.#maxEntries && entries.size > this.#leases) {
      const key = this.#peekOldest()!;
      const entry = entries.get(key)!;
      if (typeof entry === 'object' && entry.expiresAt > at) {
        this.#remove(key);
        this.#append(key, entry);
        this.#leases++; // #remove counted it out
      } else {
        this.#remove(key);
      }
    }
  }

  complete(key: string, token: string, ttlMs: number): void {
    const at = this.#clock() - this.#epoch;
    const entries = this.#entries;
    const existing = entries.get(key);
    if (typeof existing === 'object') {
      // Another claim's live lease: that holder answers for the key. Ours, or a lease that ran out
      // without being taken over: the work did finish.
      if (existing.token !== token && existing.expiresAt > at) return;
      this.#leases--;
      entries.set(key, at + ttlMs);
    } else if (existing === undefined) {
      // The lease ran out and the sweep (or eviction) removed it before the work finished: record it.
      this.#append(key, at + ttlMs);
      this.#evict(at);
    } else if (existing <= at) {
      entries.set(key, at + ttlMs); // completed before, and forgotten since: completed again
    }
  }

  release(key: string, token: string): void {
    const existing = this.#entries.get(key);
    if (typeof existing === 'object' && existing.token === token) this.#remove(key);
  }

  close(): void {
    this.#entries.clear();
    this.#leases = 0;
    this.#restartCursor();
  }

  /** Drops expired entries at the old end, a few per call. */
  #sweep(at: number): void {
    for (let i = 0; i < SWEEP_PER_CLAIM; i++) {
      const key = this.#peekOldest();
      if (key === undefined || expiryOf(this.#entries.get(key)!) > at) return;
      this.#remove(key);
    }
  }

  #peekOldest(): string | undefined {
    if (this.#oldest === undefined) {
      const next = this.#cursor.next();
      this.#appended = 0; // next() moved the iterator onto the current table: the old ones can go
      // A finished iterator stays finished (even when keys are added later): start a new one.
      if (next.done === true) {
        if (this.#entries.size === 0) return undefined;
        this.#restartCursor();
        return this.#peekOldest();
      }
      this.#oldest = next.value;
    }
    return this.#oldest;
  }

  /**
   * Sets a new key, at the young end. While the oldest key stays (a live claim, an unexpired key), the
   * cursor stands still, and V8 keeps every hash table it rebuilt since alive for that iterator, chained
   * (OrderedHashTable: obsolete tables point to their successor until every iterator on them moved on).
   * Claim + release behind one held key rebuilt the small table every few calls: ~50 heap bytes per cycle,
   * ~97 MiB after 2,000,000 (issue 20). Starting over after as many new keys as the map holds lets those
   * tables go, so at most a few tables' worth stays pinned; the fresh iterator skips at most one table's
   * deleted slots to reach the oldest key, so this stays O(1) amortised.
   */
  #append(key: string, entry: Entry): void {
    this.#entries.set(key, entry);
    if (++this.#appended > Math.max(CURSOR_REFRESH, this.#entries.size)) this.#restartCursor();
  }

  #remove(key: string): void {
    const entry = this.#entries.get(key);
    if (typeof entry === 'object') this.#leases--;
    this.#entries.delete(key);
    if (key === this.#oldest) this.#oldest = undefined;
  }

  #restartCursor(): void {
    this.#cursor = this.#entries.keys();
    this.#oldest = undefined;
    this.#appended = 0;
  }
}

function normaliseMax(value: number | undefined): number {
  if (value === undefined) return DEFAULT_MAX_ENTRIES;
  if (!Number.isFinite(value) || value < 1) {
    throw new RangeError(`maxEntries must be a finite number >= 1 (got ${String(value)}).`);
  }
  return Math.floor(value);
}
