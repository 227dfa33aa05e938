import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

// What differs between runtimes, Node's side: node:crypto, synchronous, and Buffer for text. The web side
// (web.ts) has the same exports over Web Crypto and TextEncoder; package.json "imports" picks one by
// runtime condition (`#platform`). Every caller accepts a promise where web.ts returns one.

/** HMAC-SHA256 over `prefix` then `body`, both as the exact bytes given (no decode/re-encode). */
export function hmacSha256(secret: string, prefix: string | undefined, body: Uint8Array): Uint8Array {
  const hmac = createHmac('sha256', secret);
  if (prefix !== undefined) hmac.update(prefix, 'utf8');
  return hmac.update(body).digest();
}

/** SHA-256 of the UTF-8 of `text`, base64url. */
export function sha256Base64url(text: string): string {
  return createHash('sha256').update(text).digest('base64url');
}

/** SHA-256 of the UTF-16 code units of `text` (lone surrogates included), base64url. */
export function sha256Utf16Base64url(text: string): string {
  return createHash('sha256').update(Buffer.from(text, 'utf16le')).digest('base64url');
}

/** Constant-time equality of two byte strings of the same length (the caller checks the lengths). */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return timingSafeEqual(a, b);
}

const HEX64 = /^[0-9a-fA-F]{64}$/;

/** 32 bytes from 64 hex characters; undefined for anything else (wrong length, non-hex). */
export function decodeHex32(hex: string): Uint8Array | undefined {
  // Checked here, not left to Buffer.from: it reads only the low byte of each UTF-16 unit, so Arabic-Indic
  // '٣' (U+0663) decodes as 'c' and fullwidth 'ａ' (U+FF41) as 'A', where web.ts refuses (issue #20).
  if (hex.length !== 64 || !HEX64.test(hex)) return undefined;
  return Buffer.from(hex, 'hex');
}

export function utf8Encode(text: string): Uint8Array {
  return Buffer.from(text, 'utf8');
}

/** Decodes UTF-8: invalid sequences become U+FFFD, as every JSON reader does; a leading BOM is kept. */
export function utf8Decode(bytes: Uint8Array): string {
  return (
    Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  ).toString('utf8');
}

export function utf8Length(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}
