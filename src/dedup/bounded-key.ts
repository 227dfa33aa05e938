import { createHash } from 'node:crypto';

/** Longest key handed to a store; longer ones are hashed so a hostile id cannot bloat the store. */
const MAX_KEY_LENGTH = 200;

/**
 * Joins key parts with ":" (each part escaped so a ":" inside an id cannot forge another key) and
 * hashes the result when it is longer than {@link MAX_KEY_LENGTH}, keeping the readable namespace.
 */
export function boundedKey(namespace: string, parts: readonly (string | number)[]): string {
  // One join builds a flat string; `${a}:${b}` would build a rope of several heap objects, and a dedup
  // store keeps thousands of keys.
  const key = [namespace, ...parts.map(encodePart)].join(':');
  if (key.length <= MAX_KEY_LENGTH) return key;
  return `${namespace}:sha256:${createHash('sha256').update(key).digest('base64url')}`;
}

/**
 * A key part with ":" and everything else unusual escaped. A string that is not well-formed UTF-16 (a lone
 * surrogate, which JSON may carry) cannot be URI-encoded: its exact code units are hashed instead, so the
 * event is still deduplicated and two different ids never share a part.
 */
function encodePart(part: string | number): string {
  const text = String(part);
  try {
    return encodeURIComponent(text);
  } catch {
    return `~${createHash('sha256').update(Buffer.from(text, 'utf16le')).digest('base64url')}`;
  }
}
