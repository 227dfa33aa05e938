import { WebhookError } from '../errors/webhook-error.js';
import { usableSecrets, type UsableSecret } from '../util/secrets.js';

/**
 * Options shared by the verifiers.
 */
export interface VerifyOptions {
  /** The signing secret, or several during a rotation: tried in order, the first match wins. */
  secret: string | readonly string[];
  /**
   * How far the signed timestamp may be from now, in seconds, in both directions. Default 300;
   * 0 turns the time check off. A negative or non-finite value falls back to the default rather than
   * silently disabling replay protection.
   */
  toleranceSeconds?: number;
  /** Clock in milliseconds since the epoch; default `Date.now`. */
  now?: () => number;
}

/**
 * Default timestamp tolerance in seconds: both Stripe and Chatwoot recommend about five minutes.
 *
 * @example
 * ```ts
 * import { DEFAULT_TOLERANCE_SECONDS } from 'hookguard';
 * const toleranceSeconds = DEFAULT_TOLERANCE_SECONDS * 2;
 * ```
 */
export const DEFAULT_TOLERANCE_SECONDS = 300;

/** {@link VerifyOptions} checked and defaulted once, so a handler does not redo it for every request. */
export interface ResolvedVerifyOptions {
  readonly secrets: readonly UsableSecret[];
  readonly toleranceSeconds: number;
  readonly now: () => number;
}

/**
 * Resolves verifier options: the usable secrets (MISSING_SECRET when there is none), the tolerance and the
 * clock. `options` is whatever the caller passed, checked here because JavaScript callers can pass anything.
 */
export function resolveVerifyOptions(options: unknown, provider: string): ResolvedVerifyOptions {
  const opts: Partial<VerifyOptions> = typeof options === 'object' && options !== null ? options : {};
  const tolerance = opts.toleranceSeconds;
  return {
    secrets: usableSecrets(opts.secret, provider),
    toleranceSeconds:
      typeof tolerance === 'number' && Number.isFinite(tolerance) && tolerance >= 0
        ? tolerance
        : DEFAULT_TOLERANCE_SECONDS,
    now: typeof opts.now === 'function' ? opts.now : Date.now,
  };
}

/**
 * Two-sided window check (stripe-node only rejects old timestamps; a far-future one would stay
 * replayable until it ages). `label` names the header for the message.
 */
export function checkTimestamp(
  timestampSeconds: number,
  options: Pick<ResolvedVerifyOptions, 'toleranceSeconds' | 'now'>,
  label: string,
): void {
  const tolerance = options.toleranceSeconds;
  if (tolerance === 0) return;
  const nowMs = options.now();
  if (typeof nowMs !== 'number' || !Number.isFinite(nowMs)) {
    throw new WebhookError(
      'TIMESTAMP_OUT_OF_TOLERANCE',
      'The configured clock (options.now) did not return a finite number of milliseconds, so the timestamp cannot be checked.',
    );
  }
  const age = Math.floor(nowMs / 1000) - timestampSeconds;
  if (age > tolerance) {
    throw new WebhookError(
      'TIMESTAMP_OUT_OF_TOLERANCE',
      `The ${label} timestamp is ${age} s old, over the ${tolerance} s tolerance. ` +
        "Either this is a replay of an old delivery, or this server's clock is ahead by about that much (check NTP).",
    );
  }
  if (
    -age > tolerance &&
    Math.abs(Math.floor(nowMs / 1000) - Math.floor(timestampSeconds / 1000)) <= tolerance
  ) {
    throw new WebhookError(
      'TIMESTAMP_OUT_OF_TOLERANCE',
      `The ${label} timestamp looks like milliseconds (it matches the current time in milliseconds): the sender must sign with a unix time in seconds.`,
    );
  }
  if (-age > tolerance) {
    throw new WebhookError(
      'TIMESTAMP_OUT_OF_TOLERANCE',
      `The ${label} timestamp is ${-age} s in the future, over the ${tolerance} s tolerance. ` +
        "This server's clock is probably behind by that much (check NTP), or the timestamp was forged.",
    );
  }
}
