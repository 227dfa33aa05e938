import { oneLine } from './one-line.js';

/** Longest event name on a log line, an outcome or a span (real ones are under 60 characters). */
const EVENT_NAME_LENGTH = 100;

/**
 * An event name as hookguard shows it (log lines, outcomes, the inbox job, spans): a string, bounded and on
 * one line, whatever was signed or read back from a queue; undefined for anything else.
 */
export function boundedEventName(name: unknown): string | undefined {
  return typeof name === 'string' ? oneLine(name, EVENT_NAME_LENGTH) : undefined;
}
