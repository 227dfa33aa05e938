// What differs between runtimes, the web side: Web Crypto (`crypto.subtle`, asynchronous) and
// TextEncoder / TextDecoder, nothing from Node. Chosen through package.json "imports" (`#platform`) under
// the workerd, worker, edge-light and browser conditions; same exports as node.ts.

const encoder = new TextEncoder();
// ignoreBOM keeps a leading U+FEFF in the text, as Buffer's toString does on Node: the default decoder would
// drop it, and a body that starts with a BOM would parse here and be refused as JSON there (issue #20).
const decoder = new TextDecoder('utf-8', { ignoreBOM: true });
/** Imported keys by secret: importing is most of the cost of one small HMAC. Secrets are few per process. */
const keys = new Map<string, Promise<CryptoKey>>();

function keyFor(secret: string): Promise<CryptoKey> {
  let key = keys.get(secret);
  if (key === undefined) {
    // Web Crypto refuses an empty key; HMAC pads every key with zero bytes to the block size, so one zero
    // byte is the same key.
    const raw = secret === '' ? new Uint8Array(1) : encoder.encode(secret);
    key = crypto.subtle.importKey('raw', raw, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
    if (keys.size < 64) keys.set(secret, key);
  }
  return key;
}

function concat(prefix: string | undefined, body: Uint8Array): Uint8Array {
  if (prefix === undefined) return body;
  const head = encoder.encode(prefix);
  const all = new Uint8Array(head.byteLength + body.byteLength);
  all.set(head, 0);
  all.set(body, head.byteLength);
  return all;
}

/** HMAC-SHA256 over `prefix` then `body`, both as the exact bytes given (no decode/re-encode). */
export async function hmacSha256(
  secret: string,
  prefix: string | undefined,
  body: Uint8Array,
): Promise<Uint8Array> {
  const signature = await crypto.subtle.sign(
    'HMAC',
    await keyFor(secret),
    concat(prefix, body) as BufferSource,
  );
  return new Uint8Array(signature);
}

function base64url(bytes: Uint8Array): string {
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** SHA-256 of the UTF-8 of `text`, base64url. */
export async function sha256Base64url(text: string): Promise<string> {
  return base64url(new Uint8Array(await crypto.subtle.digest('SHA-256', encoder.encode(text))));
}

/** SHA-256 of the UTF-16 code units of `text` (lone surrogates included), base64url. */
export async function sha256Utf16Base64url(text: string): Promise<string> {
  const units = new Uint8Array(text.length * 2);
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    units[2 * i] = unit & 0xff; // little-endian, as Node's 'utf16le'
    units[2 * i + 1] = unit >> 8;
  }
  return base64url(new Uint8Array(await crypto.subtle.digest('SHA-256', units)));
}

/**
 * Constant-time equality of two byte strings of the same length (the caller checks the lengths): every
 * byte is compared, whatever differs first.
 */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  let diff = 0;
  for (let i = 0; i < a.byteLength; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

/** 32 bytes from 64 hex characters; undefined for anything else (wrong length, non-hex). */
export function decodeHex32(hex: string): Uint8Array | undefined {
  if (hex.length !== 64 || !/^[0-9a-fA-F]{64}$/.test(hex)) return undefined;
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export function utf8Encode(text: string): Uint8Array {
  return encoder.encode(text);
}

/** Decodes UTF-8: invalid sequences become U+FFFD, as every JSON reader does; a leading BOM is kept. */
export function utf8Decode(bytes: Uint8Array): string {
  return decoder.decode(bytes);
}

export function utf8Length(text: string): number {
  return encoder.encode(text).byteLength;
}
