import { WebhookError } from '../errors/webhook-error.js';
import type { HeaderSource, RawBody } from '../types/common.js';
import type { StripeWebhookEvent } from '../types/stripe.js';
import { parseJsonObject, toBytes } from '../util/bytes.js';
import { readHeader } from '../util/headers.js';
import { stripeSecretHint, whitespaceHint } from '../util/secrets.js';
import { P, syncOnly, type Maybe } from '../platform/index.js';
import { isThenable } from '../util/values.js';
import { matchSecret } from './hmac.js';
import {
  checkTimestamp,
  resolveVerifyOptions,
  type ResolvedVerifyOptions,
  type VerifyOptions,
} from './verify-options.js';

const SIGNATURE_HEADER = 'stripe-signature';
const V1_HEX = /^[0-9a-f]{64}$/;

interface ParsedStripeHeader {
  timestamp: number;
  signatures: Uint8Array[];
}

/**
 * Verifies a Stripe webhook (`Stripe-Signature: t=…,v1=…`) over the exact bytes received and returns the
 * parsed event. Agrees with `Stripe.webhooks.constructEvent` on what it accepts, with these differences:
 * timestamps too far in the future are refused, several secrets may be given, a `t=` that is not a
 * non-negative integer is refused, bytes that are not valid UTF-8 are hashed as received (stripe-node
 * re-encodes them), and the body must be an event object (thin events included). Throws
 * {@link WebhookError} and nothing else (but for the runtime refusal below).
 *
 * @example
 * ```ts
 * import { verifyStripeEvent } from 'hookguard';
 * const event = verifyStripeEvent(rawBody, req.headers, { secret: process.env.STRIPE_WEBHOOK_SECRET! });
 * if (event.type === 'checkout.session.completed') await fulfil(event);
 * ```
 *
 * Synchronous, so it needs `node:crypto` (Node, Bun, Deno); under Web Crypto only (Cloudflare Workers,
 * Vercel Edge) it throws a TypeError: use {@link verifyStripeEventAsync} there.
 */
export function verifyStripeEvent(
  rawBody: RawBody,
  headers: HeaderSource | string | Uint8Array,
  options: VerifyOptions,
): StripeWebhookEvent {
  const resolved = resolveVerifyOptions(options, 'Stripe'); // a missing secret is reported before the body
  return syncOnly(
    checkStripeEvent(toBytes(rawBody), headers, resolved),
    'verifyStripeEvent',
    'verifyStripeEventAsync',
  );
}

/**
 * {@link verifyStripeEvent} for every runtime, Web Crypto ones included (Cloudflare Workers, Vercel Edge):
 * the same checks and errors, as a promise.
 *
 * @example
 * ```ts
 * import { verifyStripeEventAsync } from 'hookguard';
 * const event = await verifyStripeEventAsync(rawBody, req.headers, { secret: process.env.STRIPE_WEBHOOK_SECRET! });
 * ```
 */
export async function verifyStripeEventAsync(
  rawBody: RawBody,
  headers: HeaderSource | string | Uint8Array,
  options: VerifyOptions,
): Promise<StripeWebhookEvent> {
  const resolved = resolveVerifyOptions(options, 'Stripe');
  return checkStripeEvent(toBytes(rawBody), headers, resolved);
}

/** The check behind {@link verifyStripeEvent}, with options already resolved (the pipeline's path). */
export function checkStripeEvent(
  body: Uint8Array,
  headers: HeaderSource | string | Uint8Array,
  options: ResolvedVerifyOptions,
): Maybe<StripeWebhookEvent> {
  const header = parseHeader(signatureValue(headers));
  // Every v1 is compared (no early exit on the first match) so timing does not reveal which matched.
  const index = matchSecret(options.secrets, `${header.timestamp}.`, body, header.signatures);
  // No closure on the synchronous (Node) path: this runs once per request.
  if (!isThenable(index)) return afterMatch(index, header.timestamp, body, options);
  return index.then((matched) => afterMatch(matched, header.timestamp, body, options));
}

function afterMatch(
  index: number | undefined,
  timestamp: number,
  body: Uint8Array,
  options: ResolvedVerifyOptions,
): StripeWebhookEvent {
  const { secrets } = options;
  if (index === undefined) {
    const tried =
      secrets.length === 1 ? 'the configured secret' : `any of the ${secrets.length} configured secrets`;
    throw new WebhookError(
      'SIGNATURE_MISMATCH',
      `No v1 signature in Stripe-Signature matches the raw body under ${tried}.` +
        stripeSecretHint(secrets) +
        whitespaceHint(secrets) +
        " Check that the secret is this endpoint's signing secret (whsec_…, each endpoint and each `stripe listen` " +
        'session has its own) and that the body is the raw bytes: a JSON parser that ran first changes them.',
    );
  }
  checkTimestamp(timestamp, options, 'Stripe-Signature');
  return parseStripeEvent(body);
}

