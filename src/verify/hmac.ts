import { createHmac, timingSafeEqual } from 'node:crypto';

/** HMAC-SHA256 over `prefix` then `body`, both as the exact bytes given (no decode/re-encode). */
export function hmacSha256(secret: string, prefix: string | undefined, body: Uint8Array): Buffer {
  const hmac = createHmac('sha256', secret);
  if (prefix !== undefined) hmac.update(prefix, 'utf8');
  return hmac.update(body).digest();
}

/**
 * Constant-time equality of two digests. A length difference is public (digest sizes are), so it
 * returns early without comparing.
 */
export function digestsEqual(expected: Uint8Array, received: Uint8Array): boolean {
  return expected.byteLength === received.byteLength && timingSafeEqual(expected, received);
}

/** Decodes a 64-char hex SHA-256 signature; undefined for anything else (wrong length, non-hex). */
export function decodeHexDigest(hex: string): Buffer | undefined {
  if (hex.length !== 64) return undefined;
  // Buffer.from stops at the first pair that is not hex, so 32 bytes back means all 64 characters were.
  const digest = Buffer.from(hex, 'hex');
  return digest.length === 32 ? digest : undefined;
}
