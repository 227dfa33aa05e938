import { bytesEqual, decodeHex32, hmacSha256 } from '#platform';
import type { Maybe, Platform } from '../platform/index.js';
import { isThenable } from '../util/values.js';

// Bound once from #platform, typed for both sides (web.ts answers with a promise): module bindings, not
// property lookups, on the per-request path.
const hmac: Platform['hmacSha256'] = hmacSha256;

/**
 * Constant-time equality of two digests. A length difference is public (digest sizes are), so it
 * returns early without comparing.
 */
export function digestsEqual(expected: Uint8Array, received: Uint8Array): boolean {
  return expected.byteLength === received.byteLength && bytesEqual(expected, received);
}

/** Decodes a 64-char hex SHA-256 signature; undefined for anything else (wrong length, non-hex). */
export function decodeHexDigest(hex: string): Uint8Array | undefined {
  return decodeHex32(hex);
}

/** Every received signature is compared (no early exit on the first match): timing shows none of them. */
function matchesAny(expected: Uint8Array, received: readonly Uint8Array[]): boolean {
  let matched = false;
  for (const signature of received) matched = digestsEqual(expected, signature) || matched;
  return matched;
}

/**
 * The position of the first secret whose HMAC-SHA256 of `prefix` + `body` equals one of `received`, or
 * undefined. Synchronous where the runtime's HMAC is (Node); a promise under Web Crypto.
 */
export function matchSecret(
  secrets: readonly { readonly value: string; readonly index: number }[],
  prefix: string | undefined,
  body: Uint8Array,
  received: readonly Uint8Array[],
): Maybe<number | undefined> {
  for (let i = 0; i < secrets.length; i++) {
    const secret = secrets[i]!;
    const expected = hmac(secret.value, prefix, body);
    if (isThenable(expected)) return matchFrom(secrets, i, prefix, body, received);
    if (matchesAny(expected, received)) return secret.index;
  }
  return undefined;
}

async function matchFrom(
  secrets: readonly { readonly value: string; readonly index: number }[],
  from: number,
  prefix: string | undefined,
  body: Uint8Array,
  received: readonly Uint8Array[],
): Promise<number | undefined> {
  for (let i = from; i < secrets.length; i++) {
    const secret = secrets[i]!;
    if (matchesAny(await hmac(secret.value, prefix, body), received)) return secret.index;
  }
  return undefined;
}
