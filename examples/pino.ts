// Structured logs with pino: hookguard's logger option takes pino as it is. Each line carries the provider,
// event, dedup key, delivery id, outcome and (for processed events) a short, log-safe preview; never the
// raw body, a signature or a secret. `npx tsx examples/pino.ts`.
import express from 'express';
import { pathToFileURL } from 'node:url';
import { pino, type DestinationStream } from 'pino';
import { chatwootWebhook } from 'hookguard/express';

export function createPinoApp(secret: string | undefined, destination?: DestinationStream) {
  const logger = pino({ level: 'debug' }, destination);
  const app = express();
  app.post(
    '/cw',
    chatwootWebhook({
      secret,
      logger,
      on: {
        message_created: (event, ctx) => ctx.log.info({ conversation: event.conversation?.id }, 'replying'),
      },
    }),
  );
  return app;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const port = Number(process.env.PORT ?? 3000);
  createPinoApp(process.env.CW_HMAC_SECRET).listen(port, (err) => {
    if (err) throw err; // the port is taken, say: Express 5 hands the error to this callback
    console.log(`listening on http://localhost:${port}`);
  });
}
