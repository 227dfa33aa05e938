/** How a write retried until it sticks ended. */
export interface Persisted {
  stuck: boolean;
  tries: number;
  /** The last failure, when it did not stick. */
  err?: unknown;
}

/**
 * Writes retried until they stick, backing off from 100 ms to 5 s: a record of work that is already done
 * (a completion) must not be lost to an engine or store that restarts. `abandon()` (a close out of time)
 * ends every retry still waiting, at once.
 */
export function createPersistence() {
  let abandoned = false;
  const wakers = new Set<() => void>();
  const pause = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        wakers.delete(done);
        resolve();
      }
      wakers.add(done);
    });
  async function untilItSticks(
    write: () => unknown,
    onFirstFailure?: (err: unknown) => void,
  ): Promise<Persisted> {
    for (let tries = 1, delay = 100; ; tries++, delay = Math.min(delay * 2, 5000)) {
      try {
        await write();
        return { stuck: true, tries };
      } catch (err) {
        if (abandoned) return { stuck: false, tries, err };
        if (tries === 1) onFirstFailure?.(err);
        await pause(delay);
      }
    }
  }
  function abandon(): void {
    abandoned = true;
    for (const wake of [...wakers]) wake();
  }
  return { untilItSticks, abandon };
}
