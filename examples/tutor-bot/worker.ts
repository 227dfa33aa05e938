// The worker process: `npx tsx examples/tutor-bot/worker.ts`, as many as you like, on other machines too.
// It runs the tutor's Chatwoot and Stripe handlers for each queued event (the web process verified it; a
// worker needs no secret), retried with backoff when one throws. It needs Chatwoot's URL and the bot's token.
import { pathToFileURL } from 'node:url';
import type { InboxWorker } from 'hookguard/bullmq';
import { createTutor, type Tutor, tutorFromEnv } from './tutor.js';

export function startWorker(tutor: Tutor, concurrency = 4): InboxWorker {
  return tutor.inbox.worker({
    chatwoot: tutor.chatwoot,
    stripe: tutor.stripe,
    // Several conversations at once; one conversation's messages still one at a time (`ordered: true`).
    concurrency,
    ...(tutor.logger !== undefined && { logger: tutor.logger }),
  });
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const tutor = createTutor(tutorFromEnv());
  startWorker(tutor);
  console.log(`answering the students' messages queued on "${tutor.inbox.queue.name}"`);
  // A deploy: let running handlers finish (at most 30 s; the rest run again elsewhere), then exit.
  process.once('SIGTERM', () => void tutor.close());
}
