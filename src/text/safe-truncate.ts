import { P } from '../platform/index.js';

/**
 * Options for {@link safeTruncate} and {@link safeTruncateBytes}.
 */
export interface TruncateOptions {
  /** Appended when something was cut; counts toward the limit. Default `'...'`. */
  ellipsis?: string;
}

const DEFAULT_MAX_LENGTH = 50;
const DEFAULT_ELLIPSIS = '...';

let segmenter: Intl.Segmenter | undefined;

/**
 * Shortens any value to at most `maxLength` UTF-16 code units (JavaScript's `.length`), ellipsis
 * included, cutting only between grapheme clusters: an emoji ZWJ sequence, a flag or a letter with its
 * combining marks is kept whole or dropped whole. Never throws; `null`/`undefined` give `''`; a string
 * within the limit comes back unchanged.
 *
 * @example
 * ```ts
 * import { safeTruncate } from 'hookguard';
 * safeTruncate('Hello there, how are you?', 12); // 'Hello the...'
 * ```
 */
export function safeTruncate(
  value: unknown,
  maxLength: number = DEFAULT_MAX_LENGTH,
  options?: TruncateOptions,
): string {
  const text = stringify(value);
  const limit = normaliseLimit(maxLength, DEFAULT_MAX_LENGTH);
  if (text.length <= limit) return text;
  return cut(text, limit, ellipsisOf(options), (s) => s.length);
}

/**
 * Like {@link safeTruncate}, with the budget in UTF-8 bytes (for columns, headers and log lines measured
 * in bytes). Never splits a character or a grapheme cluster.
 *
 * @example
 * ```ts
 * import { safeTruncateBytes } from 'hookguard';
 * safeTruncateBytes('naïve café', 9); // 'naïve...' (9 bytes: ï takes two)
 * ```
 */
export function safeTruncateBytes(value: unknown, maxBytes: number, options?: TruncateOptions): string {
  const text = stringify(value);
  const limit = normaliseLimit(maxBytes, 0);
  if (text.length <= limit / 3 || P.utf8Length(text) <= limit) return text;
  return cut(text, limit, ellipsisOf(options), P.utf8Length);
}

function cut(text: string, limit: number, ellipsis: string, measure: (s: string) => number): string {
  const ellipsisSize = measure(ellipsis);
  // When even the ellipsis does not fit, the budget goes to the text itself.
  const suffix = ellipsisSize <= limit ? ellipsis : '';
  const budget = limit - (suffix === '' ? 0 : ellipsisSize);
  segmenter ??= new Intl.Segmenter(undefined, { granularity: 'grapheme' });
  let used = 0;
  let end = 0;
  // The segment iterator is lazy: only the kept prefix (plus one cluster) is segmented.
  for (const { segment, index } of segmenter.segment(text)) {
    const size = measure(segment);
    if (used + size > budget) break;
    used += size;
    end = index + segment.length;
  }
  return text.slice(0, end) + suffix;
}

function ellipsisOf(options: TruncateOptions | undefined): string {
  try {
    const ellipsis = options?.ellipsis;
    return typeof ellipsis === 'string' ? ellipsis : DEFAULT_ELLIPSIS;
  } catch {
    return DEFAULT_ELLIPSIS;
  }
}

function normaliseLimit(limit: unknown, fallback: number): number {
  if (typeof limit !== 'number' || Number.isNaN(limit)) return fallback;
  if (limit === Infinity) return Number.MAX_SAFE_INTEGER;
  return Math.max(0, Math.floor(limit));
}

function stringify(value: unknown): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'string') return value;
  try {
    if (typeof value === 'object' && !(value instanceof Error)) {
      const json = JSON.stringify(value);
      if (typeof json === 'string') return json;
    }
    return String(value);
  } catch {
    return '';
  }
}
