// `npm run demo:tutor`: the tutoring bot of examples/tutor-bot, end to end, in one process. A Chatwoot
// double (hookguard/testing) plays Chatwoot; the tutor's web app and one worker run on the durable inbox
// (BullMQ on the machine's Redis, or on a private redis-server started for the run). A student opens a
// conversation, asks two questions quickly (one delivered twice), pays through Stripe (the event delivered
// twice), asks for a human, then writes once more. The transcript is printed from the double; the exit code
// is 1, with the reasons, when the bot did not behave. LLM_DELAY_MS sets the fake LLM's time (default 1500).
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { type AddressInfo, createServer as createTcpServer } from 'node:net';
import { pathToFileURL } from 'node:url';
import { Redis } from 'ioredis';
import type { Logger } from 'hookguard';
import type { InboxWorker } from 'hookguard/bullmq';
import {
  type ChatwootDouble,
  type DoubleMessage,
  type SimulatedDelivery,
  createChatwootDouble,
  signStripePayload,
  stripeEvent,
} from 'hookguard/testing';
import { createTutor, type Tutor, tutorAnswer } from '../examples/tutor-bot/tutor.js';
import { createWebApp } from '../examples/tutor-bot/web.js';
import { startWorker } from '../examples/tutor-bot/worker.js';

const CHATWOOT_SECRET = 'demo-tutor-chatwoot-secret';
const STRIPE_SECRET = 'whsec_demo_tutor';
export const QUESTIONS = ['What is a prime number?', 'How do I solve 2x + 3 = 11?'] as const;
export const ASK_FOR_HUMAN = 'Can I talk to a human teacher, please?';
export const AFTER_HANDOFF = 'Hello? Is anyone there?';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------------------------------------
// Redis: the machine's, or a private one.

interface RedisServer {
  port: number;
  /** Whether this run started it (then `stop()` ends it). */
  private: boolean;
  stop(): void;
}

async function pings(port: number): Promise<boolean> {
  const client = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 0 });
  client.on('error', () => undefined); // the failed connect is the answer
  try {
    await client.connect();
    await client.ping();
    return true;
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createTcpServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => resolve(port));
    });
    probe.once('error', reject);
  });
}

/** Redis on 127.0.0.1:6379 when it answers; otherwise a `redis-server` without persistence on a free port. */
async function redisServer(): Promise<RedisServer> {
  if (await pings(6379)) return { port: 6379, private: false, stop: () => undefined };
  const port = await freePort();
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: 'ignore',
  }); // prettier-ignore
  const failed = new Promise<never>((_, reject) => {
    child.once('error', (err) =>
      reject(new Error(`no Redis on 127.0.0.1:6379, and redis-server could not start (${err.message})`)),
    );
    child.once('exit', (code) => reject(new Error(`redis-server exited (${code}) before it answered`)));
  });
  failed.catch(() => undefined); // read below, or never if it answered
  const stop = () => void child.kill('SIGTERM');
  for (let i = 0; i < 50; i++) {
    const up = await Promise.race([pings(port), failed]);
    if (up) return { port, private: true, stop };
    await sleep(100);
  }
  stop();
  throw new Error(`redis-server on port ${port} did not answer within 5 s`);
}

// ---------------------------------------------------------------------------------------------------------
// The stack: the Chatwoot double, the tutor's web app and one worker.

export interface TutorStackOptions {
  redisPort: number;
  queueName: string;
  llmDelayMs: number;
  logger?: Logger | false;
}

export interface TutorStack {
  double: ChatwootDouble;
  tutor: Tutor;
  worker: InboxWorker;
  /** The web app's base URL (POST /cw, POST /stripe). */
  webUrl: string;
  /** Resolves when nothing is queued or running and the double delivers nothing (twice in a row). */
  quiet(timeoutMs?: number): Promise<void>;
  /** Stops everything and deletes the queue's keys (the queue, the workers' claims, the bot's ledger). */
  stop(): Promise<void>;
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
}

/**
 * The web server listens first (the double needs its URL), the double starts (the tutor needs its URL),
 * then the tutor's app is put behind the server.
 */
