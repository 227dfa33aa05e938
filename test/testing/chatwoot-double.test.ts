// The Chatwoot double of hookguard/testing over real HTTP: its API answers as Chatwoot's controllers do
// (research/chatwoot-api.md), and its webhooks reach a real bot endpoint signed, retried and handed off as
// Chatwoot's are.
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { verifyChatwootSignature } from '../../src/index.js';
import { createChatwootDouble, type ChatwootDouble } from '../../src/testing/index.js';

const SECRET = 'double-secret';
const BOT = { api_access_token: 'bot-token' };
const USER = { api_access_token: 'user-token' };

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- webhook payloads are read field by field
type Payload = Record<string, any>;

interface Received {
  event: string;
  payload: Payload;
  deliveryId: string;
  body: string;
}

/** The bot's webhook endpoint: verifies every delivery, records it, and answers what `answer` says. */
interface BotEndpoint {
  url: string;
  received: Received[];
  answer: (received: Received) => number | Promise<number>;
  close(): Promise<void>;
}

async function botEndpoint(): Promise<BotEndpoint> {
  const bot: BotEndpoint = { url: '', received: [], answer: () => 200, close: async () => undefined };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString();
      const { deliveryId } = verifyChatwootSignature(body, req.headers, { secret: SECRET });
      const payload = JSON.parse(body) as Payload;
      const received = { event: String(payload.event), payload, deliveryId: deliveryId ?? '', body };
      bot.received.push(received);
      void Promise.resolve(bot.answer(received)).then((status) => res.writeHead(status).end('{}'));
    });
  }).listen(0, '127.0.0.1');
  await once(server, 'listening');
  bot.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/chatwoot`;
  bot.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return bot;
}

let bot: BotEndpoint;
let chatwoot: ChatwootDouble;

beforeEach(async () => {
  bot = await botEndpoint();
  chatwoot = await createChatwootDouble({ webhookUrl: bot.url, secret: SECRET, retryDelayMs: 5 });
});
afterEach(async () => {
  await chatwoot.close();
  await bot.close();
});

/** A call to the double's API under /api/v1/accounts/1/conversations. */
async function api(
  method: string,
  path: string,
  headers: Record<string, string> = BOT,
  body?: unknown,
): Promise<{ status: number; type: string | null; text: string; json: Payload }> {
  const response = await fetch(`${chatwoot.url}/api/v1/accounts/1/conversations${path}`, {
    method,
    headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  let json: Payload = {};
  try {
    json = JSON.parse(text) as Payload;
  } catch {
    // not JSON: `text` says what it was
  }
  return { status: response.status, type: response.headers.get('content-type'), text, json };
}

const post = (path: string, body: unknown, headers: Record<string, string> = BOT) =>
  api('POST', path, headers, body);
const eventsNamed = (name: string) => bot.received.filter((r) => r.event === name);

describe('createChatwootDouble: authentication and lookup', () => {
  it('answers 401 with each of Chatwoot’s bodies, and accepts a Bearer token', async () => {
    const { id } = await chatwoot.startConversation({ deliver: false });
    const none = await api('POST', `/${id}/messages`, {}, { content: 'x' });
    expect([none.status, none.json]).toEqual([
      401,
      { errors: ['You need to sign in or sign up before continuing.'] },
    ]);
    const unknown = await post(`/${id}/messages`, { content: 'x' }, { api_access_token: 'nope' });
    expect([unknown.status, unknown.json]).toEqual([401, { error: 'Invalid Access Token' }]);
    const list = await api('GET', `/${id}/messages`, BOT);
    expect([list.status, list.json]).toEqual([
      401,
      { error: 'Access to this endpoint is not authorized for bots' },
    ]);
    const bearer = await post(`/${id}/messages`, { content: 'hi' }, { authorization: 'Bearer bot-token' });
    expect(bearer.status).toBe(200);
    expect(chatwoot.requests.map((r) => [r.status, r.token])).toEqual([
      [401, 'none'],
      [401, 'unknown'],
      [401, 'bot'],
      [200, 'bot'],
    ]);
  });

  it('answers 404 for an unknown account, conversation or route', async () => {
    await chatwoot.startConversation({ deliver: false });
    const notFound = { error: 'Resource could not be found' };
    const account = await fetch(`${chatwoot.url}/api/v1/accounts/7/conversations/1/labels`, { headers: BOT });
    expect([account.status, await account.json()]).toEqual([404, notFound]);
    const conversation = await api('GET', '/99/labels');
    expect([conversation.status, conversation.json]).toEqual([404, notFound]);
    expect((await api('GET', '/1/toggle_status')).status).toBe(404);
    expect((await api('POST', '/1/nowhere', BOT, {})).status).toBe(404);
  });

  it('refuses typing and labels to a bot under the common endpoint list, not to a user', async () => {
    const common = await createChatwootDouble({
      webhookUrl: bot.url,
      secret: SECRET,
      botEndpoints: 'common',
    });
    try {
      const { id } = await common.startConversation({ deliver: false });
      const call = (path: string, headers: Record<string, string>) =>
        fetch(`${common.url}/api/v1/accounts/1/conversations/${id}${path}`, {
          method: 'POST',
          headers: { ...headers, 'content-type': 'application/json' },
          body: JSON.stringify({ typing_status: 'on', labels: ['a'] }),
        }).then(async (r) => [r.status, await r.text()]);
      const refused = '{"error":"Access to this endpoint is not authorized for bots"}';
      expect(await call('/toggle_typing_status', BOT)).toEqual([401, refused]);
      expect(await call('/labels', BOT)).toEqual([401, refused]);
      expect(await call('/toggle_typing_status', USER)).toEqual([200, '']);
      expect(common.conversation(id).typing).toBe(true);
    } finally {
      await common.close();
    }
  });
});

describe('createChatwootDouble: messages', () => {
  it('answers a created message as Chatwoot does and sends the bot its echo with the content_attributes', async () => {
    const { id } = await chatwoot.startConversation();
    const created = await post(`/${id}/messages`, {
      content: 'Your order ships today',
      content_attributes: { hookguard_ref: 'k1' },
    });
    expect(created.status).toBe(200);
    expect(created.json).toMatchObject({
      content: 'Your order ships today',
      conversation_id: id,
      message_type: 1,
      content_type: 'text',
      content_attributes: { hookguard_ref: 'k1' },
      private: false,
      sender: { type: 'agent_bot' },
    });
    expect(Number.isInteger(created.json.created_at)).toBe(true);
    const asString = await post(`/${id}/messages`, {
      content: 'n',
      content_attributes: '{"a":1}',
      private: true,
    });
    expect(asString.json).toMatchObject({ content_attributes: { a: 1 }, private: true });
    await chatwoot.settled();
    const echoes = eventsNamed('message_created')
      .map((r) => r.payload)
      .sort((a, b) => (a.id as number) - (b.id as number)); // two jobs: either may arrive first
    expect(echoes).toHaveLength(2);
    expect(echoes[0]).toMatchObject({
      id: created.json.id,
      message_type: 'outgoing',
      content_attributes: { hookguard_ref: 'k1' },
      sender: { type: 'agent_bot' },
      account: { id: 1 },
      conversation: { id, status: 'pending', messages: [{ id: created.json.id, message_type: 1 }] },
    });
    expect(echoes[1]).toMatchObject({ private: true, content_attributes: { a: 1 } });
    expect(chatwoot.conversation(id).messages).toMatchObject([
      { messageType: 'outgoing', senderType: 'agent_bot', statusAtPost: 'pending' },
      { messageType: 'outgoing', private: true },
    ]);
  });

  it('refuses incoming messages, content over 150 000 characters and a bad message_type with 422', async () => {
    const { id } = await chatwoot.startConversation({ deliver: false });
    const incoming = await post(`/${id}/messages`, { content: 'x', message_type: 'incoming' });
    expect([incoming.status, incoming.json]).toEqual([
      422,
      { error: 'Incoming messages are only allowed in Api inboxes' },
    ]);
    const long = await post(`/${id}/messages`, { content: 'x'.repeat(150_001) });
    expect(long.status).toBe(422);
    expect(long.json.error).toMatch(/^Validation failed: Content is too long/);
    expect((await post(`/${id}/messages`, { content: 'x', message_type: 'shout' })).status).toBe(422);
    expect(chatwoot.conversation(id).messages).toEqual([]);
  });

  it('refuses the 201st message within a minute with 422 Too many messages', async () => {
    const { id } = await chatwoot.startConversation({ deliver: false, status: 'open' });
    const answers = await Promise.all(
      Array.from({ length: 200 }, (_, i) => post(`/${id}/messages`, { content: `m${i}` }, USER)),
    );
    expect(answers.every((a) => a.status === 200)).toBe(true);
    const flood = await post(`/${id}/messages`, { content: 'one more' }, USER);
    expect([flood.status, flood.json]).toEqual([422, { error: 'Validation failed: Too many messages' }]);
    expect(chatwoot.conversation(id).messages).toHaveLength(200);
  });

  it('lists messages for a user: the latest 20 ascending, then before= and after= pages', async () => {
    const { id } = await chatwoot.startConversation({ deliver: false, status: 'open' });
    for (let i = 1; i <= 25; i++) await post(`/${id}/messages`, { content: `m${i}` }, USER);
    const latest = await api('GET', `/${id}/messages`, USER);
    const ids = (page: Payload) => (page.payload as Payload[]).map((m) => m.id as number);
    expect(ids(latest.json)).toEqual(Array.from({ length: 20 }, (_, i) => i + 6));
    expect(latest.json.payload[0]).toMatchObject({
      content: 'm6',
      message_type: 1,
      status: 'sent',
      source_id: null,
      content_attributes: {},
      sender: { type: 'user' },
    });
    expect(latest.json.meta).toMatchObject({ labels: [], contact: { type: 'contact' } });
    expect(ids((await api('GET', `/${id}/messages?before=6`, USER)).json)).toEqual([1, 2, 3, 4, 5]);
    expect(ids((await api('GET', `/${id}/messages?after=22`, USER)).json)).toEqual([23, 24, 25]);
    expect((await api('GET', `/${id}/messages`, BOT)).status).toBe(401);
  });

  it('redelivers a message as an exact copy under a new delivery id', async () => {
    const { id } = await chatwoot.startConversation({ deliver: false });
    const { messageId, delivery } = await chatwoot.customerSays(id, 'hello');
    const again = await chatwoot.redeliver(messageId);
    const [first, second] = eventsNamed('message_created');
    expect(second!.body).toBe(first!.body);
    expect([first!.deliveryId, second!.deliveryId]).toEqual([delivery.id, again.id]);
    expect(again.id).not.toBe(delivery.id);
    expect(first!.payload).toMatchObject({ message_type: 'incoming', sender: { type: 'contact' } });
  });
});

describe('createChatwootDouble: conversation endpoints', () => {
  it('records typing on and off; an unknown value is answered 200 and changes nothing', async () => {
    const { id } = await chatwoot.startConversation({ deliver: false });
    const on = await post(`/${id}/toggle_typing_status`, { typing_status: 'on' });
    expect([on.status, on.text]).toEqual([200, '']);
    expect(chatwoot.conversation(id).typing).toBe(true);
    await post(`/${id}/toggle_typing_status`, { typing_status: 'off' });
    expect((await post(`/${id}/toggle_typing_status`, { typing_status: 'dancing' })).status).toBe(200);
    const { typing, typingEvents } = chatwoot.conversation(id);
    expect([typing, typingEvents.map((e) => e.status)]).toEqual([false, ['on', 'off']]);
  });

  it('toggles the status: a bot’s pending→open has success null, sends conversation_opened and counts byBot', async () => {
    const { id } = await chatwoot.startConversation({ deliver: false });
    const handoff = await post(`/${id}/toggle_status`, { status: 'open' });
    expect([handoff.status, handoff.json]).toEqual([
      200,
      {
        meta: {},
        payload: { success: null, conversation_id: id, current_status: 'open', snoozed_until: null },
      },
    ]);
    await chatwoot.settled();
    expect(eventsNamed('conversation_opened').map((r) => r.payload)).toMatchObject([{ id, status: 'open' }]);
    expect(chatwoot.handoffs).toEqual({ byFailure: 0, byBot: 1, byAgent: 0 });
    expect(chatwoot.conversation(id).messages.map((m) => m.messageType)).toEqual(['activity']);
    expect(eventsNamed('message_created')).toEqual([]);

    const resolved = await post(`/${id}/toggle_status`, { status: 'resolved' }, USER);
    expect(resolved.json.payload).toMatchObject({ success: true, current_status: 'resolved' });
    const toggled = await post(`/${id}/toggle_status`, {}, USER);
    expect(toggled.json.payload.current_status).toBe('open');
    const invalid = await post(`/${id}/toggle_status`, { status: 'closed' }, USER);
    expect([invalid.status, typeof invalid.json.error]).toEqual([500, 'string']);
    await chatwoot.settled();
    // Each webhook is its own job in Chatwoot, so deliveries sent together may arrive in either order.
    expect(bot.received.map((r) => r.event).sort()).toEqual([
      'conversation_opened',
      'conversation_opened',
      'conversation_resolved',
    ]);
  });

  it('replaces labels and custom attributes, and shows the conversation', async () => {
    const { id } = await chatwoot.startConversation({ deliver: false });
    expect((await post(`/${id}/labels`, { labels: ['a', 'b'] })).json).toEqual({ payload: ['a', 'b'] });
    expect((await post(`/${id}/labels`, { labels: ['c'] })).json).toEqual({ payload: ['c'] });
    expect((await api('GET', `/${id}/labels`)).json).toEqual({ payload: ['c'] });
    await post(`/${id}/custom_attributes`, { custom_attributes: { plan: 'pro', seats: 3 } });
    const replaced = await post(`/${id}/custom_attributes`, { custom_attributes: { plan: 'free' } });
    expect(replaced.json).toEqual({ custom_attributes: { plan: 'free' } });
    expect(chatwoot.conversation(id)).toMatchObject({ labels: ['c'], customAttributes: { plan: 'free' } });
    const shown = await api('GET', `/${id}`);
    expect(shown.json).toMatchObject({
      id,
      status: 'pending',
      labels: ['c'],
      custom_attributes: { plan: 'free' },
      meta: { assignee: null },
    });
  });
});

describe('createChatwootDouble: failNext', () => {
  it('answers 429 as Rack::Attack (text, no Retry-After) for the matching request only', async () => {
    const { id } = await chatwoot.startConversation({ deliver: false });
    chatwoot.failNext({ path: /\/messages$/, status: 429 });
    expect((await post(`/${id}/labels`, { labels: ['a'] })).status).toBe(200);
    const response = await fetch(`${chatwoot.url}/api/v1/accounts/1/conversations/${id}/messages`, {
      method: 'POST',
      headers: { ...BOT, 'content-type': 'application/json' },
      body: '{"content":"hi"}',
    });
    expect([
      response.status,
      response.headers.get('content-type'),
      response.headers.get('retry-after'),
    ]).toEqual([429, 'text/plain', null]);
    expect(await response.text()).toBe('Retry later\n');
    expect(chatwoot.conversation(id).messages.filter((m) => m.messageType === 'outgoing')).toEqual([]);
    expect((await post(`/${id}/messages`, { content: 'hi' })).status).toBe(200);
  });

  it('applied: true stores the message and sends its echo, but answers 500', async () => {
    const { id } = await chatwoot.startConversation({ deliver: false });
    chatwoot.failNext({ status: 500, applied: true, delayMs: 20 });
    const lost = await post(`/${id}/messages`, { content: 'posted' });
    expect([lost.status, lost.json.error]).toEqual([500, 'Internal Server Error']);
    chatwoot.failNext({ status: 500 });
    expect((await post(`/${id}/messages`, { content: 'not posted' })).status).toBe(500);
    await chatwoot.settled();
    expect(chatwoot.conversation(id).messages.map((m) => m.content)).toEqual(['posted']);
    expect(eventsNamed('message_created').map((r) => r.payload.content)).toEqual(['posted']);
  });
});

describe('createChatwootDouble: deliveries to the bot', () => {
  it('hands a pending conversation to a human when the bot answers 400, as Chatwoot does', async () => {
    const { id } = await chatwoot.startConversation();
    bot.answer = (r) => (r.event === 'message_created' ? 400 : 200);
    const { delivery } = await chatwoot.customerSays(id, 'hello');
    expect(delivery).toMatchObject({ delivered: false, failure: 'handed-off', attempts: [{ status: 400 }] });
    const conversation = chatwoot.conversation(id);
    expect(conversation.status).toBe('open');
    expect(conversation.messages.map((m) => [m.messageType, m.statusAtPost])).toEqual([
      ['incoming', 'pending'],
      ['activity', 'open'],
    ]);
    expect(chatwoot.handoffs).toEqual({ byFailure: 1, byBot: 0, byAgent: 0 });
    await chatwoot.settled();
    expect(bot.received.map((r) => r.event)).toEqual([
      'conversation_created',
      'message_created',
      'conversation_opened',
    ]);
  });

  it('retries a 500 and delivers on the second attempt, leaving the conversation pending', async () => {
    const { id } = await chatwoot.startConversation({ deliver: false });
    let calls = 0;
    bot.answer = () => (++calls === 1 ? 500 : 200);
    const { delivery } = await chatwoot.customerSays(id, 'hello');
    expect(delivery).toMatchObject({ delivered: true, attempts: [{ status: 500 }, { status: 200 }] });
    expect(new Set(bot.received.map((r) => r.deliveryId))).toEqual(new Set([delivery.id]));
    expect(chatwoot.conversation(id).status).toBe('pending');
    expect(chatwoot.handoffs.byFailure).toBe(0);
  });

  it('an agent takes over and replies: conversation_opened, then an outgoing message from a user', async () => {
    const { id } = await chatwoot.startConversation({ deliver: false });
    await chatwoot.agentTakesOver(id, { id: 7, name: 'Ana' });
    await chatwoot.agentSays(id, 'Ana here');
    expect(chatwoot.conversation(id)).toMatchObject({
      status: 'open',
      assignee: { type: 'user', id: 7, name: 'Ana' },
    });
    expect(chatwoot.handoffs.byAgent).toBe(1);
    expect(bot.received.map((r) => r.payload)).toMatchObject([
      { event: 'conversation_opened', meta: { assignee: { type: 'user', id: 7 } } },
      { event: 'message_created', message_type: 'outgoing', sender: { type: 'user', name: 'Ana' } },
    ]);
  });

  it('tests a bot in a few lines: replied once, typing ended off, no hand-off', async () => {
    // A bot that answers pending, incoming, public messages through the API, as a real one would.
    bot.answer = async ({ payload }) => {
      const own = payload.conversation?.status === 'pending' && payload.message_type === 'incoming';
      if (payload.event !== 'message_created' || !own || payload.private === true) return 200;
      const conversation = `/${payload.conversation.id as number}`;
      await post(`${conversation}/toggle_typing_status`, { typing_status: 'on' });
      await post(`${conversation}/messages`, { content: `You said: ${payload.content as string}` });
      await post(`${conversation}/toggle_typing_status`, { typing_status: 'off' });
      return 200;
    };
    const { id } = await chatwoot.startConversation();
    await chatwoot.customerSays(id, 'hello');
    await chatwoot.settled();
    const conversation = chatwoot.conversation(id);
    const replies = conversation.messages.filter((m) => m.senderType === 'agent_bot' && !m.private);
    expect(replies.map((m) => m.content)).toEqual(['You said: hello']);
    expect(conversation.typing).toBe(false);
    expect(conversation.typingEvents.map((e) => e.status)).toEqual(['on', 'off']);
    expect(chatwoot.handoffs).toEqual({ byFailure: 0, byBot: 0, byAgent: 0 });
    // The bot's own reply came back to it as an outgoing message_created, and it left that alone.
    expect(eventsNamed('message_created').map((r) => r.payload.message_type)).toEqual([
      'incoming',
      'outgoing',
    ]);
  });
});
