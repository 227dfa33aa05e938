import { P, andThen, type Maybe } from '../platform/index.js';
import { isThenable } from '../util/values.js';

/** Longest key handed to a store; longer ones are hashed so a hostile id cannot bloat the store. */
const MAX_KEY_LENGTH = 200;

/**
 * Joins key parts with ":" (each part escaped so a ":" inside an id cannot forge another key) and
 * hashes the result when it is longer than {@link MAX_KEY_LENGTH}, keeping the readable namespace. A
 * promise only where hashing is asynchronous (Web Crypto) and something had to be hashed.
 */
export function boundedKey(namespace: string, parts: readonly (string | number)[]): Maybe<string> {
  const encoded = parts.map(encodePart);
  if (encoded.some(isThenable)) {
    return Promise.all(encoded.map((part) => Promise.resolve(part))).then((all) => joined(namespace, all));
  }
  return joined(namespace, encoded as string[]);
}

function joined(namespace: string, encoded: readonly string[]): Maybe<string> {
  // One join builds a flat string; `${a}:${b}` would build a rope of several heap objects, and a dedup
  // store keeps thousands of keys.
  const key = [namespace, ...encoded].join(':');
  if (key.length <= MAX_KEY_LENGTH) return key;
  return andThen(P.sha256Base64url(key), (digest) => `${namespace}:sha256:${digest}`);
}

/**
 * A key part with ":" and everything else unusual escaped. A string that is not well-formed UTF-16 (a lone
 * surrogate, which JSON may carry) cannot be URI-encoded: its exact code units are hashed instead, so the
 * event is still deduplicated and two different ids never share a part.
 */
function encodePart(part: string | number): Maybe<string> {
  const text = String(part);
  try {
    return encodeURIComponent(text);
  } catch {
    return andThen(P.sha256Utf16Base64url(text), (digest) => `~${digest}`);
  }
}
