import { createHash } from 'node:crypto';

/** Longest key handed to a store; longer ones are hashed so a hostile id cannot bloat the store. */
export const MAX_KEY_LENGTH = 200;

/**
 * Joins key parts with ":" (each part escaped so a ":" inside an id cannot forge another key) and
 * hashes the result when it is longer than {@link MAX_KEY_LENGTH}, keeping the readable namespace.
 */
export function boundedKey(namespace: string, parts: readonly (string | number)[]): string {
  // One join builds a flat string; `${a}:${b}` would build a rope of several heap objects, and a dedup
  // store keeps thousands of keys.
  const key = [namespace, ...parts.map((part) => encodeURIComponent(String(part)))].join(':');
  if (key.length <= MAX_KEY_LENGTH) return key;
  return `${namespace}:sha256:${createHash('sha256').update(key).digest('base64url')}`;
}

/** An id as providers send them: a finite integer or a non-empty string; anything else is "no id". */
export function idOf(value: unknown): string | number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) ? value : undefined;
  if (typeof value === 'string') return value.length > 0 ? value : undefined;
  return undefined;
}

/** A property of an object-like value, or undefined (never throws on null, arrays or primitives). */
export function field(value: unknown, name: string): unknown {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)[name]
    : undefined;
}
