// One process of the ordering test across processes (test/inbox/ordering-processes.test.ts), on the BullMQ
// inbox (ENGINE=bullmq, the shared Redis) or the pg-boss one (ENGINE=pg-boss, the shared PostgreSQL, in a
// schema of the run's own).
// ROLE=web: Express + hookguard's chatwootWebhook with the inbox, printing READY <port>.
// ROLE=worker: an inbox worker (concurrency 8) whose handler writes every run to Redis, under
// hg-ord:<RUN>: (one Lua script at its start and one at its end, each stamped with Redis TIME), whichever
// engine runs the inbox:
//   runs    list of "start|<run id>|<conversation>/<seq>|<µs>", "end|…" and "kill|…" records, in the
//           order Redis executed them
//   active  hash conversation -> runs of it going on now; a start that makes it > 1 is an overlap
//   overlaps list of "<conversation>/<seq>" of such starts
//   done    hash "<conversation>/<seq>" -> completed runs
//   stats   hash pid -> the worker's counts (JSON), written every 250 ms and at SIGTERM
// A worker starts taking jobs once the test sets hg-ord:<RUN>:go.
// With CRASH_AFTER=n, the worker SIGKILLs itself in the middle of its run n + 1 (once per RUN). Before it
// dies it lets the runs that already wrote their end get their completion recorded in the dedup store, and
// holds every other run where it is: so each run of the dying process either completed for good or is
// marked killed ("kill" record, its active count taken back), and a run killed after its handler's work
// but before its completion stuck (which the inbox then runs again: at least once) cannot blur the count.
// Env: ENGINE (bullmq / pg-boss), QUEUE, SCHEMA (pg-boss), RUN, SECRET, ORDERED (1 / 0), CRASH_AFTER.
import express from 'express';
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { chatwootWebhook } from '../../src/adapters/express.js';
import type { ChatwootEvent, WebhookContext } from '../../src/index.js';
import type { InboxWorker, InboxWorkerOptions } from '../../src/inbox/inbox.js';
import { createBullMQInbox } from '../../src/inbox/bullmq.js';
import { createPgBossInbox } from '../../src/inbox/pg-boss.js';
import { createPostgresDedupStore } from '../../src/stores/postgres.js';
import { createRedisDedupStore } from '../../src/stores/redis.js';
import type { DedupStore } from '../../src/dedup/dedup-store.js';
import { DATABASE_URL, newIoRedis } from './services.js';

const run = process.env.RUN ?? 'run';
const queueName = process.env.QUEUE ?? 'hookguard-ordering';
const ordered = process.env.ORDERED !== '0';
const role = process.env.ROLE === 'worker' ? 'worker' : 'web';
const engine = process.env.ENGINE === 'pg-boss' ? pgBossEngine() : bullMQEngine();

/** What every worker of the test gets, whatever the engine. */
type WorkerOptions = InboxWorkerOptions & { concurrency: number; inFlightDelayMs: number };

/** The BullMQ inbox on the shared Redis, and its default worker store (the same keys). */
function bullMQEngine() {
  const inbox = createBullMQInbox({
    connection: { host: '127.0.0.1', port: 6379 },
    queueName,
    ordered,
    backoffMs: 50,
    logger: false,
  });
  return {
    inbox,
    ownStore: async (redis: ReturnType<typeof newIoRedis>): Promise<DedupStore> =>
      createRedisDedupStore({ client: redis, prefix: `hookguard:inbox:${queueName}:` }),
    worker: (options: WorkerOptions): InboxWorker => inbox.worker({ ...options, lockDurationMs: 2000 }),
  };
}

/**
 * The pg-boss inbox on the shared PostgreSQL, in the run's own schema, and its default worker store (the
 * same table and keys). A job whose worker died is handed out again once it expired (5 s, found by a
 * maintenance that runs every second) and its retry delay (1 to 2 s) passed: pg-boss's counterpart of
 * BullMQ's lock above. Small pools: nine processes share the server's connections.
 */
function pgBossEngine() {
  const schema = process.env.SCHEMA ?? 'pgboss';
  const inbox = createPgBossInbox({
    connection: {
      connectionString: DATABASE_URL,
      schema,
      max: role === 'worker' ? 6 : 3,
      maintenanceIntervalSeconds: 1,
    },
    queueName,
    ordered,
    backoffMs: 1000,
    expireInSeconds: 5,
    logger: false,
  });
  return {
    inbox,
    async ownStore(): Promise<DedupStore> {
      await inbox.stats(); // pg-boss started: its schema exists
      const store = createPostgresDedupStore({
        pool: { query: (text, values = []) => inbox.boss.getDb().executeSql(text, values) },
        table: `${schema}.hookguard_dedup`,
      });
      await store.ensureSchema();
      const own = (key: string) => `${queueName}:${key}`;
      return {
        claim: (key, leaseMs) => store.claim(own(key), leaseMs),
        release: (key, token) => store.release(own(key), token),
        complete: (key, token, ttlMs) => store.complete(own(key), token, ttlMs),
      };
    },
    worker: (options: WorkerOptions): InboxWorker =>
      inbox.worker({ ...options, pollingIntervalSeconds: 0.5 }),
  };
}
const ns = `hg-ord:${run}:`;
const KEYS = ['active', 'overlaps', 'runs', 'done'].map((name) => ns + name);

