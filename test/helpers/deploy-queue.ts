// A deploy test's BullMQ queue on the shared Redis: waited for until it has run everything, and removed.
import { Queue } from 'bullmq';

/** Removes the queue. */
export async function obliterate(name: string): Promise<void> {
  const queue = new Queue(name, { connection: { host: '127.0.0.1', port: 6379 } });
  await queue.obliterate({ force: true }).catch(() => undefined);
  await queue.close();
}

/** Waits until the inbox holds nothing left to run (at most `timeoutMs`), so that a tally compares settled lists. */
export async function drainQueue(name: string, timeoutMs: number): Promise<void> {
  const queue = new Queue(name, { connection: { host: '127.0.0.1', port: 6379 } });
  try {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const counts = await queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized');
      if (Object.values(counts).every((n) => n === 0) || performance.now() > deadline) return;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  } finally {
    await queue.close();
  }
}
