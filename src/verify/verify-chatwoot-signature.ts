import { WebhookError } from '../errors/webhook-error.js';
import type { HeaderSource, RawBody } from '../types/common.js';
import { toBytes } from '../util/bytes.js';
import { readDeliveryId } from '../util/delivery-id.js';
import { readSingleHeader } from '../util/headers.js';
import { whitespaceHint, type UsableSecret } from '../util/secrets.js';
import { syncOnly, andThen, type Maybe } from '../platform/index.js';
import { isThenable } from '../util/values.js';
import { decodeHexDigest, matchSecret } from './hmac.js';
import {
  checkTimestamp,
  resolveVerifyOptions,
  type ResolvedVerifyOptions,
  type VerifyOptions,
} from './verify-options.js';

/**
 * Options for {@link verifyChatwootSignature}.
 */
export interface ChatwootVerifyOptions extends VerifyOptions {
  /**
   * `'chatwoot'` (default): `X-Chatwoot-Signature: sha256=<hex HMAC of "{X-Chatwoot-Timestamp}.{body}">`, as
   * Chatwoot signs since v4.11.2. `'legacy-body'`: hex HMAC of the raw body alone, no timestamp (self-built
   * senders and older relays); opt-in, because without a timestamp a captured request can be replayed.
   */
  scheme?: 'chatwoot' | 'legacy-body';
}

/**
 * What a successful Chatwoot verification tells you.
 */
export interface ChatwootVerification {
  /** Index in `options.secret` of the secret that matched (during a rotation: old or new). */
  secretIndex: number;
  /** The signed `X-Chatwoot-Timestamp`, in unix seconds; undefined under `legacy-body`. */
  timestamp: number | undefined;
  /** `X-Chatwoot-Delivery` (not covered by the signature), when sent. */
  deliveryId: string | undefined;
}

const SIGNATURE_HEADER = 'x-chatwoot-signature';
const TIMESTAMP_HEADER = 'x-chatwoot-timestamp';
// Unix seconds as Chatwoot sends them: plain digits. 15 digits bound the number safely below 2^53.
const TIMESTAMP_PATTERN = /^\d{1,15}$/;

/**
 * Verifies a Chatwoot webhook signature over the exact bytes received. Throws {@link WebhookError}
 * (and nothing else) when the request is not authentic, stale, or the secret is missing.
 *
 * Synchronous, so it needs `node:crypto` (Node, Bun, Deno); under Web Crypto only (Cloudflare Workers,
 * Vercel Edge) it throws a TypeError once it needs an HMAC: use {@link verifyChatwootSignatureAsync}.
 *
 * @example
 * ```ts
 * import { verifyChatwootSignature } from 'hookguard';
 * const { secretIndex, deliveryId } = verifyChatwootSignature(rawBody, req.headers, {
 *   secret: process.env.CW_HMAC_SECRET!,
 * });
 * ```
 */
export function verifyChatwootSignature(
  rawBody: RawBody,
  headers: HeaderSource,
  options: ChatwootVerifyOptions,
): ChatwootVerification {
  const resolved = resolveChatwootVerifyOptions(options); // a missing secret is reported before the body
  return syncOnly(
    checkChatwootSignature(toBytes(rawBody), headers, resolved),
    'verifyChatwootSignature',
    'verifyChatwootSignatureAsync',
  );
}

/**
 * {@link verifyChatwootSignature} for every runtime, Web Crypto ones included (Cloudflare Workers, Vercel
 * Edge): the same checks and errors, as a promise.
 *
 * @example
 * ```ts
 * import { verifyChatwootSignatureAsync } from 'hookguard';
 * const { deliveryId } = await verifyChatwootSignatureAsync(rawBody, headers, { secret: process.env.CW_HMAC_SECRET! });
 * ```
 */
export async function verifyChatwootSignatureAsync(
  rawBody: RawBody,
  headers: HeaderSource,
  options: ChatwootVerifyOptions,
): Promise<ChatwootVerification> {
  const resolved = resolveChatwootVerifyOptions(options);
  return checkChatwootSignature(toBytes(rawBody), headers, resolved);
}

/** {@link ChatwootVerifyOptions} resolved once (see {@link resolveVerifyOptions}). */
export interface ResolvedChatwootVerifyOptions extends ResolvedVerifyOptions {
  readonly legacy: boolean;
}

/** Resolves Chatwoot verifier options once; throws MISSING_SECRET when no secret is usable. */
export function resolveChatwootVerifyOptions(options: unknown): ResolvedChatwootVerifyOptions {
  const scheme =
    typeof options === 'object' && options !== null ? (options as ChatwootVerifyOptions).scheme : undefined;
  const { secrets, toleranceSeconds, now } = resolveVerifyOptions(options, 'Chatwoot');
  // Built field by field: an object spread here was a sixth of a 1 KB verification (profiled).
  return { secrets, toleranceSeconds, now, legacy: scheme === 'legacy-body' };
}

