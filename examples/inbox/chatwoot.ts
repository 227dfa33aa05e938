// What the web process (web.ts) and the worker (worker.ts) share: the inbox, and the Chatwoot options. The
// web process reads `on` to know which events have a handler (the others are answered "ignored"); the
// worker runs the handlers. Env: REDIS_HOST, REDIS_PORT, HOOKGUARD_QUEUE, CW_HMAC_SECRET, ANSWER_DELAY_MS.
import type { ChatwootWebhookOptions } from 'hookguard';
import { createBullMQInbox } from 'hookguard/bullmq';

export const inbox = createBullMQInbox({
  connection: { host: process.env.REDIS_HOST ?? '127.0.0.1', port: Number(process.env.REDIS_PORT ?? 6379) },
  // The web process writes to this queue and the worker reads from it: both must name the same one. One
  // Redis holds as many as you like (one per app or environment).
  queueName: process.env.HOOKGUARD_QUEUE ?? 'hookguard',
  // Retries are set where jobs are written and travel with each job: a handler that throws runs again
  // after 2, 4, 8 and 16 s; then the job is kept as failed (`npx hookguard inbox failed`).
  attempts: 5,
  backoffMs: 2000,
});

/** The slow part of a bot: an LLM writing the answer, longer than the 5 s Chatwoot waits for a reply. */
async function writeAnswer(question: string): Promise<string> {
  await new Promise((resolve) => setTimeout(resolve, Number(process.env.ANSWER_DELAY_MS ?? 8000)));
  return `You asked: ${question}`;
}

export const chatwoot = {
  secret: process.env.CW_HMAC_SECRET,
  inbox,
  on: {
    async message_created(event, ctx) {
      // Set in the worker: 1 on the first run, 2 and more after a failure or a worker that died mid-run.
      if (ctx.attempt !== undefined && ctx.attempt > 1) {
        ctx.log.warn({}, 'running again: an earlier run may have sent the answer already');
      }
      const answer = await writeAnswer(event.content ?? '');
      // A real bot posts `answer` through Chatwoot's API here (examples/recipes/chatwoot-reply.ts).
      ctx.log.info({ conversation: event.conversation?.id, chars: answer.length }, 'answered');
    },
  },
} satisfies ChatwootWebhookOptions;
