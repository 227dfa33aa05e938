// The worker process: `npx tsx examples/inbox/worker.ts`, as many as you like. It runs the handlers of
// chatwoot.ts for each queued event (the web process verified it; a worker needs no secret), retried with
// backoff when one throws.
import { pathToFileURL } from 'node:url';
import type { InboxWorker } from 'hookguard/bullmq';
import { chatwoot, inbox } from './chatwoot.js';

export function startWorker(): InboxWorker {
  return inbox.worker({ chatwoot, concurrency: 4 });
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  startWorker();
  console.log(`running the handlers of the events queued on "${inbox.queue.name}"`);
  // A deploy: let running handlers finish (at most 30 s; the rest run again elsewhere), then exit.
  process.once('SIGTERM', () => void inbox.close());
}
