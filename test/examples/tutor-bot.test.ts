// The tutor bot example (examples/tutor-bot) end to end: its web app on a real server, its worker on the
// real BullMQ inbox (the machine's Redis), Chatwoot played by the double, Stripe by signed deliveries. The
// fake LLM takes 100 ms; each test has its own conversation. Then `npm run demo:tutor` as a newcomer runs it.
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Logger } from '../../src/index.js';
import type { InboxWorker } from '../../src/inbox/bullmq.js';
import {
  type ChatwootDouble,
  type DoubleMessage,
  chatwootEvent,
  createChatwootDouble,
  signStripePayload,
  stripeEvent,
} from '../../src/testing/index.js';
import { createTutor, languageOf, type Tutor, tutorAnswer } from '../../examples/tutor-bot/tutor.js';
import { createWebApp } from '../../examples/tutor-bot/web.js';
import { startWorker } from '../../examples/tutor-bot/worker.js';
import { sleep } from '../helpers/http.js';
import { listening, type Running } from '../helpers/servers.js';
import { newIoRedis, redisUp, requireService } from '../helpers/services.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CW_SECRET = 'tutor-test-chatwoot-secret';
const STRIPE_SECRET = 'whsec_tutor_test';
const QUESTIONS = ['What is a prime number?', 'How do I solve 2x + 3 = 11?'];
const redisAvailable = await redisUp();

const isBotReply = (m: DoubleMessage) =>
  m.senderType === 'agent_bot' && m.messageType === 'outgoing' && !m.private;

describe('tutor bot languageOf', () => {
  it('takes the browser language of the conversation, else of the contact, else "en"', () => {
    const created = (overrides: object) => chatwootEvent('conversation_created', overrides);
    expect(languageOf(created({ additional_attributes: { browser_language: 'fr-FR' } }))).toBe('fr');
    expect(
      languageOf(created({ meta: { sender: { additional_attributes: { browser_language: 'de' } } } })),
    ).toBe('de');
    expect(languageOf(created({}))).toBe('en');
  });
});

