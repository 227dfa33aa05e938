import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { safeTruncate, safeTruncateBytes } from '../../src/index.js';

const graphemes = (s: string) =>
  [...new Intl.Segmenter(undefined, { granularity: 'grapheme' }).segment(s)].map((x) => x.segment);
const FAMILY = '👨‍👩‍👧‍👦'; // 11 UTF-16 units, one grapheme
const FLAG_BR = '🇧🇷'; // two regional indicators, 4 units
const E_ACUTE = 'e\u0301'; // e + combining acute

describe('safeTruncate', () => {
  it('returns strings at or under the limit unchanged', () => {
    expect(safeTruncate('hello', 5)).toBe('hello');
    expect(safeTruncate('', 0)).toBe('');
    const fifty = 'x'.repeat(50);
    expect(safeTruncate(fifty)).toBe(fifty);
  });

  it('cuts to the limit with the ellipsis included (default 50 and "...")', () => {
    const result = safeTruncate('x'.repeat(51));
    expect(result).toBe(`${'x'.repeat(47)}...`);
    expect(result).toHaveLength(50);
    expect(safeTruncate('Hello there, how are you?', 12)).toBe('Hello the...');
  });

  it('takes a custom ellipsis, counted in the limit', () => {
    expect(safeTruncate('abcdefgh', 5, { ellipsis: '…' })).toBe('abcd…');
    expect(safeTruncate('abcdefgh', 5, { ellipsis: '' })).toBe('abcde');
  });

  it.each([
    [0, ''],
    [1, 'a'],
    [2, 'ab'],
    [3, '...'],
    [4, 'a...'],
  ])('limit %i gives %j (an ellipsis that does not fit is dropped, never overflows)', (limit, expected) => {
    expect(safeTruncate('abcdefgh', limit)).toBe(expected);
  });

  it('never splits a surrogate pair', () => {
    const text = '😀😀😀😀';
    expect(safeTruncate(text, 4)).toBe('...'); // no emoji (2) fits beside "..." (3)
    expect(safeTruncate(text, 5)).toBe('😀...');
    expect(safeTruncate(text, 6)).toBe('😀...'); // half an emoji is never kept
    expect(safeTruncate(text, 7)).toBe('😀😀...');
    expect(safeTruncate(text, 4, { ellipsis: '' })).toBe('😀😀');
    expect(safeTruncate(text, 3, { ellipsis: '' })).toBe('😀');
  });

  it('never splits a ZWJ family, a flag or a combining mark', () => {
    expect(safeTruncate(`${FAMILY}${FAMILY}`, 13)).toBe('...');
    expect(safeTruncate(`${FAMILY}${FAMILY}`, 14)).toBe(`${FAMILY}...`);
    expect(safeTruncate(`${FLAG_BR}${FLAG_BR}${FLAG_BR}`, 9)).toBe(`${FLAG_BR}...`);
    expect(safeTruncate(`${FLAG_BR}${FLAG_BR}`, 6, { ellipsis: '' })).toBe(FLAG_BR);
    expect(safeTruncate(`caf${E_ACUTE}${E_ACUTE}xyz`, 4, { ellipsis: '' })).toBe('caf');
    expect(safeTruncate(`caf${E_ACUTE}${E_ACUTE}xyz`, 5, { ellipsis: '' })).toBe(`caf${E_ACUTE}`);
  });

  it('cuts CJK text at character boundaries', () => {
    expect(safeTruncate('你好世界，今天天气很好', 6, { ellipsis: '…' })).toBe('你好世界，…');
  });

  it('turns non-strings into text and never throws', () => {
    expect(safeTruncate(null)).toBe('');
    expect(safeTruncate(undefined)).toBe('');
    expect(safeTruncate(12345, 3)).toBe('...');
    expect(safeTruncate(12345)).toBe('12345');
    expect(safeTruncate(true)).toBe('true');
    expect(safeTruncate(10n)).toBe('10');
    expect(safeTruncate({ a: 1 })).toBe('{"a":1}');
    expect(safeTruncate(new Error('boom'))).toBe('Error: boom');
    expect(safeTruncate(Symbol('s'))).toBe('Symbol(s)');
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(typeof safeTruncate(cyclic)).toBe('string');
    const hostile = {
      toString() {
        throw new Error('no');
      },
      toJSON() {
        throw new Error('no');
      },
    };
    expect(safeTruncate(hostile)).toBe('');
  });

  it('treats odd limits sanely', () => {
    expect(safeTruncate('abcdef', -5)).toBe('');
    expect(safeTruncate('abcdef', 4.9)).toBe('a...');
    expect(safeTruncate('x'.repeat(60), Number.NaN)).toHaveLength(50);
    expect(safeTruncate('abcdef', Infinity)).toBe('abcdef');
  });

  it('property: fits the limit, is a grapheme-aligned prefix, and short strings come back unchanged', () => {
    fc.assert(
      fc.property(
        fc.string({
          unit: fc.oneof(
            fc.constant(FAMILY),
            fc.constant(FLAG_BR),
            fc.constant(E_ACUTE),
            fc.string({ unit: 'grapheme', maxLength: 1 }),
          ),
          maxLength: 40,
        }),
        fc.integer({ min: 0, max: 60 }),
        fc.constantFrom('...', '…', '', '[cut]'),
        (text, limit, ellipsis) => {
          const out = safeTruncate(text, limit, { ellipsis });
          expect(out.length).toBeLessThanOrEqual(limit);
          if (text.length <= limit) {
            expect(out).toBe(text);
            return;
          }
          const kept =
            out.endsWith(ellipsis) && ellipsis.length <= limit
              ? out.slice(0, out.length - ellipsis.length)
              : out;
          expect(text.startsWith(kept)).toBe(true);
          // Aligned: the kept part is a whole number of the text's graphemes.
          const g = graphemes(text);
          let acc = '';
          const boundaries = new Set([0]);
          for (const seg of g) boundaries.add((acc += seg).length);
          expect(boundaries.has(kept.length)).toBe(true);
        },
      ),
      { numRuns: 2_000, seed: 7 },
    );
  });
});