export async function startTutorStack(options: TutorStackOptions): Promise<TutorStack> {
  // Nothing is delivered before the app is in place: the double sends only what the story makes it send.
  const server = createServer();
  const webUrl = `http://127.0.0.1:${await listen(server)}`;
  const double = await createChatwootDouble({
    webhookUrl: `${webUrl}/cw`,
    secret: CHATWOOT_SECRET,
    retryDelayMs: 200,
  });
  const tutor = createTutor({
    redis: { host: '127.0.0.1', port: options.redisPort },
    queueName: options.queueName,
    chatwootUrl: double.url,
    chatwootToken: 'bot-token', // the double's default bot token
    chatwootSecret: CHATWOOT_SECRET,
    stripeSecret: STRIPE_SECRET,
    accountId: double.accountId,
    llmDelayMs: options.llmDelayMs,
    ...(options.logger !== undefined && { logger: options.logger }),
  });
  server.on('request', createWebApp(tutor));
  const worker = startWorker(tutor);

  const busy = async () => {
    await double.settled();
    const stats = await tutor.inbox.stats();
    return stats.waiting + stats.active + stats.delayed > 0;
  };
  return {
    double,
    tutor,
    worker,
    webUrl,
    async quiet(timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      let calm = 0;
      while (calm < 2) {
        if (Date.now() > deadline) throw new Error(`the inbox was still busy after ${timeoutMs} ms`);
        calm = (await busy()) ? 0 : calm + 1;
        await sleep(100);
      }
    },
    async stop() {
      await worker.close(5000);
      await double.close();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await tutor.inbox.queue.obliterate({ force: true }).catch(() => undefined);
      await tutor.close();
      const redis = new Redis({ host: '127.0.0.1', port: options.redisPort });
      const keys: string[] = [];
      for await (const batch of redis.scanStream({ match: `*${options.queueName}*`, count: 500 })) {
        keys.push(...(batch as string[]));
      }
      if (keys.length > 0) await redis.del(...keys);
      redis.disconnect();
    },
  };
}

// ---------------------------------------------------------------------------------------------------------
// The story, the transcript and the checks.

export interface TutorDemoResult {
  /** Everything printed. */
  lines: string[];
  /** The expectations that failed; empty when the bot behaved. */
  failures: string[];
}

/** How the web app answered a delivery: `200 queued`, `200 duplicate`, `401`… */
function answerOf(attempts: SimulatedDelivery['attempts']): string {
  return attempts
    .map((attempt) => {
      const body = attempt.body as { queued?: boolean; duplicate?: boolean } | undefined;
      const what = body?.queued ? ' queued' : body?.duplicate ? ' duplicate' : '';
      return `${attempt.status ?? attempt.error}${what}`;
    })
    .join(', ');
}

function whoSaid(message: DoubleMessage): string {
  if (message.messageType === 'activity') return 'activity';
  if (message.senderType === 'contact') return 'student';
  if (message.senderType === 'agent_bot') return message.private ? 'bot, private note' : 'bot';
  return 'tutor';
}

const isBotReply = (m: DoubleMessage) =>
  m.senderType === 'agent_bot' && m.messageType === 'outgoing' && !m.private;

/** The conversation as Chatwoot holds it: who said what, typing, status, labels and attributes. */
export function transcriptOf(double: ChatwootDouble, id: number): string[] {
  const conversation = double.conversation(id);
  const on = conversation.typingEvents.filter((t) => t.status === 'on').length;
  return [
    `Transcript of conversation ${id} (from the Chatwoot double):`,
    ...conversation.messages.map((m) => `  ${whoSaid(m).padEnd(18)} ${m.content}`),
    `  typing: turned on ${on} times, off ${conversation.typingEvents.length - on} times; now ${conversation.typing ? 'ON' : 'off'}`,
    `  status: ${conversation.status}; hand-offs: ${double.handoffs.byBot} by the bot, ${double.handoffs.byFailure} by failed deliveries`,
    `  labels: ${conversation.labels.join(', ') || '(none)'}`,
    `  custom attributes: ${JSON.stringify(conversation.customAttributes)}`,
  ];
}

/** What must hold at the end; each failure is one reason. */
function checksOf(double: ChatwootDouble, id: number): { label: string; ok: boolean }[] {
  const conversation = double.conversation(id);
  const messages = conversation.messages;
  const replies = messages.filter(isBotReply).map((m) => m.content);
  const answers = QUESTIONS.map((q) => tutorAnswer(q));
  const handoffAt = messages.findIndex((m) => m.content === ASK_FOR_HUMAN);
  const afterHandoff = handoffAt === -1 ? [] : messages.slice(handoffAt).filter(isBotReply);
  const confirmations = replies.filter((content) => content.startsWith('Payment received'));
  return [
    {
      label: 'each question answered exactly once, in order',
      ok: JSON.stringify(replies.filter((r) => answers.includes(r))) === JSON.stringify(answers),
    },
    { label: 'typing ended off', ok: !conversation.typing && conversation.typingEvents.length > 0 },
    {
      label: 'payment confirmed exactly once, label "paid"',
      ok: confirmations.length === 1 && conversation.labels.includes('paid'),
    },
    {
      label: 'handed off to a human tutor (status open, a private note, by the bot)',
      ok:
        conversation.status === 'open' &&
        double.handoffs.byBot === 1 &&
        double.handoffs.byFailure === 0 &&
        messages.some((m) => m.senderType === 'agent_bot' && m.private),
    },
    { label: 'no bot reply after the hand-off', ok: afterHandoff.length === 0 },
  ];
}

/** How the story reports a step: what happened, how the web app answered, in how many ms. */
type Tell = (what: string, answer: string, ms: number) => void;

const timed = async <T>(run: () => Promise<T>): Promise<[T, number]> => {
  const t0 = performance.now();
  const value = await run();
  return [value, performance.now() - t0];
};

/**
 * The student's story, each step told as its delivery is answered; between steps it waits for the bot where
 * a real student would (the answers before paying, the hand-off before writing again).
 */
