import { positive } from '../util/values.js';
import type { Provider } from './types.js';

/**
 * Every default of the pipeline in one place. Where a provider's delivery rules force a value, the comment
 * says which rule.
 */
export const DEFAULTS = Object.freeze({
  /** Stripe retries for up to 3 days, so a completed event is remembered that long. */
  dedupTtlMs: 3 * 24 * 60 * 60 * 1000,
  /** A claim outlives any reasonable handler; a crashed worker's claim frees itself after this. */
  leaseMs: 60_000,
  /**
   * Largest body per provider. Chatwoot allows 150,000 characters in a message and its body carries them
   * about three times, with `<>&` escaped as 6 bytes each: a valid body reaches ~2.7 MB. Stripe events are
   * far smaller.
   */
  maxBodyBytes: Object.freeze({ chatwoot: 4 * 1024 * 1024, stripe: 1024 * 1024 }),
  /** A slow sender cannot hold memory and a socket for longer. */
  readTimeoutMs: 10_000,
  /** What `Retry-After` asks for when the dedup store failed. */
  storeRetryAfterSeconds: 10,
  /** How long a handler's `close()` waits for handlers still running. */
  closeTimeoutMs: 10_000,
});

/** The limits a body reader needs, resolved from the options with the defaults. */
export interface BodyLimits {
  readonly maxBodyBytes: number;
  readonly readTimeoutMs: number;
}

/** Resolves the body limits once per handler (adapters that read the body themselves use the same). */
export function resolveBodyLimits(
  options: { maxBodyBytes?: number | undefined; readTimeoutMs?: number | undefined },
  provider: Provider,
): BodyLimits {
  return {
    maxBodyBytes: positive(options.maxBodyBytes, DEFAULTS.maxBodyBytes[provider]),
    readTimeoutMs: positive(options.readTimeoutMs, DEFAULTS.readTimeoutMs),
  };
}
