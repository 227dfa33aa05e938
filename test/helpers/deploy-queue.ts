// Removes a deploy test's BullMQ queue from the shared Redis.
import { Queue } from 'bullmq';

export async function obliterate(name: string): Promise<void> {
  const queue = new Queue(name, { connection: { host: '127.0.0.1', port: 6379 } });
  await queue.obliterate({ force: true }).catch(() => undefined);
  await queue.close();
}
