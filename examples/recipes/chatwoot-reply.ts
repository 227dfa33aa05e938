// The bot's actual job: answer a Chatwoot conversation through Chatwoot's API from a message_created
// handler. Run it with `npx tsx examples/recipes/chatwoot-reply.ts`; tested in test/recipes.test.ts against
// a local server that plays Chatwoot's API.
//
// - The reply is `POST {CHATWOOT_URL}/api/v1/accounts/{account}/conversations/{conversation}/messages` with
//   the agent bot's access token in the `api_access_token` header and `message_type: "outgoing"`.
// - The reply comes back to the bot as a message_created of type "outgoing": the default `ignore` skips it,
//   so the bot never answers itself.
// - If the API call fails, the handler throws: the webhook answers 500, the claim is released, and
//   Chatwoot retries the delivery (agent bots: 429 and 500 only), so the user still gets an answer.
// - Chatwoot gives up on a delivery after 5 s and hands the conversation to a human. A reply that takes
//   longer (an LLM) belongs in the durable inbox: README, "Slow handlers".
import express, { type Express } from 'express';
import { pathToFileURL } from 'node:url';
import { chatwootWebhook } from 'hookguard/express';

export interface ReplyBotOptions {
  /** The Chatwoot webhook (agent bot) secret. */
  secret: string | undefined;
  /** Where Chatwoot runs, e.g. https://app.chatwoot.com. */
  chatwootUrl: string;
  /** The agent bot's access token (Settings → Agent bots). */
  apiToken: string;
  /** What to answer to a message. */
  answer: (text: string) => Promise<string>;
}

export function createReplyBot(options: ReplyBotOptions): Express {
  const app = express();
  app.post(
    '/cw',
    chatwootWebhook({
      secret: options.secret,
      on: {
        message_created: async (event, ctx) => {
          const account = event.account?.id;
          const conversation = event.conversation?.id;
          if (account === undefined || conversation === undefined || !event.content) return;
          const content = await options.answer(event.content);
          const url = `${options.chatwootUrl}/api/v1/accounts/${account}/conversations/${conversation}/messages`;
          const res = await fetch(url, {
            method: 'POST',
            headers: { 'content-type': 'application/json', api_access_token: options.apiToken },
            body: JSON.stringify({ content, message_type: 'outgoing', private: false }),
          });
          // Throwing makes the webhook answer 500, which Chatwoot retries.
          if (!res.ok) throw new Error(`Chatwoot API answered ${res.status} to the reply`);
          ctx.log.info({ conversation }, 'replied');
        },
      },
    }),
  );
  return app;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const app = createReplyBot({
    secret: process.env.CW_HMAC_SECRET,
    chatwootUrl: process.env.CHATWOOT_URL ?? 'http://localhost:3000',
    apiToken: process.env.CHATWOOT_BOT_TOKEN ?? '',
    answer: async (text) => `You said: ${text}`,
  });
  const port = Number(process.env.PORT ?? 4000);
  app.listen(port, (err) => {
    if (err) throw err; // the port is taken, say: Express 5 hands the error to this callback
    console.log(`listening on http://localhost:${port}/cw`);
  });
}
