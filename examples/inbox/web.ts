// The web process: `npx tsx examples/inbox/web.ts` (PORT, default 3000). It verifies each delivery, writes
// it to the queue and answers 200 as soon as Redis has it, in milliseconds: Chatwoot never waits for the bot.
import express from 'express';
import { pathToFileURL } from 'node:url';
import { chatwootWebhook } from 'hookguard/express';
import { stopGracefully } from 'hookguard/shutdown';
import { chatwoot, inbox } from './chatwoot.js';

export function createWebApp(): express.Express {
  const app = express();
  app.post('/cw', chatwootWebhook(chatwoot));
  return app;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const port = Number(process.env.PORT ?? 3000);
  const server = createWebApp().listen(port, (err) => {
    if (err) throw err; // the port is taken, say: Express 5 hands the error to this callback
    console.log(`POST http://localhost:${port}/cw queues on "${inbox.queue.name}"`);
  });
  // A deploy (SIGTERM): answer what arrived, then close the queue's connection (README, Deploys).
  stopGracefully(server, { close: [inbox] });
}
