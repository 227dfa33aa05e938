import { isWebhookError, WebhookError, type WebhookErrorCode } from './webhook-error.js';

/** BODY_TOO_LARGE, raised by the pipeline and by every streaming body reader. */
export function bodyTooLarge(maxBytes: number): WebhookError {
  return new WebhookError(
    'BODY_TOO_LARGE',
    `The request body is over the ${maxBytes}-byte limit (maxBodyBytes).`,
  );
}

/** READ_TIMEOUT, raised by the streaming body readers. */
export function readTimedOut(timeoutMs: number): WebhookError {
  return new WebhookError(
    'READ_TIMEOUT',
    `The request body did not arrive within ${timeoutMs} ms (readTimeoutMs).`,
  );
}

/** RAW_BODY_UNAVAILABLE with a message saying what consumed the bytes and how to fix it. */
export function bodyUnavailable(message: string, cause?: unknown): WebhookError {
  return new WebhookError('RAW_BODY_UNAVAILABLE', message, cause === undefined ? undefined : { cause });
}

/** `err` when it is already a WebhookError, else a new one with `code`, keeping `err` as its cause. */
export function asWebhookError(err: unknown, code: WebhookErrorCode, message: string): WebhookError {
  return isWebhookError(err) ? err : new WebhookError(code, message, { cause: err });
}

// Symbol.for, like WebhookError's brand: an ESM and a CJS copy of this module must agree.
const CLIENT_FAULT = Symbol.for('hookguard.clientBodyFault');

/**
 * RAW_BODY_UNAVAILABLE caused by the client (it went away mid-body, or its framework refused the body's
 * framing): answered 400 and logged as a warning, not as our failure.
 */
export function clientBodyFault(message: string, cause?: unknown): WebhookError {
  const error = bodyUnavailable(message, cause);
  Object.defineProperty(error, CLIENT_FAULT, { value: true, enumerable: false });
  return error;
}

/** Whether `err` came from {@link clientBodyFault}. */
export function isClientBodyFault(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as Record<symbol, unknown>)[CLIENT_FAULT] === true;
}
