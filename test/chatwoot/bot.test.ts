// The Chatwoot bot kit (hookguard/chatwoot) against the Chatwoot double: the client's calls and errors,
// and a bot mounted on a real Express server receiving the double's deliveries, inline (no inbox).
import { afterEach, describe, expect, it } from 'vitest';
import {
  chatwootBot,
  type ChatwootBotHandlers,
  createChatwootClient,
  isChatwootApiError,
  REPLY_MARK,
} from '../../src/chatwoot/index.js';
import { createMemoryDedupStore } from '../../src/index.js';
import { createBullMQInbox } from '../../src/inbox/bullmq.js';
import { redisUp, requireService } from '../helpers/services.js';
import {
  type ChatwootDouble,
  type ChatwootDoubleOptions,
  createChatwootDouble,
} from '../../src/testing/index.js';
import { type BotServer, startBotServer } from '../helpers/bot-server.js';

const SECRET = 'bot-webhook-secret';
const redisAvailable = await redisUp();
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function setup(
  doubleOptions: Partial<ChatwootDoubleOptions> = {},
): Promise<{ cw: ChatwootDouble; server: BotServer }> {
  const server = await startBotServer();
  const cw = await createChatwootDouble({
    webhookUrl: server.url,
    secret: SECRET,
    retryDelayMs: 20,
    ...doubleOptions,
  });
  cleanups.push(server.close, cw.close);
  return { cw, server };
}

/** Mounts a bot with these handlers; resolves the bot and the calls its message_created handler got. */
function mountBot(
  cw: ChatwootDouble,
  server: BotServer,
  on: ChatwootBotHandlers,
  extra: Partial<Parameters<typeof chatwootBot>[0]> = {},
) {
  const bot = chatwootBot({
    url: cw.url,
    token: 'bot-token',
    store: createMemoryDedupStore(),
    retryDelayMs: 10,
    settleMs: 2000,
    ...extra,
  });
  server.mount(bot.options({ secret: SECRET, logger: false, on }));
  return bot;
}

const botReplies = (cw: ChatwootDouble, id: number) =>
  cw.conversation(id).messages.filter((m) => m.messageType === 'outgoing' && m.senderType === 'agent_bot');

describe('createChatwootClient', () => {
  it('posts a message and gets Chatwoot’s message back (integer message_type, content_attributes kept)', async () => {
    const { cw } = await setup();
    const { id } = await cw.startConversation({ deliver: false });
    const client = createChatwootClient({ url: cw.url, token: 'bot-token' });
    const message = await client.postMessage(
      { accountId: cw.accountId, conversationId: id },
      { content: 'Hello', contentAttributes: { mine: 'x' } },
    );
    expect(message).toMatchObject({
      content: 'Hello',
      message_type: 1,
      private: false,
      content_attributes: { mine: 'x' },
    });
    expect(cw.conversation(id).messages.map((m) => m.content)).toEqual(['Hello']);
  });

  it('names the fix: a wrong token, a wrong conversation, an endpoint this Chatwoot refuses to bots', async () => {
    const { cw } = await setup({ botEndpoints: 'common' });
    const { id } = await cw.startConversation({ deliver: false });
    const to = { accountId: cw.accountId, conversationId: id };
    const wrong = createChatwootClient({ url: cw.url, token: 'not-the-token', retryDelayMs: 1 });
    const error = await wrong.postMessage(to, { content: 'x' }).catch((err: unknown) => err);
    expect(isChatwootApiError(error) && error.code).toBe('CHATWOOT_UNAUTHORIZED');
    expect(String((error as Error).message)).toMatch(/access token/);
    expect(String((error as Error).message)).not.toContain('not-the-token');

    const client = createChatwootClient({ url: cw.url, token: 'bot-token', retryDelayMs: 1 });
    const missing = await client
      .setCustomAttributes({ ...to, conversationId: 999 }, { a: 1 })
      .catch((err: unknown) => err);
    expect(isChatwootApiError(missing) && [missing.code, missing.status]).toEqual([
      'CHATWOOT_NOT_FOUND',
      404,
    ]);
    expect(String((missing as Error).message)).toMatch(/display ids/);

    const typing = await client.setTyping(to, true).catch((err: unknown) => err);
    expect(isChatwootApiError(typing) && typing.code).toBe('CHATWOOT_NOT_FOR_BOTS');
    expect(cw.requests.filter((r) => r.status === 401)).toHaveLength(2); // no retry of a 401
  });

  it('tries a 429 again (nothing was stored), never a post whose 500 may have stored it', async () => {
    const { cw } = await setup();
    const { id } = await cw.startConversation({ deliver: false });
    const to = { accountId: cw.accountId, conversationId: id };
    const client = createChatwootClient({ url: cw.url, token: 'bot-token', retryDelayMs: 5 });
    cw.failNext({ path: /messages$/, status: 429, times: 2 });
    await client.postMessage(to, { content: 'after two 429s' });
    expect(cw.conversation(id).messages).toHaveLength(1);

    cw.failNext({ path: /messages$/, status: 500, times: 1, applied: true });
    const lost = await client
      .postMessage(to, { content: 'stored, answer lost' })
      .catch((err: unknown) => err);
    expect(isChatwootApiError(lost) && [lost.code, lost.ambiguous]).toEqual(['CHATWOOT_UNAVAILABLE', true]);
    const posted = cw.conversation(id).messages.filter((m) => m.messageType === 'outgoing');
    expect(posted.map((m) => m.content)).toEqual(['after two 429s', 'stored, answer lost']);

    cw.failNext({ path: /toggle_typing_status$/, status: 500, times: 2 });
    await client.setTyping(to, true); // idempotent: tried again
    expect(cw.conversation(id).typing).toBe(true);
  });
});

