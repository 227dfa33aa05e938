// Ordering (`ordered: true`) through an engine restart, the last guarantee of issue 23: a private Redis
// (AOF, every write fsynced) is SIGKILLed, or a private PostgreSQL cluster crashed (`pg_ctl stop -m
// immediate`), while conversations are being delivered and worked, and started again 3 s later. Deliveries
// come from the Chatwoot-faithful sender (agent bot: 3 attempts 3 s apart on 429 and 500 only), so an answer
// other than 500 during the outage would be a hand-off. Each conversation's next message is sent once the
// previous one was accepted, so the order the web side accepted them is the order they must run in.
import { afterEach, describe, expect, it } from 'vitest';
import pg from 'pg';
import { Redis } from 'ioredis';
import { createChatwootHandler, type ChatwootEvent } from '../../src/index.js';
import { createBullMQInbox } from '../../src/inbox/bullmq.js';
import type { Inbox, InboxWorker, InboxWorkerOptions } from '../../src/inbox/inbox.js';
import { createPgBossInbox } from '../../src/inbox/pg-boss.js';
import { chatwootEvent, createChatwootSender } from '../../src/testing/index.js';
import { sleep } from '../helpers/http.js';
import { startPrivatePostgres, startPrivateRedis, uncaughtDuring } from '../helpers/private-engines.js';
import { serveCore } from '../helpers/servers.js';

const SECRET = 'cw-ordering-faults';
const CONVERSATIONS = 30;
const MESSAGES = 12;
const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A private engine with an ordered inbox on it, its outage, and what is left in its lanes afterwards. */
interface Engine {
  inbox: Inbox;
  worker(options: InboxWorkerOptions & { concurrency: number }): InboxWorker;
  outage(ms: number): Promise<void>;
  /** Lane entries still held once everything ran (none when every event left its lane). */
  laneEntries(): Promise<number>;
}

async function bullMQEngine(): Promise<Engine> {
  const redis = await startPrivateRedis();
  cleanups.push(() => redis.stop());
  const connection = { host: '127.0.0.1', port: redis.port };
  const inbox = createBullMQInbox({
    connection,
    queueName: 'hg-ordf',
    ordered: true,
    backoffMs: 50,
    enqueueTimeoutMs: 300,
    logger: false,
  });
  cleanups.push(() => inbox.close(2000));
  return {
    inbox,
    worker: (options) => inbox.worker({ ...options, lockDurationMs: 2000 }),
    async outage(ms) {
      redis.kill();
      await sleep(ms);
      await redis.restart();
    },
    async laneEntries() {
      const client = new Redis({ port: redis.port });
      try {
        const lanes = await client.keys('hookguard:inbox:hg-ordf:lane:*');
        let n = 0;
        for (const lane of lanes) n += await client.zcard(lane);
        return n;
      } finally {
        client.disconnect();
      }
    },
  };
}

