import { oneLine } from '../text/one-line.js';
import type { Logger } from './types.js';

type Level = 'debug' | 'info' | 'warn' | 'error';

const SILENT_LOGGER: Required<Logger> = { debug() {}, info() {}, warn() {}, error() {} };

/** Longest value printed on a console line; longer ones are cut (a signed field can be huge). */
const MAX_VALUE_LENGTH = 200;
/** Our messages explain the fix and can be long; they are still bounded. */
const MAX_MESSAGE_LENGTH = 1000;

/** One value as log-safe text: errors by name and message, everything bounded and on one line. */
function printable(value: unknown, max = MAX_VALUE_LENGTH): string {
  let text: string;
  if (value instanceof Error) text = `${value.name}: ${value.message}`;
  else if (typeof value === 'string') text = value;
  else if (typeof value === 'object' && value !== null) {
    try {
      text = JSON.stringify(value) ?? String(value);
    } catch {
      text = '[object]';
    }
  } else text = String(value);
  return oneLine(text, max);
}

/**
 * The logger used when none is given: warnings and errors reach the console as one line each (a
 * misconfiguration must not be silent), debug and info are dropped. Lines hold the message and the log
 * fields, which never include a payload, a signature or a secret.
 */
function consoleLine(level: 'info' | 'warn' | 'error') {
  return (obj: Record<string, unknown>, msg?: string) => {
    let line = `hookguard ${level}: ${printable(msg ?? '', MAX_MESSAGE_LENGTH)}`;
    for (const [name, value] of Object.entries(obj)) {
      if (value !== undefined) line += ` ${name}=${printable(value)}`;
    }
    console[level](line);
  };
}

const CONSOLE_LOGGER: Required<Logger> = {
  debug() {},
  info() {},
  warn: consoleLine('warn'),
  error: consoleLine('error'),
};

/** The default logger as handlers get it (`ctx.log`): their own info lines are printed too. */
const HANDLER_CONSOLE_LOGGER: Required<Logger> = { ...CONSOLE_LOGGER, info: consoleLine('info') };

/**
 * A logger with `bindings` on every line that never throws (a broken logger must not break the answer).
 * One small object per request: the merged fields are built only when a line is actually written.
 */
class BoundLogger implements Required<Logger> {
  constructor(
    private readonly target: Logger,
    private readonly bindings: Record<string, unknown>,
  ) {}

  debug(obj: Record<string, unknown>, msg?: string): void {
    this.write('debug', obj, msg);
  }

  info(obj: Record<string, unknown>, msg?: string): void {
    this.write('info', obj, msg);
  }

  warn(obj: Record<string, unknown>, msg?: string): void {
    this.write('warn', obj, msg);
  }

  error(obj: Record<string, unknown>, msg?: string): void {
    this.write('error', obj, msg);
  }

  private write(level: Level, obj: Record<string, unknown>, msg: string | undefined): void {
    const method = this.target[level];
    if (typeof method !== 'function') return;
    try {
      method.call(this.target, { ...this.bindings, ...obj }, msg);
    } catch {
      // Logging is best effort.
    }
  }
}

/**
 * The logger every line goes through, with `bindings` added. `undefined` gives the console logger (warn
 * and error only), `false` silence. Call its methods on it (`log.warn(...)`), as with pino.
 */
export function safeLogger(
  logger: Logger | false | undefined,
  bindings: Record<string, unknown> = {},
): Required<Logger> {
  if (logger === false) return SILENT_LOGGER;
  return new BoundLogger(logger ?? CONSOLE_LOGGER, bindings);
}

/**
 * `ctx.log`, the logger a handler writes to: `library` itself for a logger of the user's (it decides the
 * levels) or silence; with the default console logger, a copy that also prints info lines, because a
 * handler's `ctx.log.info` is often the only sign it ran.
 */
export function handlerLogger(
  logger: Logger | false | undefined,
  library: Required<Logger>,
  bindings: Record<string, unknown>,
): Required<Logger> {
  return logger === undefined ? new BoundLogger(HANDLER_CONSOLE_LOGGER, bindings) : library;
}
