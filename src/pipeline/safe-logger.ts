import type { Logger } from './types.js';

type Level = 'debug' | 'info' | 'warn' | 'error';

/** Silent by default. */
const SILENT_LOGGER: Required<Logger> = { debug() {}, info() {}, warn() {}, error() {} };

/**
 * A logger that never throws (a broken logger must not break the answer), has all four levels, and adds
 * `bindings` to every line.
 */
export function safeLogger(
  logger: Logger | undefined,
  bindings: Record<string, unknown> = {},
): Required<Logger> {
  if (logger === undefined) return SILENT_LOGGER;
  const write = (level: Level) => (obj: Record<string, unknown>, msg?: string) => {
    try {
      const method = logger[level];
      if (typeof method === 'function') method.call(logger, { ...bindings, ...obj }, msg);
    } catch {
      // Logging is best effort.
    }
  };
  return { debug: write('debug'), info: write('info'), warn: write('warn'), error: write('error') };
}