/** The check behind {@link verifyChatwootSignature}, with options already resolved (the pipeline's path). */
export function checkChatwootSignature(
  body: Uint8Array,
  headers: HeaderSource,
  options: ResolvedChatwootVerifyOptions,
): Maybe<ChatwootVerification> {
  const { secrets } = options;
  const received = [readSignature(headers)];
  const deliveryId = readDeliveryId(headers);

  if (options.legacy) {
    return andThen(matchSecret(secrets, undefined, body, received), (index) => {
      if (index !== undefined) return { secretIndex: index, timestamp: undefined, deliveryId };
      return andThen(hintTimestampScheme(secrets, headers, body, received), (hint) => {
        throw mismatch(secrets, 'the raw body', hint);
      });
    });
  }

  const rawTimestamp = readTimestamp(headers);
  const index = matchSecret(secrets, `${rawTimestamp}.`, body, received);
  // No closure on the synchronous (Node) path: this runs once per request.
  if (!isThenable(index)) return afterMatch(index, rawTimestamp, deliveryId, body, received, options);
  return index.then((i) => afterMatch(i, rawTimestamp, deliveryId, body, received, options));
}

function afterMatch(
  index: number | undefined,
  rawTimestamp: string,
  deliveryId: string | undefined,
  body: Uint8Array,
  received: readonly Uint8Array[],
  options: ResolvedChatwootVerifyOptions,
): Maybe<ChatwootVerification> {
  if (index === undefined) {
    return andThen(matchSecret(options.secrets, undefined, body, received), (bodyOnly) => {
      const hint =
        bodyOnly === undefined
          ? ''
          : " The signature is an HMAC of the body alone: this sender uses the legacy scheme, so set scheme: 'legacy-body'.";
      throw mismatch(options.secrets, 'the timestamp and raw body', hint);
    });
  }
  const timestamp = Number(rawTimestamp);
  checkTimestamp(timestamp, options, 'X-Chatwoot-Timestamp');
  return { secretIndex: index, timestamp, deliveryId };
}

function readTimestamp(headers: HeaderSource): string {
  const rawTimestamp = readSingleHeader(headers, TIMESTAMP_HEADER);
  if (rawTimestamp === undefined || rawTimestamp === '') {
    throw new WebhookError(
      'MISSING_TIMESTAMP',
      'The X-Chatwoot-Timestamp header is missing. Chatwoot (v4.11.2+) sends it with every signed webhook; ' +
        "a sender that signs only the body needs scheme: 'legacy-body'.",
    );
  }
  if (rawTimestamp === null || !TIMESTAMP_PATTERN.test(rawTimestamp)) {
    throw new WebhookError(
      'MALFORMED_SIGNATURE',
      'The X-Chatwoot-Timestamp header is not a single unix time in seconds (digits only).',
    );
  }
  return rawTimestamp;
}

function readSignature(headers: HeaderSource): Uint8Array {
  const value = readSingleHeader(headers, SIGNATURE_HEADER);
  if (value === null) {
    throw new WebhookError('MALFORMED_SIGNATURE', 'The X-Chatwoot-Signature header was sent more than once.');
  }
  if (value === undefined || value.trim() === '') {
    throw new WebhookError(
      'MISSING_SIGNATURE',
      'The X-Chatwoot-Signature header is missing. Set a secret on this webhook (or agent bot / API inbox) in ' +
        'Chatwoot; Chatwoot signs from v4.11.2 (account webhooks) and v4.13.0 (agent bots, API inboxes).',
    );
  }
  // Chatwoot sends `sha256=<lowercase hex>`; we also take the bare hex and either case.
  const trimmed = value.trim();
  const hex = /^sha256=/i.test(trimmed) ? trimmed.slice(7) : trimmed;
  const digest = decodeHexDigest(hex);
  if (digest === undefined) {
    throw new WebhookError(
      'MALFORMED_SIGNATURE',
      'The X-Chatwoot-Signature header is not "sha256=" followed by 64 hex digits.',
    );
  }
  return digest;
}

function hintTimestampScheme(
  secrets: readonly UsableSecret[],
  headers: HeaderSource,
  body: Uint8Array,
  received: readonly Uint8Array[],
): Maybe<string> {
  const rawTimestamp = readSingleHeader(headers, TIMESTAMP_HEADER);
  if (typeof rawTimestamp !== 'string' || !TIMESTAMP_PATTERN.test(rawTimestamp)) return '';
  return andThen(matchSecret(secrets, `${rawTimestamp}.`, body, received), (index) =>
    index === undefined
      ? ''
      : " The signature covers X-Chatwoot-Timestamp: this is Chatwoot's current scheme, so drop scheme: 'legacy-body'.",
  );
}

function mismatch(secrets: readonly UsableSecret[], covered: string, hint: string): WebhookError {
  const tried =
    secrets.length === 1 ? 'the configured secret' : `any of the ${secrets.length} configured secrets`;
  return new WebhookError(
    'SIGNATURE_MISMATCH',
    `X-Chatwoot-Signature does not match an HMAC-SHA256 of ${covered} under ${tried}.${hint}` +
      whitespaceHint(secrets) +
      " Check that the secret is the one shown in this webhook's Chatwoot settings (the REST API may report a " +
      'different one: chatwoot/chatwoot#13809) and that the body is the raw bytes, not re-serialised JSON.',
  );
}