describe.runIf(requireService('Redis', redisAvailable))('tutor bot example (examples/tutor-bot)', () => {
  const queueName = `hg-tutor-test-${randomUUID()}`;
  const warnings: string[] = [];
  const logger: Logger = {
    info: () => undefined,
    warn: (_obj, msg) => void warnings.push(msg ?? ''),
    error: (_obj, msg) => void warnings.push(`error: ${msg ?? ''}`),
  };
  let web: Running;
  let double: ChatwootDouble;
  let tutor: Tutor;
  let worker: InboxWorker;

  beforeAll(async () => {
    // The web server listens first: the double needs its URL, the tutor needs the double's.
    const server = createServer().listen(0, '127.0.0.1');
    web = await listening(server);
    double = await createChatwootDouble({ webhookUrl: web.url('/cw'), secret: CW_SECRET, retryDelayMs: 50 });
    tutor = createTutor({
      queueName,
      chatwootUrl: double.url,
      chatwootToken: 'bot-token',
      chatwootSecret: CW_SECRET,
      stripeSecret: STRIPE_SECRET,
      llmDelayMs: 100,
      logger,
    });
    server.on('request', createWebApp(tutor));
    worker = startWorker(tutor);
  });

  afterAll(async () => {
    await worker?.close(5000);
    await double?.close();
    await web?.close();
    await tutor?.inbox.queue.obliterate({ force: true }).catch(() => undefined);
    await tutor?.close();
    const redis = newIoRedis();
    const keys = await redis.keys(`*${queueName}*`); // the queue, the workers' claims, the bot's ledger
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
  });

  const until = async (what: string, done: () => boolean) => {
    for (const deadline = Date.now() + 15_000; !done(); await sleep(25)) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    }
  };
  /** Nothing queued, running or being delivered, twice in a row: anything run twice would show by now. */
  const quiet = async () => {
    for (let calm = 0; calm < 2; await sleep(100)) {
      await double.settled();
      const stats = await tutor.inbox.stats();
      calm = stats.waiting + stats.active + stats.delayed === 0 ? calm + 1 : 0;
    }
  };
  /** A conversation whose conversation_created has run. */
  const newConversation = async () => {
    const { id, delivery } = await double.startConversation();
    expect(delivery?.attempts.map((a) => a.body)).toEqual([{ ok: true, queued: true }]);
    await until('conversation_created', () => double.conversation(id).labels.length > 0);
    return id;
  };
  const pay = async (event: object) => {
    const signed = signStripePayload(event, STRIPE_SECRET);
    const response = await fetch(web.url('/stripe'), {
      method: 'POST',
      body: signed.body,
      headers: signed.headers,
    });
    return { status: response.status, body: (await response.json()) as unknown };
  };

  it('conversation_created labels the conversation and sets its language and segment', async () => {
    const id = await newConversation();
    await quiet();
    expect(double.conversation(id)).toMatchObject({
      labels: ['tutoring', 'new-student'],
      customAttributes: { language: 'en', segment: 'trial' },
      status: 'pending',
    });
  });

  it('two quick questions are answered once each, in order; a duplicate delivery is not answered again; typing ends off', async () => {
    const id = await newConversation();
    const asked: number[] = [];
    for (const question of QUESTIONS) {
      const said = await double.customerSays(id, question);
      expect(said.delivery.attempts.map((a) => a.body)).toEqual([{ ok: true, queued: true }]);
      asked.push(said.messageId);
    }
    const again = await double.redeliver(asked[0]!);
    expect(again.attempts.map((a) => a.body)).toEqual([{ ok: true, duplicate: true }]);
    await until('both answers', () => double.conversation(id).messages.filter(isBotReply).length >= 2);
    await quiet();

    const conversation = double.conversation(id);
    expect(conversation.messages.filter(isBotReply).map((m) => m.content)).toEqual(
      QUESTIONS.map(tutorAnswer),
    );
    // Each answer follows its question (the first may come before the second question was stored).
    const at = (content: string) => conversation.messages.findIndex((m) => m.content === content);
    QUESTIONS.forEach((question) => expect(at(tutorAnswer(question))).toBeGreaterThan(at(question)));
    expect(conversation.typing).toBe(false);
    expect(conversation.typingEvents.filter((t) => t.status === 'on')).toHaveLength(2);
    expect(conversation.typingEvents.at(-1)?.status).toBe('off');
  });

  it('a payment delivered twice, then its payment_intent.succeeded: one confirmation, label "paid"', async () => {
    const id = await newConversation();
    const metadata = { chatwoot_account_id: String(double.accountId), chatwoot_conversation_id: String(id) };
    const session = stripeEvent('checkout.session.completed', {
      data: { object: { metadata, amount_total: 4500, currency: 'eur' } },
    });
    expect(await pay(session)).toEqual({ status: 200, body: { ok: true, queued: true } });
    expect(await pay(session)).toEqual({ status: 200, body: { ok: true, duplicate: true } }); // Stripe's retry
    const confirmations = () =>
      double
        .conversation(id)
        .messages.filter((m) => isBotReply(m) && m.content.startsWith('Payment received'));
    await until('the confirmation', () => confirmations().length > 0);
    // Stripe also sends payment_intent.succeeded for the same payment (another event, another key).
    const intent = stripeEvent('payment_intent.succeeded', {
      data: { object: { id: session.data.object.payment_intent, metadata } },
    });
    expect(await pay(intent)).toEqual({ status: 200, body: { ok: true, queued: true } });
    await quiet();

    expect(confirmations().map((m) => m.content)).toEqual([
      'Payment received: €45.00. Thank you! Your tutoring sessions are unlocked.',
    ]);
    expect(double.conversation(id).labels).toEqual(['tutoring', 'paid']);
  });

  it('a payment without the conversation in its metadata is logged and posts nothing', async () => {
    const before = double.conversations().flatMap((c) => c.messages).length;
    expect(await pay(stripeEvent('checkout.session.completed'))).toMatchObject({ status: 200 });
    await until('the warning', () => warnings.some((w) => w.includes('metadata')));
    await quiet();
    expect(double.conversations().flatMap((c) => c.messages)).toHaveLength(before);
  });

  it('asking for a human hands off (private note, status open); a message after it gets no reply', async () => {
    const id = await newConversation();
    await double.customerSays(id, QUESTIONS[0]!);
    await double.customerSays(id, 'Can I talk to a human teacher, please?');
    await until('the hand-off', () => double.conversation(id).status === 'open');
    const after = await double.customerSays(id, 'Hello? Is anyone there?');
    expect(after.delivery.delivered).toBe(true);
    await quiet();

    const conversation = double.conversation(id);
    expect(conversation.status).toBe('open');
    expect(double.handoffs).toMatchObject({ byBot: 1, byFailure: 0 });
    const fromBot = conversation.messages.filter((m) => m.senderType === 'agent_bot');
    expect(fromBot.map((m) => [m.content, m.private])).toEqual([
      [tutorAnswer(QUESTIONS[0]!), false],
      ['The student asked for a human tutor', true],
    ]);
    expect(fromBot.filter((m) => !m.private && m.statusAtPost === 'open')).toEqual([]);
    expect(conversation.typing).toBe(false);
  });
});

describe.runIf(requireService('Redis', redisAvailable))('npm run demo:tutor', () => {
  it('plays the story, prints the transcript and exits 0', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/demo-tutor.ts'], {
      cwd: ROOT,
      env: { ...process.env, LLM_DELAY_MS: '100' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => void (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => void (output += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    expect(output).toContain('Transcript of conversation 1');
    for (const question of QUESTIONS) expect(output).toContain(`student            ${question}`);
    expect(output).toContain('Chatwoot delivers the first question again           → 200 duplicate');
    expect(output).toContain('Stripe delivers it again                             → 200 duplicate');
    expect(output).toContain('bot, private note  The student asked for a human tutor');
    expect(output).toContain('status: open; hand-offs: 1 by the bot, 0 by failed deliveries');
    expect(output).toContain('labels: tutoring, paid');
    expect(output).not.toContain('FAILED');
    expect(code, output).toBe(0);
  });
});
