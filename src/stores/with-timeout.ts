import { isWebhookError, WebhookError } from '../errors/webhook-error.js';

/**
 * Runs one store call with a deadline. A failure or a timeout becomes `STORE_UNAVAILABLE`, so the
 * pipeline answers 503 instead of hanging or processing the event unguarded. The error keeps the client's
 * error as `cause` (clients' errors name the command, never our payloads).
 */
export async function withTimeout<T>(label: string, timeoutMs: number, run: () => Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(
      () => reject(new WebhookError('STORE_UNAVAILABLE', `${label} did not answer within ${timeoutMs} ms.`)),
      timeoutMs,
    );
  });
  try {
    return await Promise.race([run(), deadline]);
  } catch (err) {
    if (isWebhookError(err)) throw err;
    const reason = err instanceof Error ? err.message : String(err);
    throw new WebhookError('STORE_UNAVAILABLE', `${label} failed: ${reason}`, { cause: err });
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The calls a store has running: `close()` refuses new calls (STORE_UNAVAILABLE) and waits for those in
 * flight, so a shutdown does not end a pool or client under a running query. It never closes the client.
 */
export class StoreCalls {
  #closed = false;
  readonly #running = new Set<Promise<unknown>>();

  constructor(private readonly store: string) {}

  /** Runs `call` with a deadline (see {@link withTimeout}), counted until it settles. */
  run<T>(label: string, timeoutMs: number, call: () => Promise<T>): Promise<T> {
    return this.track(label, () => withTimeout(label, timeoutMs, call));
  }

  /** Counts a call that keeps its own deadline. */
  track<T>(label: string, call: () => Promise<T>): Promise<T> {
    if (this.#closed) {
      return Promise.reject(
        new WebhookError('STORE_UNAVAILABLE', `${label}: the ${this.store} store was closed.`),
      );
    }
    const running = call();
    this.#running.add(running);
    const settled = () => void this.#running.delete(running);
    running.then(settled, settled);
    return running;
  }

  async close(): Promise<void> {
    this.#closed = true;
    await Promise.allSettled([...this.#running]);
  }
}
