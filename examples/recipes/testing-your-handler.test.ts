// Testing your own webhook handler with vitest and hookguard/testing: sign a payload the way Chatwoot or
// Stripe does, post it to your real app, assert what your handler did. Copy this next to your code and
// run `npx vitest`. It runs as part of this repository's suite.
//
// The app under test is examples/recipes/chatwoot-reply.ts (a bot that answers through Chatwoot's API);
// the only thing faked is Chatwoot's API, by a small local server.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  chatwootEvent,
  createChatwootSender,
  signChatwootPayload,
  signStripePayload,
  stripeEvent,
} from 'hookguard/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { createReplyBot } from './chatwoot-reply.js';

const SECRET = 'test-cw-secret';
const servers: Server[] = [];

async function listen(server: Server): Promise<string> {
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** Plays Chatwoot's message API: records each reply; `failFirst` answers 503 to the first one. */
async function fakeChatwootApi(failFirst = false) {
  const replies: { path: string; token: string | undefined; body: unknown }[] = [];
  let calls = 0;
  const url = await listen(
    createServer((req, res) => {
      let text = '';
      req.on('data', (chunk: Buffer) => (text += chunk.toString()));
      req.on('end', () => {
        calls++;
        if (failFirst && calls === 1) {
          res.writeHead(503).end();
          return;
        }
        replies.push({
          path: req.url ?? '',
          token: req.headers.api_access_token as string | undefined,
          body: JSON.parse(text),
        });
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"id":1}');
      });
    }),
  );
  return { url, replies };
}

afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

describe('my Chatwoot reply bot', () => {
  it('answers an incoming message once, through the API, with the bot token', async () => {
    const api = await fakeChatwootApi();
    const bot = await listen(
      createReplyBot({
        secret: SECRET,
        chatwootUrl: api.url,
        apiToken: 'bot-token',
        answer: async (t) => `echo: ${t}`,
      }).listen(0, '127.0.0.1'),
    );
    const event = chatwootEvent('message_created', {
      content: 'hello',
      account: { id: 7 },
      conversation: { id: 42 },
    });
    const signed = signChatwootPayload(event, SECRET);
    for (let i = 0; i < 2; i++) {
      // The same delivery twice: the second is a duplicate and does not reply again.
      const res = await fetch(`${bot}/cw`, { method: 'POST', headers: signed.headers, body: signed.body });
      expect(res.status).toBe(200);
    }
    expect(api.replies).toEqual([
      {
        path: '/api/v1/accounts/7/conversations/42/messages',
        token: 'bot-token',
        body: { content: 'echo: hello', message_type: 'outgoing', private: false },
      },
    ]);
  });

  it('never answers its own reply coming back', async () => {
    const api = await fakeChatwootApi();
    const bot = await listen(
      createReplyBot({ secret: SECRET, chatwootUrl: api.url, apiToken: 't', answer: async (t) => t }).listen(
        0,
        '127.0.0.1',
      ),
    );
    const own = signChatwootPayload(chatwootEvent('message_created', { message_type: 'outgoing' }), SECRET);
    const res = await fetch(`${bot}/cw`, { method: 'POST', headers: own.headers, body: own.body });
    expect(await res.json()).toEqual({ ok: true, ignored: true });
    expect(api.replies).toEqual([]);
  });

  it('still replies when the API fails once: Chatwoot retries the 500 (the sender follows its rules)', async () => {
    const api = await fakeChatwootApi(true);
    const bot = await listen(
      createReplyBot({ secret: SECRET, chatwootUrl: api.url, apiToken: 't', answer: async (t) => t }).listen(
        0,
        '127.0.0.1',
      ),
    );
    // createChatwootSender delivers as Chatwoot does: re-signed retries on 429/500, hand-off on anything else.
    const chatwoot = createChatwootSender({ url: `${bot}/cw`, secret: SECRET, retryDelayMs: 10 });
    const delivery = await chatwoot.deliver(chatwootEvent('message_created', { content: 'are you there?' }));
    expect(delivery.attempts.map((a) => a.status)).toEqual([500, 200]);
    expect(delivery.failure).toBeUndefined();
    expect(api.replies).toHaveLength(1);
  });

  it('refuses a forged delivery and never calls the API', async () => {
    const api = await fakeChatwootApi();
    const bot = await listen(
      createReplyBot({ secret: SECRET, chatwootUrl: api.url, apiToken: 't', answer: async (t) => t }).listen(
        0,
        '127.0.0.1',
      ),
    );
    const forged = signChatwootPayload(chatwootEvent('message_created'), 'not-the-secret');
    const res = await fetch(`${bot}/cw`, { method: 'POST', headers: forged.headers, body: forged.body });
    expect(res.status).toBe(401);
    expect(api.replies).toEqual([]);
  });
});

// The same for Stripe: signStripePayload signs like Stripe (t=…,v1=…); stripeEvent builds full objects.
describe('signing a Stripe event for your own route', () => {
  it('produces the body and Stripe-Signature header a Stripe delivery has', () => {
    const signed = signStripePayload(stripeEvent('invoice.paid'), 'whsec_test');
    expect(signed.headers['stripe-signature']).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
    expect(JSON.parse(signed.body).data.object.amount_paid).toBe(2000);
  });
});
