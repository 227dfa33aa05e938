// The web process: `npx tsx examples/tutor-bot/web.ts` (PORT, default 4000). It verifies each Chatwoot
// (POST /cw) and Stripe (POST /stripe) delivery, writes it to the queue and answers 200 as soon as Redis has
// it, in milliseconds: Chatwoot never waits for the LLM, and no event is lost if a worker dies.
import express from 'express';
import { pathToFileURL } from 'node:url';
import { chatwootWebhook, stripeWebhook } from 'hookguard/express';
import { stopGracefully } from 'hookguard/shutdown';
import { createTutor, type Tutor, tutorFromEnv } from './tutor.js';

export function createWebApp(tutor: Tutor): express.Express {
  const app = express();
  // No body parser before these routes: hookguard verifies the exact bytes received.
  app.post('/cw', chatwootWebhook(tutor.chatwoot));
  app.post('/stripe', stripeWebhook(tutor.stripe));
  return app;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const tutor = createTutor(tutorFromEnv());
  const port = Number(process.env.PORT ?? 4000);
  const server = createWebApp(tutor).listen(port, (err) => {
    if (err) throw err; // the port is taken, say: Express 5 hands the error to this callback
    console.log(
      `POST http://localhost:${port}/cw (Chatwoot) and /stripe (Stripe) queue on "${tutor.inbox.queue.name}"`,
    );
  });
  // A deploy (SIGTERM): answer what arrived, then close the queue's and the ledger's connections.
  stopGracefully(server, { close: [tutor] });
}
