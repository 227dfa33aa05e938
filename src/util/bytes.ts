import { WebhookError } from '../errors/webhook-error.js';
import { P } from '../platform/index.js';

/**
 * The received body as bytes, without copying where the input already is bytes.
 * A parsed object (the bytes are gone) is the most common webhook bug, so it gets its own code and fix.
 */
export function toBytes(rawBody: unknown): Uint8Array {
  if (typeof rawBody === 'string') return P.utf8Encode(rawBody);
  if (rawBody instanceof Uint8Array) return rawBody;
  if (rawBody instanceof ArrayBuffer) return new Uint8Array(rawBody);
  if (ArrayBuffer.isView(rawBody))
    return new Uint8Array(rawBody.buffer, rawBody.byteOffset, rawBody.byteLength);
  const what = rawBody === null ? 'null' : rawBody === undefined ? 'undefined' : `a ${typeof rawBody}`;
  throw new WebhookError(
    'RAW_BODY_UNAVAILABLE',
    `The raw request body is needed to check the signature, but got ${what}. ` +
      'A JSON body parser probably ran first and the original bytes are gone: pass the raw body ' +
      '(a Buffer, Uint8Array, ArrayBuffer or the exact string), e.g. mount express.raw({ type: "application/json" }) ' +
      'on this route or register the webhook route before express.json().',
  );
}

/**
 * Parses a webhook body that must be a JSON object: `INVALID_JSON` when it is not JSON, `INVALID_PAYLOAD`
 * when it is JSON but not an object. `label` names the provider in the message.
 */
export function parseJsonObject(bytes: Uint8Array, label: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(P.utf8Decode(bytes));
  } catch {
    // No `cause`: V8's SyntaxError message quotes part of the body, and errors must not carry payloads.
    throw new WebhookError('INVALID_JSON', `The ${label} webhook body is not valid JSON.`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new WebhookError('INVALID_PAYLOAD', `The ${label} webhook body is JSON but not an object.`);
  }
  return parsed as Record<string, unknown>;
}
