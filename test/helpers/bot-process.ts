// The bot of the Chatwoot bot kit figure (test/chatwoot/bot-figure.test.ts), and one worker process of it.
// The test process runs the web side (imports `figureBot`); each worker process runs this file:
// a BullMQ inbox worker (concurrency 8) whose handlers answer through the Chatwoot double, with the bot's
// ledger on the shared Redis. Env: RUN, QUEUE, CW_URL, and for the workers the test kills:
//   KILL=after-post:<n>  SIGKILL right after Chatwoot answered this process's n-th public reply, before the
//                        bot recorded it: the reply is in Chatwoot, the ledger still says "posting".
//   KILL=mid-run         SIGKILL once the test sets hg-bot:<RUN>:kill-mid-run, while handlers are running
//                        (only first runs: a job BullMQ already recovered once would be failed as stalled
//                        twice, BullMQ's maxStalledCount 1).
import { Redis } from 'ioredis';
import type { ChatwootBotHandlers } from '../../src/chatwoot/index.js';
import { chatwootBot } from '../../src/chatwoot/index.js';
import type { ChatwootWebhookOptions } from '../../src/index.js';
import type { Inbox } from '../../src/inbox/inbox.js';
import { createBullMQInbox } from '../../src/inbox/bullmq.js';
import { createRedisDedupStore } from '../../src/stores/redis.js';
import type { DedupStore } from '../../src/dedup/dedup-store.js';

export const FIGURE_SECRET = 'figure-bot-secret';
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The figure's inbox: ordered (one conversation at a time), quick to notice a dead worker. */
export function figureInbox(queueName: string) {
  return createBullMQInbox({
    connection: { host: '127.0.0.1', port: 6379 },
    queueName,
    ordered: true,
    attempts: 6,
    backoffMs: 100,
    logger: false,
  });
}

/**
 * The bot: "human…" hands the conversation over; any other message gets `answer to #<message id>` after a
 * model that takes 50-250 ms. Typing is on while it works.
 */
export function figureBot(options: {
  cwUrl: string;
  store?: DedupStore;
  inbox: Inbox;
  fetch?: typeof fetch;
  running?: Map<symbol, number>;
}): ChatwootWebhookOptions {
  const bot = chatwootBot({
    url: options.cwUrl,
    token: 'bot-token',
    ...(options.store && { store: options.store }),
    ...(options.fetch && { fetch: options.fetch }),
    typing: true,
    retryDelayMs: 50,
    replyLeaseMs: 8000,
    settleMs: 3000,
  });
  const on: ChatwootBotHandlers = {
    message_created: async (event, ctx) => {
      const run = Symbol('run');
      options.running?.set(run, ctx.attempt ?? 1);
      try {
        if ((event.content ?? '').startsWith('human')) return await ctx.chatwoot.handoff('asked for a human');
        await sleep(50 + Math.random() * 200);
        await ctx.chatwoot.reply(`answer to #${event.id}`);
      } finally {
        options.running?.delete(run);
      }
    },
    conversation_created: async (_event, ctx) => {
      await ctx.chatwoot.setLabels(['figure']);
    },
  };
  return bot.options({ secret: FIGURE_SECRET, inbox: options.inbox, logger: false, on });
}

/** A fetch that SIGKILLs this process right after Chatwoot answered its n-th public reply. */
function killAfterPost(n: number): typeof fetch {
  let posts = 0;
  return async (input, init) => {
    const res = await fetch(input, init);
    const isReply = String(input).endsWith('/messages') && init?.method === 'POST' && res.ok;
    if (isReply && !String(init?.body).includes('"private":true') && ++posts === n) {
      process.kill(process.pid, 'SIGKILL');
      await new Promise<never>(() => undefined);
    }
    return res;
  };
}

async function main() {
  const run = process.env.RUN ?? 'run';
  const kill = process.env.KILL ?? '';
  const redis = new Redis({ host: '127.0.0.1', port: 6379, maxRetriesPerRequest: 1 });
  const inbox = figureInbox(process.env.QUEUE ?? 'hg-bot-figure');
  const running = new Map<symbol, number>();
  const after = /^after-post:(\d+)$/.exec(kill);
  const chatwoot = figureBot({
    cwUrl: process.env.CW_URL!,
    store: createRedisDedupStore({ client: redis, prefix: `hg-bot:${run}:ledger:` }),
    inbox,
    running,
    ...(after && { fetch: killAfterPost(Number(after[1])) }),
  });
  const worker = inbox.worker({
    chatwoot,
    concurrency: 8,
    lockDurationMs: 2000,
    leaseMs: 5000,
    logger: false,
  });
  if (kill === 'mid-run') {
    void (async () => {
      for (;;) {
        await sleep(20);
        const asked = (await redis.exists(`hg-bot:${run}:kill-mid-run`)) === 1;
        const firstRuns = [...running.values()];
        if (asked && firstRuns.length > 0 && firstRuns.every((attempt) => attempt === 1)) {
          process.kill(process.pid, 'SIGKILL');
        }
      }
    })();
  }
  process.once('SIGTERM', () => {
    void worker.close(2000).then(async () => {
      await inbox.close();
      redis.disconnect();
      process.exit(0);
    });
  });
  console.log('READY 0');
}

if (process.env.BOT_PROCESS === '1') void main();
