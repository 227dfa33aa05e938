/**
 * Every way a webhook can be refused or fail, as a stable string users can switch on.
 */
export type WebhookErrorCode =
  | 'MISSING_SECRET'
  | 'MISSING_SIGNATURE'
  | 'MALFORMED_SIGNATURE'
  | 'MISSING_TIMESTAMP'
  | 'TIMESTAMP_OUT_OF_TOLERANCE'
  | 'SIGNATURE_MISMATCH'
  | 'BODY_TOO_LARGE'
  | 'READ_TIMEOUT'
  | 'INVALID_JSON'
  | 'INVALID_PAYLOAD'
  | 'RAW_BODY_UNAVAILABLE'
  | 'STORE_UNAVAILABLE'
  | 'INBOX_UNAVAILABLE'
  | 'HANDLER_FAILED';

/**
 * The HTTP status answered for each {@link WebhookErrorCode}.
 *
 * @example
 * ```ts
 * import { WEBHOOK_ERROR_STATUS } from 'hookguard';
 * WEBHOOK_ERROR_STATUS.SIGNATURE_MISMATCH; // 401
 * ```
 */
export const WEBHOOK_ERROR_STATUS: Readonly<Record<WebhookErrorCode, number>> = Object.freeze({
  // A missing secret is the receiver's configuration fault, not the sender's: 500 makes it visible.
  MISSING_SECRET: 500,
  MISSING_SIGNATURE: 401,
  MALFORMED_SIGNATURE: 401,
  MISSING_TIMESTAMP: 401,
  TIMESTAMP_OUT_OF_TOLERANCE: 401,
  SIGNATURE_MISMATCH: 401,
  BODY_TOO_LARGE: 413,
  // The body did not arrive within readTimeoutMs (a slowloris sender, or a stalled client).
  READ_TIMEOUT: 408,
  INVALID_JSON: 400,
  INVALID_PAYLOAD: 400,
  RAW_BODY_UNAVAILABLE: 500,
  STORE_UNAVAILABLE: 503,
  // The durable inbox did not acknowledge the event in time: nothing was queued, the sender must retry.
  INBOX_UNAVAILABLE: 503,
  HANDLER_FAILED: 500,
});

// Symbol.for is shared by every copy of this module in the process (an ESM and a CJS copy can be
// loaded side by side), so the brand works where `instanceof` does not.
const BRAND = Symbol.for('hookguard.WebhookError');

/**
 * The one error hookguard throws. Its message explains the cause for the developer; it never contains
 * the payload, a signature or a secret.
 *
 * @example
 * ```ts
 * import { WebhookError } from 'hookguard';
 * throw new WebhookError('INVALID_PAYLOAD', 'The body is JSON but not an object.');
 * ```
 */
export class WebhookError extends Error {
  /** Stable code to switch on. */
  readonly code: WebhookErrorCode;
  /** HTTP status that answers this error. */
  readonly status: number;

  constructor(code: WebhookErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options !== undefined && 'cause' in options ? { cause: options.cause } : undefined);
    this.name = 'WebhookError';
    this.code = code;
    this.status = WEBHOOK_ERROR_STATUS[code];
    Object.defineProperty(this, BRAND, { value: true, enumerable: false });
  }
}

/**
 * True for a {@link WebhookError} from any copy of hookguard (ESM or CJS): it checks a brand, not `instanceof`.
 *
 * @example
 * ```ts
 * import { isWebhookError, verifyStripeEvent } from 'hookguard';
 * try {
 *   verifyStripeEvent(body, headers, { secret });
 * } catch (err) {
 *   if (isWebhookError(err)) console.warn(err.code);
 * }
 * ```
 */
export function isWebhookError(value: unknown): value is WebhookError {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
}
