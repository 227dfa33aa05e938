import * as platform from '#platform';
import { isThenable } from '../util/values.js';

// The runtime-specific primitives, typed for both sides: node.ts answers synchronously, web.ts (Web
// Crypto) with promises. Code that hashes goes through `andThen` below and stays synchronous on Node.

/** A value, or a promise of it where the runtime's crypto is asynchronous. */
export type Maybe<T> = T | Promise<T>;

/** What both node.ts and web.ts export (a test checks web.ts against it). */
export interface Platform {
  hmacSha256(secret: string, prefix: string | undefined, body: Uint8Array): Maybe<Uint8Array>;
  sha256Base64url(text: string): Maybe<string>;
  sha256Utf16Base64url(text: string): Maybe<string>;
  bytesEqual(a: Uint8Array, b: Uint8Array): boolean;
  decodeHex32(hex: string): Uint8Array | undefined;
  utf8Encode(text: string): Uint8Array;
  utf8Decode(bytes: Uint8Array): string;
  utf8Length(text: string): number;
}

export const P: Platform = platform;

/**
 * `next(value)`, now when `value` is plain, after it when it is a promise. (Not named `then`: a module
 * exporting `then` is itself a thenable, and `await import()` of it would call it.)
 */
export function andThen<T, U>(value: Maybe<T>, next: (value: T) => Maybe<U>): Maybe<U> {
  return isThenable(value) ? Promise.resolve(value).then(next) : next(value);
}

/**
 * The value of a synchronous public function (`verifyChatwootSignature`, `chatwootDedupKey`, …). Where
 * the runtime's crypto is asynchronous it refuses, naming the function to use instead.
 */
export function syncOnly<T>(value: Maybe<T>, name: string, instead: string): T {
  if (!isThenable(value)) return value;
  value.then(undefined, () => undefined); // its outcome is not wanted: no unhandled rejection
  throw new TypeError(
    `${name} is synchronous and this runtime's crypto (Web Crypto) is not: use ${instead} instead.`,
  );
}
