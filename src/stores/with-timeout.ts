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