describe('chatwootBot', () => {
  it('answers a message once, with typing on while it works and off after, and records its own echo', async () => {
    const { cw, server } = await setup();
    let calls = 0;
    mountBot(
      cw,
      server,
      {
        message_created: async (event, ctx) => {
          calls++;
          expect(cw.conversation(Number(ctx.chatwoot.conversationId)).typing).toBe(true);
          await ctx.chatwoot.reply(`You said: ${event.content}`);
        },
      },
      { typing: true },
    );
    const { id } = await cw.startConversation();
    const said = await cw.customerSays(id, 'hi');
    await cw.settled();
    expect(said.delivery.delivered).toBe(true);
    expect(calls).toBe(1); // the echo of the reply did not reach the handler
    const replies = botReplies(cw, id);
    expect(replies.map((m) => m.content)).toEqual(['You said: hi']);
    expect(replies[0]!.contentAttributes[REPLY_MARK]).toMatch(/message_created/);
    expect(cw.conversation(id).typingEvents.map((t) => t.status)).toEqual(['on', 'off']);
    expect(cw.conversation(id).typing).toBe(false);
  });

  it('a handler that fails after its reply and is run again does not post it twice; typing ends off', async () => {
    const { cw, server } = await setup();
    let calls = 0;
    mountBot(
      cw,
      server,
      {
        message_created: async (_event, ctx) => {
          calls++;
          const result = await ctx.chatwoot.reply('the answer');
          if (calls === 1) throw new Error('failed after the reply');
          expect(result).toEqual({ posted: false, reason: 'already-posted' });
        },
      },
      { typing: true },
    );
    const { id } = await cw.startConversation();
    const said = await cw.customerSays(id, 'question');
    await cw.settled();
    expect(said.delivery.attempts.map((a) => a.status)).toEqual([500, 200]); // Chatwoot retried the 500
    expect(calls).toBe(2);
    expect(botReplies(cw, id)).toHaveLength(1);
    expect(cw.conversation(id).typing).toBe(false);
    expect(cw.handoffs.byFailure).toBe(0);
  });

  it('a post stored by Chatwoot whose answer was lost is settled by its echo: posted once', async () => {
    const { cw, server } = await setup();
    let calls = 0;
    mountBot(cw, server, {
      message_created: async (_event, ctx) => {
        calls++;
        await ctx.chatwoot.reply('once only');
      },
    });
    const { id } = await cw.startConversation();
    cw.failNext({ path: /messages$/, status: 500, times: 1, applied: true });
    const said = await cw.customerSays(id, 'question');
    await cw.settled();
    expect(said.delivery.delivered).toBe(true);
    expect(calls).toBe(1);
    expect(botReplies(cw, id).map((m) => m.content)).toEqual(['once only']);
  });

  it('typing ends off when the handler fails for good (and the failure hands the conversation over)', async () => {
    const { cw, server } = await setup();
    mountBot(
      cw,
      server,
      {
        message_created: async () => {
          throw new Error('the model is down');
        },
      },
      { typing: true },
    );
    const { id } = await cw.startConversation();
    const said = await cw.customerSays(id, 'question');
    await cw.settled();
    expect(said.delivery.failure).toBe('handed-off');
    expect(cw.conversation(id).typingEvents.filter((t) => t.status === 'on')).toHaveLength(3);
    expect(cw.conversation(id).typing).toBe(false);
  });

  it('hand-off: a private note, status open; later messages are not handled and nothing is posted', async () => {
    const { cw, server } = await setup();
    const seen: string[] = [];
    mountBot(cw, server, {
      message_created: async (event, ctx) => {
        seen.push(event.content ?? '');
        if (event.content === 'human please') await ctx.chatwoot.handoff('asked for a human');
        else await ctx.chatwoot.reply('bot answer');
      },
    });
    const { id } = await cw.startConversation();
    await cw.customerSays(id, 'hello');
    await cw.customerSays(id, 'human please');
    await cw.customerSays(id, 'are you there?');
    await cw.settled();
    expect(seen).toEqual(['hello', 'human please']);
    const conversation = cw.conversation(id);
    expect(conversation.status).toBe('open');
    expect(cw.handoffs).toMatchObject({ byBot: 1, byFailure: 0 });
    expect(botReplies(cw, id).map((m) => [m.content, m.private])).toEqual([
      ['bot answer', false],
      ['asked for a human', true],
    ]);
  });

  it('a human taking over silences the bot; afterHandoff "handle" keeps it answering', async () => {
    const { cw, server } = await setup();
    let calls = 0;
    mountBot(cw, server, {
      message_created: async (_event, ctx) => {
        calls++;
        await ctx.chatwoot.reply('bot');
      },
    });
    const { id } = await cw.startConversation();
    await cw.agentTakesOver(id);
    await cw.customerSays(id, 'to the human');
    await cw.settled();
    expect(calls).toBe(0);
    expect(botReplies(cw, id)).toHaveLength(0);

    mountBot(
      cw,
      server,
      { message_created: async (_e, ctx) => void (await ctx.chatwoot.reply('still me')) },
      {
        afterHandoff: 'handle',
      },
    );
    await cw.customerSays(id, 'again');
    await cw.settled();
    expect(botReplies(cw, id).map((m) => m.content)).toEqual(['still me']);
  });

  it('conversation_created sets labels and attributes through ctx.chatwoot', async () => {
    const { cw, server } = await setup();
    mountBot(cw, server, {
      conversation_created: async (_event, ctx) => {
        await ctx.chatwoot.setLabels(['tutoring', 'new']);
        await ctx.chatwoot.setCustomAttributes({ language: 'en', segment: 'trial' });
      },
    });
    const { id, delivery } = await cw.startConversation();
    await cw.settled();
    expect(delivery?.delivered).toBe(true);
    expect(cw.conversation(id)).toMatchObject({
      labels: ['tutoring', 'new'],
      customAttributes: { language: 'en', segment: 'trial' },
    });
  });
});

