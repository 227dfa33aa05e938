import { safeTruncate } from './safe-truncate.js';

// C0 and C1 controls, DEL, and the Unicode line and paragraph separators: a value that holds one could
// start a new log line (a forged entry) or move a terminal's cursor.
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]+/g;

/**
 * A value taken from a payload, made safe to log: control characters become a space, and the result is
 * cut (grapheme-safe, with "…") to `max` characters. Payload fields are signed but not trusted: a signed
 * event type can be 100 KB of fake JSON log lines.
 */
export function oneLine(text: string, max: number): string {
  // Only the head can survive the cut; slicing first keeps a huge value cheap.
  const head = text.length > max * 8 ? text.slice(0, max * 8) : text;
  const flat = head.replace(CONTROL, ' ').trim();
  return safeTruncate(flat, max, { ellipsis: '…' });
}
