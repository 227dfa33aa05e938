/** A property of an object-like value, or undefined (never throws on null, arrays or primitives). */
export function field(value: unknown, name: string): unknown {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)[name]
    : undefined;
}

/** An id as providers send them: a finite integer or a non-empty string; anything else is "no id". */
export function idOf(value: unknown): string | number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) ? value : undefined;
  if (typeof value === 'string') return value.length > 0 ? value : undefined;
  return undefined;
}

/** `value` when it is a finite positive number, else `fallback`. */
export function positive(value: number | undefined, fallback: number): number {
  return typeof value === 'number' && Number.isFinite(value) && value > 0 ? value : fallback;
}

/** `fn()`, or `fallback` when it throws: for user callbacks whose failure must not change the answer. */
export function safeCall<T>(fn: () => T, fallback: T): T {
  try {
    return fn();
  } catch {
    return fallback;
  }
}

/** True for a promise or any thenable: synchronous results skip the microtask hop of an `await`. */
export function isThenable<T>(value: T | PromiseLike<T>): value is PromiseLike<T> {
  return (
    (typeof value === 'object' || typeof value === 'function') &&
    value !== null &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}

/** Name and message of an error from a store or client, for logs (never a payload: these are our own calls). */
export function describeError(err: unknown): Record<string, unknown> {
  return err instanceof Error ? { name: err.name, message: err.message } : { value: String(err) };
}

/** Waits for `work` at most `ms`: `'done'` when it settled in time, else `'late'` (the work goes on). */
export async function settleWithin(work: Promise<unknown>, ms: number): Promise<'done' | 'late'> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<'late'>((resolve) => {
    timer = setTimeout(resolve, ms, 'late');
  });
  try {
    return await Promise.race([work.then(settled, settled), late]);
  } finally {
    clearTimeout(timer);
  }
}

const settled = (): 'done' => 'done';