async function pgBossEngine(): Promise<Engine> {
  const cluster = await startPrivatePostgres();
  cleanups.push(() => cluster.stop());
  const inbox = createPgBossInbox({
    connection: { connectionString: cluster.url, maintenanceIntervalSeconds: 1 },
    queueName: 'hg_ordf',
    ordered: true,
    backoffMs: 1000,
    // A job whose fetch or completion was cut off by the crash comes back after 5 s, not pg-boss's 15 min.
    expireInSeconds: 5,
    enqueueTimeoutMs: 1000,
    logger: false,
  });
  cleanups.push(() => inbox.close(2000));
  await inbox.failed(); // pg-boss's schema and the queue exist before the traffic
  return {
    inbox,
    worker: (options) => inbox.worker({ ...options, pollingIntervalSeconds: 0.5 }),
    async outage(ms) {
      await cluster.crash();
      await sleep(ms);
      await cluster.start();
    },
    async laneEntries() {
      const db = new pg.Client({ connectionString: cluster.url });
      await db.connect();
      try {
        const { rows } = await db.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM pgboss.hookguard_lane WHERE queue = 'hg_ordf'`,
        );
        return rows[0]!.n;
      } finally {
        await db.end();
      }
    },
  };
}

const ENGINES = [
  { name: 'BullMQ', what: 'Redis SIGKILLed', make: bullMQEngine },
  { name: 'pg-boss', what: 'PostgreSQL crashed', make: pgBossEngine },
];

describe.each(ENGINES)('ordered $name inbox through an engine restart', (spec) => {
  it(`${CONVERSATIONS} conversations x ${MESSAGES} messages, ${spec.what} mid-stream and back 3 s later: no hand-off, each message once, in order, one at a time`, async () => {
    const uncaught = uncaughtDuring(cleanups);
    const engine = await spec.make();

    // What the handlers saw: runs per message, the order per conversation, overlapping runs.
    const runs = new Map<string, number>();
    const order = new Map<number, number[]>();
    const active = new Map<number, number>();
    let overlaps = 0;
    const onEvent = async (event: ChatwootEvent) => {
      const { conversation, content } = event as { conversation: { id: number }; content: string };
      const now = (active.get(conversation.id) ?? 0) + 1;
      active.set(conversation.id, now);
      if (now > 1) overlaps++;
      await sleep(20 + Math.random() * 30);
      order.set(conversation.id, [...(order.get(conversation.id) ?? []), Number(content)]);
      runs.set(`${conversation.id}/${content}`, (runs.get(`${conversation.id}/${content}`) ?? 0) + 1);
      active.set(conversation.id, active.get(conversation.id)! - 1);
    };
    const chatwoot = { secret: SECRET, inbox: engine.inbox, logger: false as const, onEvent };
    const running = await serveCore(createChatwootHandler(chatwoot));
    cleanups.push(() => running.close());
    for (let i = 0; i < 2; i++) {
      const worker = engine.worker({ chatwoot, concurrency: 8, logger: false });
      cleanups.push(() => worker.close(2000));
    }

    // Each conversation sends a message every 150 ms, the next only once the previous was accepted.
    const sender = createChatwootSender({ url: running.url('/'), secret: SECRET });
    const base = 500_000 + Math.floor(Math.random() * 100_000);
    const conversations = Array.from({ length: CONVERSATIONS }, async (_, c) => {
      await sleep(Math.random() * 150);
      const results = [];
      for (let m = 0; m < MESSAGES; m++) {
        const sent = Date.now();
        const event = chatwootEvent('message_created', {
          content: String(m),
          conversation: { id: base + c, inbox_id: 3 },
        });
        results.push(await sender.deliver(event));
        await sleep(Math.max(0, 150 - (Date.now() - sent)));
      }
      return results;
    });
    await sleep(700);
    const outageAt = Date.now();
    const runningAtOutage = [...active.values()].reduce((sum, n) => sum + n, 0);
    await engine.outage(3000);
    const backAt = Date.now();
    const results = (await Promise.all(conversations)).flat();
    const total = CONVERSATIONS * MESSAGES;
    const deadline = Date.now() + 60_000;
    while (runs.size < total && Date.now() < deadline) await sleep(100);
    const doneMs = Date.now() - backAt;
    await sleep(2500); // past BullMQ's lock and pg-boss's poll: anything that would run twice does so now

    const attempts = results.flatMap((r) => r.attempts);
    const refused = attempts.filter((a) => a.status !== 200);
    const statuses = [...new Set(refused.map((a) => a.status ?? a.error))];
    const handOffs = results.filter((r) => !r.delivered).length;
    const doubles = [...runs.values()].filter((n) => n > 1).length;
    const expected = JSON.stringify([...Array(MESSAGES).keys()]);
    const outOfOrder = [...order.values()].filter((seqs) => JSON.stringify(seqs) !== expected).length;
    const lanes = await engine.laneEntries();
    console.log(
      `ordered ${spec.name}, ${spec.what} for 3 s after 0.7 s of ${total} messages (${runningAtOutage} handlers running as it went down): ${refused.length} attempts answered ` +
        `${JSON.stringify(statuses)} during the outage (engine down ${backAt - outageAt} ms), ${handOffs} hand-offs; ` +
        `handled ${runs.size}/${total} (all ${doneMs} ms after the engine was back), ${doubles} run twice, ` +
        `${outOfOrder} conversations out of order, ${overlaps} overlapping runs, ${lanes} lane entries left`,
    );
    expect(refused.length).toBeGreaterThan(0); // the outage was seen by the sender
    expect(statuses).toEqual([500]); // and answered as Chatwoot retries it
    expect(handOffs).toBe(0);
    expect(runs.size).toBe(total);
    expect(doubles).toBe(0);
    expect(outOfOrder).toBe(0);
    expect(overlaps).toBe(0);
    expect(lanes).toBe(0);
    expect(uncaught).toEqual([]);
  }, 120_000);
});