/** The Stripe-Signature value: given as is (text or, as stripe-node takes it, bytes), or read from headers. */
function signatureValue(headers: unknown): string | readonly string[] | undefined {
  if (typeof headers === 'string') return headers;
  if (headers instanceof Uint8Array) return utf8.decode(headers);
  return readHeader(headers, SIGNATURE_HEADER);
}

const utf8 = new TextDecoder();

/**
 * Reads `t=…,v1=…` the way stripe-node does (split on "," then "=", last `t` wins, `v0` ignored), so the
 * same headers pass and fail, but refuses a `t` that is not a non-negative integer: stripe-node would
 * hash "NaN." and skip its time check.
 */
// Digits only (at most 15, safely below 2^53) so Number() gives what stripe-node's parseInt gives.
const COMMON_FORM = /^t=(\d{1,15}),v1=([0-9a-f]{64})(?:,v0=[0-9a-f]*)?$/;

function parseHeader(value: string | readonly string[] | undefined): ParsedStripeHeader {
  if (value === undefined || value === '') {
    throw new WebhookError(
      'MISSING_SIGNATURE',
      'The Stripe-Signature header is missing. Is this request from Stripe, and does the proxy in front keep the header?',
    );
  }
  if (typeof value !== 'string') {
    if (value.length !== 1 || value[0] === undefined) {
      throw new WebhookError('MALFORMED_SIGNATURE', 'The Stripe-Signature header was sent more than once.');
    }
    return parseHeader(value[0]);
  }
  // The form Stripe sends (one t, one v1, maybe a v0) in one pass; anything else takes the general reader.
  const common = COMMON_FORM.exec(value);
  if (common !== null) {
    return { timestamp: Number(common[1]), signatures: [P.decodeHex32(common[2]!)!] };
  }
  let rawTimestamp: string | undefined;
  let sawTimestamp = false;
  const signatures: Uint8Array[] = [];
  let emptySignature = false;
  let otherSchemes = 0;
  for (const item of value.split(',')) {
    // stripe-node reads item.split('=') as [key, value]: the value ends at a second '=', if any.
    const eq = item.indexOf('=');
    const key = eq === -1 ? item : item.slice(0, eq);
    const end = eq === -1 ? -1 : item.indexOf('=', eq + 1);
    const part = eq === -1 ? undefined : item.slice(eq + 1, end === -1 ? undefined : end);
    if (key === 't') {
      sawTimestamp = true;
      rawTimestamp = part;
    } else if (key === 'v1') {
      // stripe-node throws on an empty v1 even when another v1 matches; refusing keeps us in step.
      if (part === undefined || part === '') emptySignature = true;
      else if (V1_HEX.test(part)) signatures.push(P.decodeHex32(part)!);
      else signatures.push(new Uint8Array(0)); // a v1 that can never match, like a wrong-length string
    } else {
      otherSchemes++;
    }
  }
  if (!sawTimestamp) {
    throw new WebhookError(
      'MISSING_TIMESTAMP',
      'The Stripe-Signature header has no t= timestamp (expected "t=<unix seconds>,v1=<hex>").',
    );
  }
  const timestamp = parseTimestamp(rawTimestamp);
  if (timestamp === undefined) {
    throw new WebhookError(
      'MALFORMED_SIGNATURE',
      'The t= value in Stripe-Signature is not a unix time in seconds (expected "t=<unix seconds>,v1=<hex>").',
    );
  }
  if (emptySignature) {
    throw new WebhookError('MALFORMED_SIGNATURE', 'The Stripe-Signature header has an empty v1= entry.');
  }
  if (signatures.length === 0) {
    throw new WebhookError(
      'MALFORMED_SIGNATURE',
      otherSchemes > 0
        ? 'The Stripe-Signature header has no v1 signature (v0 and other schemes are not accepted).'
        : 'The Stripe-Signature header has no v1 signature (expected "t=<unix seconds>,v1=<hex>").',
    );
  }
  return { timestamp, signatures };
}

function parseTimestamp(raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  // parseInt as stripe-node uses it: the signed prefix is the parsed number, not the raw text.
  const parsed = Number.parseInt(raw, 10);
  // -1 is stripe-node's "no timestamp" sentinel; every negative and NaN is refused here.
  return Number.isFinite(parsed) && parsed >= 0 ? parsed : undefined;
}

/** Parses a Stripe body into an event (after verification, or unverified under allowUnsigned). */
export function parseStripeEvent(body: Uint8Array): StripeWebhookEvent {
  const event = parseJsonObject(body, 'Stripe');
  if (typeof event.id !== 'string' || typeof event.type !== 'string') {
    throw new WebhookError('INVALID_PAYLOAD', 'The Stripe webhook body lacks a string "id" and "type".');
  }
  return event as unknown as StripeWebhookEvent;
}
