// The tutoring bot this library grew out of, on hookguard: Chatwoot messages on POST /cw, Stripe
// payments on POST /webhook/payments. Run it with `npx tsx examples/express.ts` (PORT, CW_HMAC_SECRET and
// STRIPE_WEBHOOK_SECRET from the environment).
import express from 'express';
import { pathToFileURL } from 'node:url';
import { describeChatwootEvent, type DedupStore, type Logger, type WebhookOutcome } from 'hookguard';
import { chatwootWebhook, stripeWebhook } from 'hookguard/express';

/** What the bot does with an event; injected so tests and the demo can watch or break it. */
export interface BotServices {
  /** Answer the contact in Chatwoot (the real bot calls Chatwoot's API here). */
  reply(conversationId: number | undefined, text: string): Promise<void>;
  /** Unlock the paid lessons (the real bot writes to its database here). */
  fulfilOrder(sessionId: string, amountTotal: number | null): Promise<void>;
}

export interface BotOptions {
  chatwootSecret: string | undefined;
  stripeSecret: string | undefined;
  services: BotServices;
  store?: DedupStore;
  logger?: Logger;
  onOutcome?: (outcome: WebhookOutcome) => void;
}

export function createBotApp(options: BotOptions): express.Express {
  const { services } = options;
  const shared = {
    ...(options.store === undefined ? {} : { store: options.store }),
    ...(options.logger === undefined ? {} : { logger: options.logger }),
    ...(options.onOutcome === undefined ? {} : { onOutcome: options.onOutcome }),
  };
  const app = express();

  app.post(
    '/cw',
    chatwootWebhook({
      secret: options.chatwootSecret,
      // Chatwoot gives up after 5 s: answer 202 at 4 s and keep working. After that 202 Chatwoot will not
      // resend the message, so a reply that then fails (or a restart mid-reply) is lost: logged, not retried.
      ackAfterMs: 4_000,
      ...shared,
      on: {
        // Only incoming, public messages get here: the bot's own replies are ignored by default.
        async message_created(event, ctx) {
          ctx.log.info({ summary: describeChatwootEvent(event) }, 'new message');
          await services.reply(event.conversation?.id ?? undefined, `You said: ${event.content ?? ''}`);
        },
      },
    }),
  );

  app.post(
    '/webhook/payments',
    stripeWebhook({
      secret: options.stripeSecret,
      ...shared,
      on: {
        async 'checkout.session.completed'(event) {
          const session = event.data.object;
          await services.fulfilOrder(session.id, session.amount_total);
        },
      },
    }),
  );

  // Everything else in the app can parse JSON as usual: the webhook routes read their own raw bytes.
  app.use(express.json());
  app.get('/health', (_req, res) => void res.json({ ok: true }));
  return app;
}

const consoleLogger: Logger = {
  info: (obj, msg) => console.log(`info  ${msg ?? ''}`, obj),
  warn: (obj, msg) => console.warn(`warn  ${msg ?? ''}`, obj),
  error: (obj, msg) => console.error(`error ${msg ?? ''}`, obj),
};

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const port = Number(process.env.PORT ?? 3000);
  const app = createBotApp({
    chatwootSecret: process.env.CW_HMAC_SECRET,
    stripeSecret: process.env.STRIPE_WEBHOOK_SECRET,
    logger: consoleLogger,
    services: {
      reply: async (conversationId, text) => console.log(`reply to conversation ${conversationId}: ${text}`),
      fulfilOrder: async (sessionId, amount) => console.log(`fulfil ${sessionId} (${amount})`),
    },
  });
  app.listen(port, (err) => {
    if (err) throw err; // the port is taken, say: Express 5 hands the error to this callback
    console.log(`bot listening on http://localhost:${port} (POST /cw, POST /webhook/payments)`);
  });
}