// KEYS active, overlaps, runs, done; ARGV conversation, "<conversation>/<seq>", run id.
const BEGIN = `local t = redis.call('TIME')
local now = string.format('%.0f', tonumber(t[1]) * 1000000 + tonumber(t[2]))
local n = redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
if n > 1 then redis.call('RPUSH', KEYS[2], ARGV[2]) end
redis.call('RPUSH', KEYS[3], 'start|' .. ARGV[3] .. '|' .. ARGV[2] .. '|' .. now)
return n`;
const END = `local t = redis.call('TIME')
local now = string.format('%.0f', tonumber(t[1]) * 1000000 + tonumber(t[2]))
redis.call('HINCRBY', KEYS[1], ARGV[1], -1)
redis.call('RPUSH', KEYS[3], 'end|' .. ARGV[3] .. '|' .. ARGV[2] .. '|' .. now)
redis.call('HINCRBY', KEYS[4], ARGV[2], 1)
return 1`;
// ARGV: pairs of run id, "<conversation>/<seq>": runs the SIGKILL is about to cut off.
const KILL = `local t = redis.call('TIME')
local now = string.format('%.0f', tonumber(t[1]) * 1000000 + tonumber(t[2]))
for i = 1, #ARGV, 2 do
  local conversation = string.match(ARGV[i + 1], '^([^/]+)/')
  redis.call('HINCRBY', KEYS[1], conversation, -1)
  redis.call('RPUSH', KEYS[3], 'kill|' .. ARGV[i] .. '|' .. ARGV[i + 1] .. '|' .. now)
end
return 1`;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const forever = () => new Promise<never>(() => undefined);

if (role === 'worker') {
  // One connection for every record, so Redis executes them in the order this process sent them.
  const redis = newIoRedis();
  const crashAfter = process.env.CRASH_AFTER === undefined ? undefined : Number(process.env.CRASH_AFTER);
  /** Runs that wrote their start and not their end: run id -> "<conversation>/<seq>". */
  const running = new Map<string, string>();
  /** Dedup keys of runs that are writing their end or whose completion is not recorded yet. */
  const finishing = new Set<string>();
  let dying = false;
  let completed = 0;

  // The inbox's own default store (same keys), with each completion reported back.
  const own = await engine.ownStore(redis);
  const store: DedupStore = {
    claim: (key, leaseMs) => own.claim(key, leaseMs),
    release: (key, token) => own.release(key, token),
    async complete(key, token, ttlMs) {
      await own.complete(key, token, ttlMs);
      finishing.delete(key);
    },
  };

  async function die(): Promise<never> {
    dying = true;
    const end = Date.now() + 3000;
    while (finishing.size > 0 && Date.now() < end) await sleep(1);
    if (finishing.size > 0)
      console.error(`ordering-process: ${finishing.size} completions still pending at the kill`);
    await redis.eval(KILL, 4, ...KEYS, ...[...running].flat());
    process.kill(process.pid, 'SIGKILL');
    return forever();
  }

  const onEvent = async (event: ChatwootEvent, ctx: WebhookContext) => {
    if (dying) return forever();
    const conversation = String((event as { conversation?: { id?: number } }).conversation?.id);
    const label = `${conversation}/${String((event as { content?: string }).content)}`;
    const id = randomUUID();
    running.set(id, label);
    await redis.eval(BEGIN, 4, ...KEYS, conversation, label, id);
    await sleep(5 + Math.random() * 25);
    if (crashAfter !== undefined && completed >= crashAfter && !dying) {
      if ((await redis.set(`${ns}crash`, id, 'NX')) === 'OK') return die();
    }
    if (dying) return forever();
    finishing.add(ctx.key!);
    await redis.eval(END, 4, ...KEYS, conversation, label, id);
    running.delete(id);
    completed++;
  };

  console.log('READY 0');
  // The test lets the workers go once part of the messages are queued: a backlog per conversation to race
  // for, then live traffic.
  while ((await redis.exists(`${ns}go`)) === 0) await sleep(20);
  const worker = engine.worker({
    chatwoot: { logger: false, onEvent },
    concurrency: 8,
    store,
    leaseMs: 3000,
    inFlightDelayMs: 1000,
    logger: false,
  });
  const report = () => redis.hset(`${ns}stats`, String(process.pid), JSON.stringify(worker.stats()));
  setInterval(() => void report().catch(() => undefined), 250).unref();
  process.once('SIGTERM', () => {
    void report()
      .catch(() => undefined)
      .finally(() => process.exit(0));
  });
} else {
  const app = express();
  app.post(
    '/cw',
    chatwootWebhook({
      secret: process.env.SECRET ?? '',
      inbox: engine.inbox,
      logger: false,
      onEvent: () => {},
    }),
  );
  const server = app.listen(0, '127.0.0.1', () => {
    console.log(`READY ${(server.address() as AddressInfo).port}`);
  });
  process.once('SIGTERM', () => process.exit(0));
}