describe('safeTruncateBytes', () => {
  it('returns strings within the byte budget unchanged', () => {
    expect(safeTruncateBytes('héllo', 6)).toBe('héllo');
  });

  it('counts UTF-8 bytes, ellipsis included', () => {
    expect(safeTruncateBytes('naïve café', 8)).toBe('naïv...'); // "naïve" is 6 bytes, too many beside "..."
    expect(safeTruncateBytes('naïve café', 9)).toBe('naïve...');
    expect(Buffer.byteLength(safeTruncateBytes('naïve café', 8))).toBeLessThanOrEqual(8);
    expect(safeTruncateBytes('你好世界', 7, { ellipsis: '' })).toBe('你好');
    expect(safeTruncateBytes('你好世界', 8, { ellipsis: '…' })).toBe('你…');
  });

  it('never splits an emoji sequence', () => {
    expect(safeTruncateBytes(`${FAMILY}x`, 24, { ellipsis: '' })).toBe('');
    expect(safeTruncateBytes(`${FAMILY}x`, 25, { ellipsis: '' })).toBe(FAMILY);
    expect(Buffer.byteLength(FAMILY)).toBe(25);
  });

  it('handles limits 0, 1, 3 and non-strings', () => {
    expect(safeTruncateBytes('abcdef', 0)).toBe('');
    expect(safeTruncateBytes('abcdef', 1)).toBe('a');
    expect(safeTruncateBytes('abcdef', 3)).toBe('...');
    expect(safeTruncateBytes(null, 10)).toBe('');
    expect(safeTruncateBytes(123456, 4)).toBe('1...');
  });

  it('property: fits the byte budget and never produces a replacement character', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'grapheme', maxLength: 40 }),
        fc.integer({ min: 0, max: 80 }),
        (text, limit) => {
          const out = safeTruncateBytes(text, limit);
          expect(Buffer.byteLength(out)).toBeLessThanOrEqual(Math.max(limit, 0));
          if (!text.includes('\uFFFD')) expect(out.includes('\uFFFD')).toBe(false);
          // Never half a surrogate pair: re-encoding the output loses nothing unless the input was already broken.
          if (Buffer.from(text).toString() === text) expect(Buffer.from(out).toString()).toBe(out);
        },
      ),
      { numRuns: 2_000, seed: 11 },
    );
  });
});
