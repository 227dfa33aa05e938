// The bot kit's figure: 100 conversations against the Chatwoot double, through the web side and the
// ordered BullMQ inbox into worker processes, two of them SIGKILLed (one right after Chatwoot stored a
// reply and before the bot recorded it; one in the middle of its runs). Every message answered once,
// typing never left on, nothing posted after a hand-off, no hand-off caused by the bot.
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { type ChatwootDouble, createChatwootDouble } from '../../src/testing/index.js';
import { FIGURE_SECRET, figureBot, figureInbox } from '../helpers/bot-process.js';
import { startBotServer } from '../helpers/bot-server.js';
import { startWorkers, stopWorkers, type Worker } from '../helpers/cluster.js';
import { newIoRedis, redisUp, requireService } from '../helpers/services.js';

const SCRIPT = fileURLToPath(new URL('../helpers/bot-process.ts', import.meta.url));
const CONVERSATIONS = 100;
const redisAvailable = await redisUp();
const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** One conversation: bursts of messages, a duplicate delivery, and for every fourth a hand-off. */
async function converse(cw: ChatwootDouble, index: number) {
  const { id } = await cw.startConversation();
  const expected: number[] = [];
  const silent: number[] = [];
  const say = async (text: string, into: number[]) => into.push((await cw.customerSays(id, text)).messageId);
  await Promise.all([say('one', expected), say('two', expected), say('three', expected)]);
  await cw.redeliver(expected[0]!);
  await sleep(Math.random() * 600);
  await Promise.all([say('four', expected), say('five', expected)]);
  if (index % 4 === 0) {
    await say('human please', silent);
    await say('still there?', silent); // queued with "pending" in its payload, behind the hand-off
    await sleep(1500);
    await say('hello?', silent);
  }
  return { id, expected, silent };
}

describe.runIf(requireService('Redis', redisAvailable))(
  'Chatwoot bot kit, with worker processes killed',
  () => {
    it(`${CONVERSATIONS} conversations: every message answered once, typing off, nothing after a hand-off`, async () => {
      const run = randomUUID();
      const queue = `hg-bot-figure-${run}`;
      const redis = newIoRedis();
      const server = await startBotServer();
      const cw = await createChatwootDouble({
        webhookUrl: server.url,
        secret: FIGURE_SECRET,
        retryDelayMs: 200,
      });
      const inbox = figureInbox(queue);
      server.mount(figureBot({ cwUrl: cw.url, inbox }));
      const workers: Worker[] = [];
      cleanups.push(async () => {
        await stopWorkers(workers);
        await cw.close();
        await server.close();
        await inbox.close();
        const keys = [...(await redis.keys(`hg-bot:${run}:*`)), ...(await redis.keys(`*${queue}*`))];
        if (keys.length > 0) await redis.del(...keys);
        redis.disconnect();
      });
      const env = { BOT_PROCESS: '1', RUN: run, QUEUE: queue, CW_URL: cw.url };
      const started = await Promise.all([
        startWorkers(1, { ...env, KILL: 'after-post:12' }, SCRIPT),
        startWorkers(1, { ...env, KILL: 'mid-run' }, SCRIPT),
        startWorkers(2, env, SCRIPT),
      ]);
      workers.push(...started.flat());
      const [afterPost, midRun] = [workers[0]!, workers[1]!];
      const t0 = performance.now();
      setTimeout(() => void redis.set(`hg-bot:${run}:kill-mid-run`, '1'), 2500);

      const conversations = await Promise.all(
        Array.from({ length: CONVERSATIONS }, (_, i) => converse(cw, i)),
      );
      const expectedCount = conversations.reduce((n, c) => n + c.expected.length, 0);
      const answersTo = () => {
        const counts = new Map<string, number>();
        for (const conversation of cw.conversations()) {
          for (const m of conversation.messages) {
            if (m.senderType === 'agent_bot' && !m.private && m.messageType === 'outgoing') {
              counts.set(m.content, (counts.get(m.content) ?? 0) + 1);
            }
          }
        }
        return counts;
      };
      const deadline = performance.now() + 120_000;
      while (conversations.some((c) => c.expected.some((m) => !answersTo().has(`answer to #${m}`)))) {
        if (performance.now() > deadline) break;
        await sleep(250);
      }
      const answeredMs = performance.now() - t0;
      await sleep(2000); // a second reply of anything would show by now
      await cw.settled();

      const counts = answersTo();
      const unanswered = conversations.flatMap((c) =>
        c.expected.filter((m) => !counts.has(`answer to #${m}`)),
      );
      const doubled = [...counts.values()].filter((n) => n > 1).length;
      const answeredSilent = conversations.flatMap((c) =>
        c.silent.filter((m) => counts.has(`answer to #${m}`)),
      );
      const all = cw.conversations();
      const typingOn = all.filter((c) => c.typing).length;
      const afterHandoff = all.flatMap((c) =>
        c.messages.filter((m) => m.senderType === 'agent_bot' && !m.private && m.statusAtPost === 'open'),
      );
      console.log(
        `bot figure: ${CONVERSATIONS} conversations, ${expectedCount} messages to answer (+${CONVERSATIONS} duplicate deliveries, ` +
          `${conversations.filter((c) => c.silent.length > 0).length} hand-offs): ${expectedCount - unanswered.length} answered in ` +
          `${Math.round(answeredMs)} ms, ${doubled} answered twice, ${typingOn} typing left on, ` +
          `${afterHandoff.length} bot replies after a hand-off, ${answeredSilent.length} messages after a hand-off answered, ` +
          `hand-offs by failure ${cw.handoffs.byFailure} (by the bot ${cw.handoffs.byBot}); workers killed: ` +
          `after a post ${String(afterPost.child.signalCode)}, mid-run ${String(midRun.child.signalCode)}`,
      );
      expect(afterPost.child.signalCode).toBe('SIGKILL');
      expect(midRun.child.signalCode).toBe('SIGKILL');
      expect(unanswered).toEqual([]);
      expect(doubled).toBe(0);
      expect(typingOn).toBe(0);
      expect(afterHandoff).toEqual([]);
      expect(answeredSilent).toEqual([]);
      expect(cw.handoffs).toMatchObject({ byFailure: 0, byBot: CONVERSATIONS / 4 });
    }, 180_000);
  },
);
