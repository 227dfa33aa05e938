import { WebhookError } from '../errors/webhook-error.js';
import { positive } from '../util/values.js';
import { INBOX_DEFAULTS } from './defaults.js';

/** The bounds both engines' inbox options take, each with its default in `INBOX_DEFAULTS`. */
export interface WriteLimitOptions {
  /** Longest a request waits for the engine's acknowledgement. */
  enqueueTimeoutMs?: number;
  /** Writes the engine has not answered yet, the timed-out ones included. */
  maxPendingWrites?: number;
  /** Their bodies' bytes. */
  maxPendingBytes?: number;
}

/**
 * The writes waiting on an engine, bounded. A write counts until the engine answers it, not until its
 * request timed out: a frozen engine keeps every command it was sent (and the client keeps the job with
 * it), so counting only the requests still waiting would let memory grow without bound. Past a bound the
 * next write is refused at once, so the request is answered INBOX_UNAVAILABLE and holds nothing.
 */
export function createWriteGate(label: string, options: WriteLimitOptions) {
  const limits = {
    timeoutMs: positive(options.enqueueTimeoutMs, INBOX_DEFAULTS.enqueueTimeoutMs),
    maxPending: positive(options.maxPendingWrites, INBOX_DEFAULTS.maxPendingWrites),
    maxPendingBytes: positive(options.maxPendingBytes, INBOX_DEFAULTS.maxPendingBytes),
  };
  let pending = 0;
  let pendingBytes = 0;
  return {
    write<T>(size: number, write: () => Promise<T>): Promise<T> {
      if (pending >= limits.maxPending || (pending > 0 && pendingBytes + size > limits.maxPendingBytes)) {
        return Promise.reject(
          new WebhookError(
            'INBOX_UNAVAILABLE',
            `${label}: ${pending} writes (${pendingBytes} bytes) already wait on the engine; refused at once.`,
          ),
        );
      }
      pending++;
      pendingBytes += size;
      let running: Promise<T>;
      try {
        running = write();
      } catch (err) {
        running = Promise.reject(err);
      }
      const done = () => {
        pending--;
        pendingBytes -= size;
      };
      running.then(done, done);
      return deadline(label, limits.timeoutMs, running);
    },
  };
}

function deadline<T>(label: string, ms: number, work: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new WebhookError(
            'INBOX_UNAVAILABLE',
            `${label} was not confirmed within ${ms} ms; the write may still land.`,
          ),
        ),
      ms,
    );
  });
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}
