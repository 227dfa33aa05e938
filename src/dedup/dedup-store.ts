/**
 * The answer to {@link DedupStore.claim}.
 *
 * @example
 * ```ts
 * import type { ClaimResult } from 'hookguard';
 * const skip = (r: ClaimResult) => r.status !== 'claimed';
 * ```
 */
export type ClaimResult =
  /** You own the key now: process, then `complete()` or `release()` with this token. */
  | { status: 'claimed'; token: string }
  /** Completed before (and not yet expired): skip. */
  | { status: 'duplicate' }
  /** Someone holds a live claim: ask the sender to retry later. */
  | { status: 'in-flight' };

/**
 * Where "this event was processed" is remembered. Implementations must make `claim` atomic, and make
 * `complete` / `release` act only while `token` still owns the key.
 *
 * @example
 * ```ts
 * import { createMemoryDedupStore, type DedupStore } from 'hookguard';
 * const store: DedupStore = createMemoryDedupStore({ maxEntries: 50_000 });
 * ```
 */
export interface DedupStore {
  /** Atomically take `key` for `leaseMs` unless it is completed or leased by someone else. */
  claim(key: string, leaseMs: number): ClaimResult | Promise<ClaimResult>;
  /** Mark `key` done for `ttlMs`, only if `token` still owns it. */
  complete(key: string, token: string, ttlMs: number): void | Promise<void>;
  /** Give `key` up so a retry can claim it, only if `token` still owns it. */
  release(key: string, token: string): void | Promise<void>;
  /** Free resources (connections, timers). */
  close?(): void | Promise<void>;
}
