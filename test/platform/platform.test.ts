// The two platforms give the same answers: web.ts (Web Crypto, TextEncoder) against node.ts
// (node:crypto, Buffer), on the inputs that matter to signatures and keys. Node 20 has crypto.subtle.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import * as node from '../../src/platform/node.js';
import type { Platform } from '../../src/platform/index.js';
import * as web from '../../src/platform/web.js';

// Both sides implement the same interface (a compile-time check).
const sides: Record<'node' | 'web', Platform> = { node, web };

describe('platform/web.ts agrees with platform/node.ts', () => {
  it('says which one answers synchronously', () => {
    expect(sides.node.hmacSha256('k', undefined, new Uint8Array())).toBeInstanceOf(Uint8Array);
    expect(sides.web.hmacSha256('k', undefined, new Uint8Array())).toBeInstanceOf(Promise);
  });

  it('HMAC-SHA256, with and without a prefix, on any secret and bytes', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.string(),
        fc.option(fc.string(), { nil: undefined }),
        fc.uint8Array({ maxLength: 300 }),
        async (secret, prefix, body) => {
          expect(await web.hmacSha256(secret, prefix, body)).toEqual(
            new Uint8Array(node.hmacSha256(secret, prefix, body)),
          );
        },
      ),
      { numRuns: 200 },
    );
  });

  it('SHA-256 of UTF-8 text and of UTF-16 code units (lone surrogates included)', async () => {
    for (const text of ['', 'a', 'über', '𝄞', '\ud800', 'x\udfffy', 'k'.repeat(1000)]) {
      expect(await web.sha256Base64url(text)).toBe(node.sha256Base64url(text));
      expect(await web.sha256Utf16Base64url(text)).toBe(node.sha256Utf16Base64url(text));
    }
  });

  it('constant-time equality and hex decoding', () => {
    const a = node.decodeHex32('ab'.repeat(32))!;
    for (const hex of [
      'ab'.repeat(32),
      'AB'.repeat(32),
      'ag'.repeat(32),
      'ab'.repeat(31),
      'ab'.repeat(33),
      '',
    ]) {
      expect(web.decodeHex32(hex)).toEqual(
        node.decodeHex32(hex) === undefined ? undefined : new Uint8Array(node.decodeHex32(hex)!),
      );
    }
    const b = new Uint8Array(a);
    expect([web.bytesEqual(a, b), node.bytesEqual(a, b)]).toEqual([true, true]);
    b[31] = 0;
    expect([web.bytesEqual(a, b), node.bytesEqual(a, b)]).toEqual([false, false]);
  });

  it('UTF-8: encoding, decoding (invalid bytes become U+FFFD) and length', () => {
    for (const text of ['', 'plain', 'über 𝄞', '\ud800']) {
      expect(web.utf8Encode(text)).toEqual(new Uint8Array(node.utf8Encode(text)));
      expect(web.utf8Length(text)).toBe(node.utf8Length(text));
    }
    const invalid = new Uint8Array([0x61, 0xff, 0xc3, 0x28, 0x62]);
    expect(web.utf8Decode(invalid)).toBe(node.utf8Decode(invalid));
  });
});