describe('chatwootBot: typing ends on a hang and on a dead letter', () => {
  it('a handler that hangs: typing is turned off after typing.timeoutMs while it still runs', async () => {
    const { cw, server } = await setup();
    let release!: () => void;
    const hanging = new Promise<void>((resolve) => (release = resolve));
    mountBot(cw, server, { message_created: () => hanging }, { typing: { timeoutMs: 300 } });
    const { id } = await cw.startConversation();
    const said = cw.customerSays(id, 'question');
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(cw.conversation(id).typing).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(cw.conversation(id).typing).toBe(false); // the handler has not returned
    release();
    await said;
    await cw.settled();
    expect(cw.conversation(id).typing).toBe(false);
  });

  it.runIf(requireService('Redis', redisAvailable))(
    'a job that fails every attempt in the inbox (dead letter): typing ended off after each',
    async () => {
      const { cw, server } = await setup();
      const inbox = createBullMQInbox({
        connection: { host: '127.0.0.1', port: 6379 },
        queueName: `hg-bot-dead-${Date.now()}`,
        attempts: 3,
        backoffMs: 20,
        logger: false,
      });
      const bot = chatwootBot({
        url: cw.url,
        token: 'bot-token',
        store: createMemoryDedupStore(),
        typing: true,
      });
      const options = bot.options({
        secret: SECRET,
        inbox,
        logger: false,
        on: {
          message_created: async () => {
            throw new Error('the model is down');
          },
        },
      });
      server.mount(options);
      const worker = inbox.worker({ chatwoot: options, logger: false });
      cleanups.push(async () => {
        await worker.close();
        await inbox.queue.obliterate({ force: true });
        await inbox.close();
      });
      const { id } = await cw.startConversation();
      const said = await cw.customerSays(id, 'question');
      expect(said.delivery.delivered).toBe(true); // queued: Chatwoot is answered 200 at once
      const deadline = Date.now() + 15_000;
      while ((await inbox.failed()).length === 0 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      await cw.settled();
      expect((await inbox.failed()).map((f) => f.attempts)).toEqual([3]);
      expect(cw.conversation(id).typingEvents.map((t) => t.status)).toEqual([
        'on',
        'off',
        'on',
        'off',
        'on',
        'off',
      ]);
      expect(cw.conversation(id).typing).toBe(false);
      expect(cw.handoffs.byFailure).toBe(0);
    },
    30_000,
  );
});

describe('chatwootBot: what a fresh-eyes attack broke, pinned', () => {
  it('a hand-off whose status change failed hands off on the re-run (not marked before Chatwoot took it)', async () => {
    const { cw, server } = await setup();
    mountBot(cw, server, { message_created: async (_e, ctx) => ctx.chatwoot.handoff() }, { retryDelayMs: 1 });
    const { id } = await cw.startConversation();
    cw.failNext({ path: /toggle_status$/, status: 503, times: 3 });
    const said = await cw.customerSays(id, 'a human please');
    await cw.settled();
    expect(said.delivery.attempts.map((a) => a.status)).toEqual([500, 200]);
    expect(cw.conversation(id).status).toBe('open');
    expect(cw.handoffs).toMatchObject({ byBot: 1, byFailure: 0 });
  });

  it('replies are keyed per conversation: one event replying into two conversations posts both', async () => {
    const { cw, server } = await setup();
    const bot = mountBot(cw, server, {});
    const [a, b] = [(await cw.startConversation()).id, (await cw.startConversation()).id];
    const ctx = { key: 'stripe:evt_1', log: {}, attempt: 1 } as Parameters<typeof bot.conversation>[0];
    const first = await bot.conversation(ctx, { accountId: cw.accountId, conversationId: a }).reply('paid');
    const second = await bot.conversation(ctx, { accountId: cw.accountId, conversationId: b }).reply('paid');
    expect([first.posted, second.posted]).toEqual([true, true]);
    const again = await bot.conversation(ctx, { accountId: cw.accountId, conversationId: b }).reply('paid');
    expect(again).toEqual({ posted: false, reason: 'already-posted' });
  });

  it('a human taking over while the answer is written: the reply reads the status first and is not posted', async () => {
    const { cw, server } = await setup();
    let result: unknown;
    mountBot(
      cw,
      server,
      {
        message_created: async (_e, ctx) => {
          await new Promise((resolve) => setTimeout(resolve, 300));
          result = await ctx.chatwoot.reply('too late');
        },
      },
      { handoffMemoryMs: 0 }, // no mark from conversation_opened: only Chatwoot's own status can stop it
    );
    const { id } = await cw.startConversation();
    const said = cw.customerSays(id, 'question');
    await new Promise((resolve) => setTimeout(resolve, 100));
    await cw.agentTakesOver(id);
    await said;
    await cw.settled();
    expect(result).toEqual({ posted: false, reason: 'handed-off' });
    expect(botReplies(cw, id)).toEqual([]);
  });

  it('typing "off" never overtakes a slow "on": the indicator ends off', async () => {
    const { cw, server } = await setup();
    let release!: () => void;
    const hanging = new Promise<void>((resolve) => (release = resolve));
    mountBot(cw, server, { message_created: () => hanging }, { typing: { timeoutMs: 100 } });
    const { id } = await cw.startConversation();
    cw.failNext({ path: /toggle_typing_status$/, delayMs: 400, times: 1 });
    const said = cw.customerSays(id, 'question');
    await new Promise((resolve) => setTimeout(resolve, 700));
    expect(cw.conversation(id).typingEvents.map((t) => t.status)).toEqual(['on', 'off']);
    release();
    await said;
    await cw.settled();
    expect(cw.conversation(id).typing).toBe(false);
  });

  it('a token a header cannot carry is refused when the client is made, naming the cause', () => {
    expect(() => createChatwootClient({ url: 'http://127.0.0.1:1', token: 'abc\u200b' })).toThrow(
      /header cannot carry/,
    );
  });

  it.runIf(requireService('Redis', redisAvailable))(
    'a Chatwoot that does not let bots read a conversation: the hand-off mark silences the messages queued behind it',
    async () => {
      const { cw, server } = await setup({ botEndpoints: 'common' });
      const inbox = createBullMQInbox({
        connection: { host: '127.0.0.1', port: 6379 },
        queueName: `hg-bot-mark-${Date.now()}`,
        ordered: true,
        logger: false,
      });
      const bot = chatwootBot({ url: cw.url, token: 'bot-token', store: createMemoryDedupStore() });
      const seen: string[] = [];
      const options = bot.options({
        secret: SECRET,
        inbox,
        logger: false,
        on: {
          message_created: async (event, ctx) => {
            seen.push(event.content ?? '');
            if (event.content === 'human please') await ctx.chatwoot.handoff();
            else await ctx.chatwoot.reply(`answer to ${event.content}`);
          },
        },
      });
      server.mount(options);
      const { id } = await cw.startConversation();
      // Queued while the conversation is pending: both payloads say so.
      await cw.customerSays(id, 'human please');
      await cw.customerSays(id, 'still there?');
      const worker = inbox.worker({ chatwoot: options, logger: false });
      cleanups.push(async () => {
        await worker.close();
        await inbox.queue.obliterate({ force: true });
        await inbox.close();
      });
      const deadline = Date.now() + 10_000;
      while (cw.conversation(id).status !== 'open' && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      await new Promise((resolve) => setTimeout(resolve, 1000)); // the second message's turn
      await cw.settled();
      expect(cw.conversation(id).status).toBe('open');
      expect(seen).toEqual(['human please']); // the second skipped the handler: the mark, not its payload
      expect(botReplies(cw, id)).toEqual([]);
    },
    30_000,
  );

  it.each([
    [400, 1],
    ['never', 2],
  ] as const)(
    'a post stored with its answer lost, its echo %s ms later (lease 1.5 s): %i bot replies (the documented limit)',
    async (echoDelayMs, replies) => {
      const { cw, server } = await setup({ echoDelayMs });
      mountBot(
        cw,
        server,
        { message_created: async (_e, ctx) => void (await ctx.chatwoot.reply('the answer')) },
        { replyLeaseMs: 1500, settleMs: 100 },
      );
      const { id } = await cw.startConversation();
      cw.failNext({ path: /messages$/, status: 500, times: 1, applied: true });
      const said = await cw.customerSays(id, 'question');
      await cw.settled();
      expect(said.delivery.attempts.map((a) => a.status)).toEqual([500, 200]); // Chatwoot ran it again
      expect(botReplies(cw, id)).toHaveLength(replies);
    },
    15_000,
  );
});