async function playStory(stack: TutorStack, id: number, tell: Tell, waitMs: number): Promise<void> {
  const { double } = stack;
  const until = async (what: string, done: () => boolean) => {
    for (const deadline = Date.now() + waitMs; !done(); await sleep(50)) {
      if (Date.now() > deadline) throw new Error(`gave up waiting for ${what} after ${waitMs} ms`);
    }
  };
  const says = async (text: string) => {
    const [said, ms] = await timed(() => double.customerSays(id, text));
    tell(`Student: "${text}"`, answerOf(said.delivery.attempts), ms);
    return said.messageId;
  };

  const first = await says(QUESTIONS[0]);
  await says(QUESTIONS[1]);
  const [again, againMs] = await timed(() => double.redeliver(first));
  tell('Chatwoot delivers the first question again', answerOf(again.attempts), againMs);
  await until('both answers', () => double.conversation(id).messages.filter(isBotReply).length >= 2);

  // The payment link the bot sent carried the conversation in its metadata; Stripe sends it back.
  const paid = stripeEvent('checkout.session.completed', {
    data: {
      object: {
        metadata: { chatwoot_account_id: String(double.accountId), chatwoot_conversation_id: String(id) },
      },
    },
  });
  for (const what of ['Stripe: checkout.session.completed', 'Stripe delivers it again']) {
    const signed = signStripePayload(paid, STRIPE_SECRET); // each Stripe retry is signed anew
    const [response, ms] = await timed(() =>
      fetch(`${stack.webUrl}/stripe`, { method: 'POST', body: signed.body, headers: signed.headers }),
    );
    const body = (await response.json().catch(() => undefined)) as unknown;
    tell(what, answerOf([{ status: response.status, body }]), ms);
  }
  await until('the payment confirmation', () =>
    double.conversation(id).messages.some((m) => m.content.startsWith('Payment received')),
  );

  await says(ASK_FOR_HUMAN);
  await until('the hand-off', () => double.conversation(id).status === 'open');
  await says(AFTER_HANDOFF);
  await stack.quiet(waitMs);
}

export async function runTutorDemo(
  print: (line: string) => void = console.log,
  llmDelayMs = Number(process.env.LLM_DELAY_MS ?? 1500),
): Promise<TutorDemoResult> {
  const lines: string[] = [];
  const say = (line: string) => {
    lines.push(line);
    print(line);
  };
  // hookguard's own warnings (this machine's Redis has no appendonly, say) are shown for a failed run only.
  const logged: string[] = [];
  const keep = (level: string) => (obj: Record<string, unknown>, msg?: string) =>
    void logged.push(`hookguard ${level}: ${msg ?? ''} ${JSON.stringify(obj)}`);
  const logger: Logger = { info: () => undefined, warn: keep('warn'), error: keep('error') };

  const redis = await redisServer();
  const queueName = `tutor-bot-demo-${randomUUID()}`;
  const stack = await startTutorStack({ redisPort: redis.port, queueName, llmDelayMs, logger }).catch(
    (err: unknown) => {
      redis.stop();
      throw err;
    },
  );
  const { double } = stack;
  const failures: string[] = [];
  const answerMs: number[] = [];
  let step = 0;
  const tell: Tell = (what, answer, ms) => {
    answerMs.push(ms);
    say(`${String(++step).padStart(2)}. ${what.padEnd(52)} → ${answer} in ${Math.round(ms)} ms`);
  };
  try {
    const where = `${redis.port}${redis.private ? ' (a private redis-server)' : ''}`;
    say(`tutor-bot demo: Redis 127.0.0.1:${where}, queue "${queueName}", the LLM takes ${llmDelayMs} ms`);
    say('');
    const [started, startMs] = await timed(() => double.startConversation({ contact: { name: 'Maya' } }));
    tell('The student opens a conversation', answerOf(started.delivery?.attempts ?? []), startMs);
    try {
      await playStory(stack, started.id, tell, 5 * llmDelayMs + 10_000);
    } catch (err) {
      failures.push(err instanceof Error ? err.message : String(err));
    }
    say('');
    for (const line of transcriptOf(double, started.id)) say(line);
    say('');
    for (const check of checksOf(double, started.id)) {
      say(`${check.ok ? 'ok    ' : 'FAILED'} ${check.label}`);
      if (!check.ok) failures.push(check.label);
    }
    say('');
    say(
      `Every delivery was answered within ${Math.round(Math.max(...answerMs))} ms; the worker took the ` +
        `LLM's ${llmDelayMs} ms per answer behind it (Chatwoot waits 5 s, and does not retry a timeout).`,
    );
  } finally {
    await stack.stop();
    redis.stop();
  }
  if (failures.length > 0) {
    say('');
    say(`FAILED: the tutor bot misbehaved: ${failures.join('; ')}.`);
    for (const line of logged) say(line);
  }
  return { lines, failures };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  try {
    const result = await runTutorDemo();
    process.exitCode = result.failures.length === 0 ? 0 : 1;
  } catch (err) {
    console.error(`demo:tutor could not run: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  }
  // Everything is closed; should a handle linger anyway, do not hang.
  setTimeout(() => process.exit(), 2000).unref();
}
