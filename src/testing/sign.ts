import { randomUUID } from 'node:crypto';
import { createHmac } from 'node:crypto';

/** HMAC-SHA256 of `prefix` + `body` (the signers run in tests, on Node). */
function hmacSha256(secret: string, prefix: string | undefined, body: Uint8Array): Buffer {
  const hmac = createHmac('sha256', secret);
  if (prefix !== undefined) hmac.update(prefix, 'utf8');
  return hmac.update(body).digest();
}

/**
 * A signed delivery: the exact body string to send and the headers that sign it.
 */
export interface SignedPayload {
  body: string;
  headers: Record<string, string>;
}

/**
 * Options for {@link signChatwootPayload}.
 */
export interface SignChatwootOptions {
  /** Unix seconds; default now. */
  timestamp?: number;
  /** `X-Chatwoot-Delivery`; default a fresh UUID. */
  deliveryId?: string;
  /** Default `'chatwoot'` (`sha256=` over `"{timestamp}.{body}"`); `'legacy-body'` signs the body only. */
  scheme?: 'chatwoot' | 'legacy-body';
}

/**
 * Signs a body as Chatwoot does, for your own tests. Objects are serialised with `JSON.stringify`; send
 * the returned `body` string as is.
 *
 * @example
 * ```ts
 * import { signChatwootPayload, chatwootEvent } from 'hookguard/testing';
 * const { body, headers } = signChatwootPayload(chatwootEvent('message_created'), 'my-secret');
 * ```
 */
export function signChatwootPayload(
  body: string | object,
  secret: string,
  options: SignChatwootOptions = {},
): SignedPayload {
  const text = typeof body === 'string' ? body : railsJson(body);
  const bytes = Buffer.from(text, 'utf8');
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'x-chatwoot-delivery': options.deliveryId ?? randomUUID(),
  };
  if (options.scheme === 'legacy-body') {
    headers['x-chatwoot-signature'] = hmacSha256(secret, undefined, bytes).toString('hex');
  } else {
    const timestamp = String(options.timestamp ?? nowSeconds());
    headers['x-chatwoot-timestamp'] = timestamp;
    headers['x-chatwoot-signature'] = `sha256=${hmacSha256(secret, `${timestamp}.`, bytes).toString('hex')}`;
  }
  return { body: text, headers };
}

/**
 * Options for {@link signStripePayload}.
 */
export interface SignStripeOptions {
  /** Unix seconds; default now. */
  timestamp?: number;
}

/**
 * Signs a body as Stripe does (`Stripe-Signature: t=…,v1=…`), for your own tests. The header is the one
 * `Stripe.webhooks.generateTestHeaderString` makes for the same payload, secret and time.
 *
 * @example
 * ```ts
 * import { signStripePayload, stripeEvent } from 'hookguard/testing';
 * const { body, headers } = signStripePayload(stripeEvent('checkout.session.completed'), 'whsec_test');
 * ```
 */
export function signStripePayload(
  body: string | object,
  secret: string,
  options: SignStripeOptions = {},
): SignedPayload {
  const text = serialise(body);
  const timestamp = Math.floor(options.timestamp ?? nowSeconds());
  const signature = hmacSha256(secret, `${timestamp}.`, Buffer.from(text, 'utf8')).toString('hex');
  return {
    body: text,
    headers: { 'content-type': 'application/json', 'stripe-signature': `t=${timestamp},v1=${signature}` },
  };
}

/**
 * JSON as Rails' `to_json` writes it, as Chatwoot sends it: `<`, `>` and `&` escaped as `\u003c`,
 * `\u003e`, `\u0026` (6 bytes each), and the JavaScript line separators U+2028 and U+2029 escaped too.
 */
export function railsJson(value: object): string {
  return JSON.stringify(value).replace(/[<>&\u2028\u2029]/g, (c) => RAILS_ESCAPES[c]!);
}
const RAILS_ESCAPES: Record<string, string> = {
  '<': '\\u003c',
  '>': '\\u003e',
  '&': '\\u0026',
  '\u2028': '\\u2028',
  '\u2029': '\\u2029',
};

function serialise(body: string | object): string {
  return typeof body === 'string' ? body : JSON.stringify(body);
}

function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}
