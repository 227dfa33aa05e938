/**
 * The answer to {@link DedupStore.claim}.
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
 */
export interface DedupStore {
  /** Atomically take `key` for `leaseMs` unless it is completed or leased by someone else. */
  claim(key: string, leaseMs: number): ClaimResult | Promise<ClaimResult>;
  /** Mark `key` done for `ttlMs`, only if `token` still owns it. */
  complete(key: string, token: string, ttlMs: number): void | Promise<void>;
  /** Give `key` up so a retry can claim it, only if `token` still owns it. */
  release(key: string, token: string): void | Promise<void>;
  /**
   * Stop: refuse new calls, wait for those in flight, free what the store itself owns (timers, memory).
   * Never closes a client or pool that was passed in. A handler calls it on its own default store only.
   */
  close?(): void | Promise<void>;
}
