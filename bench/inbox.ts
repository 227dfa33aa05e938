// The durable inbox on this machine's real Redis and PostgreSQL: answer latency of the web side at a fixed
// rate over loopback HTTP, and worker throughput with a no-op handler, each beside the engine's own
// baseline (a bare `queue.add` / `boss.send`, the engine's own worker). `npm run bench:inbox` writes
// bench/INBOX.md and bench/inbox-results.json; `--smoke` runs tiny counts and writes nothing.
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { Agent, createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { cpus } from 'node:os';
import { Queue, Worker } from 'bullmq';
import PgBoss from 'pg-boss';
import type { Inbox, InboxWorker } from '../src/inbox/inbox.js';
import { bullmq, core, pgBoss, testing } from './built.js';

const smoke = process.argv.includes('--smoke');
const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const RATE = 500; // requests per second, open loop
const REQUESTS = smoke ? 50 : 5000;
const JOBS = smoke ? 50 : 5000;
const SECRET = 'whsec_bench_inbox';
const connection = { host: '127.0.0.1', port: 6379 };

interface LatencyRow {
  engine: string;
  name: string;
  requests: number;
  p50Ms: number;
  p99Ms: number;
}
interface ThroughputRow {
  engine: string;
  name: string;
  jobs: number;
  perSecond: number;
}

const percentile = (sorted: number[], p: number) =>
  Math.round(sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]! * 100) / 100;

/** Starts `total` calls at `RATE` per second (not waiting for the previous one) and times each. */
async function openLoop(total: number, call: (i: number) => Promise<unknown>): Promise<number[]> {
  const times: number[] = [];
  const started = performance.now();
  const running: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const due = started + (i * 1000) / RATE;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    const t0 = performance.now();
    running.push(call(i).then(() => void times.push(performance.now() - t0)));
  }
  await Promise.all(running);
  return times.sort((a, b) => a - b);
}

/** The web side over loopback HTTP: a Node server in front of createStripeHandler with the inbox. */
async function webLatency(engine: string, inbox: Inbox): Promise<LatencyRow> {
  const handle = core.createStripeHandler({ secret: SECRET, inbox, logger: false, onEvent() {} });
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void handle({ method: 'POST', headers: req.headers, body: Buffer.concat(chunks) }).then((answer) => {
        if (answer.status !== 200) throw new Error(`answered ${answer.status}`);
        res.writeHead(answer.status, answer.headers).end(answer.body);
      });
    });
  }).listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const { port } = server.address() as AddressInfo;
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const signed = Array.from({ length: REQUESTS }, () =>
    testing.signStripePayload(testing.stripeEvent('invoice.paid'), SECRET),
  );
  // Warm-up (connections, pg-boss's start, JIT), not timed.
  for (let i = 0; i < 50; i++) {
    await post(port, agent, testing.signStripePayload(testing.stripeEvent('invoice.paid'), SECRET));
  }
  const times = await openLoop(REQUESTS, (i) => post(port, agent, signed[i]!));
  agent.destroy();
  server.close();
  return {
    engine,
    name: 'hookguard: verify + enqueue + answer (HTTP)',
    requests: REQUESTS,
    p50Ms: percentile(times, 50),
    p99Ms: percentile(times, 99),
  };
}

function post(port: number, agent: Agent, signed: { body: string; headers: Record<string, string> }) {
  return new Promise<void>((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, method: 'POST', agent, headers: signed.headers },
      (res) => {
        res.resume();
        res.on('end', () => resolve());
      },
    );
    req.on('error', reject);
    req.end(signed.body);
  });
}

async function untilDone(count: () => number, total: number): Promise<number> {
  const t0 = performance.now();
  while (count() < total) await new Promise((resolve) => setTimeout(resolve, 5));
  return (performance.now() - t0) / 1000;
}

async function bullmqRows(): Promise<{ latency: LatencyRow[]; throughput: ThroughputRow[] }> {
  const name = `hg-bench-${randomUUID()}`;
  const raw = new Queue(name, { connection });
  const rawTimes = await openLoop(REQUESTS, (i) => raw.add('bare', { i }, { jobId: `bare-${i}` }));
  await raw.obliterate({ force: true });
  // The engine's own worker, no-op, over JOBS bare jobs.
  await raw.addBulk(Array.from({ length: JOBS }, (_, i) => ({ name: 'bare', data: { i } })));
  let bareDone = 0;
  const bareWorker = new Worker(name, async () => void bareDone++, { connection, concurrency: 16 });
  const bareSeconds = await untilDone(() => bareDone, JOBS);
  await bareWorker.close();
  await raw.obliterate({ force: true });
  await raw.close();

  const inbox = bullmq.createBullMQInbox({ connection, queueName: `${name}-hg` });
  const latency = await webLatency('BullMQ', inbox);
  const worker: InboxWorker = inbox.worker({
    stripe: { secret: SECRET, onEvent() {} },
    concurrency: 16,
    logger: false,
  });
  const seconds = await untilDone(() => worker.stats().processed, REQUESTS + 50);
  await worker.close();
  await inbox.queue.obliterate({ force: true });
  await inbox.close();
  return {
    latency: [
      {
        engine: 'BullMQ',
        name: 'bare queue.add (no HTTP)',
        requests: REQUESTS,
        p50Ms: percentile(rawTimes, 50),
        p99Ms: percentile(rawTimes, 99),
      },
      latency,
    ],
    throughput: [
      {
        engine: 'BullMQ',
        name: 'bare Worker, no-op, concurrency 16',
        jobs: JOBS,
        perSecond: Math.round(JOBS / bareSeconds),
      },
      {
        engine: 'BullMQ',
        name: 'hookguard worker, no-op, concurrency 16 (claim, stale mark and completion on Redis)',
        jobs: REQUESTS,
        perSecond: Math.round(REQUESTS / seconds),
      },
    ],
  };
}

async function pgBossRows(): Promise<{ latency: LatencyRow[]; throughput: ThroughputRow[] }> {
  const name = `hg_bench_${randomUUID().replaceAll('-', '')}`;
  const boss = new PgBoss(DATABASE_URL);
  boss.on('error', () => undefined);
  await boss.start();
  await boss.createQueue(name);
  const rawTimes = await openLoop(REQUESTS, (i) => boss.send(name, { i }));
  let bareDone = 0;
  const ids: string[] = [];
  const bareStart = performance.now();
  for (let i = 0; i < 8; i++) {
    ids.push(
      // pg-boss's work() waits its polling interval after every fetch, found or not: a batch per fetch is
      // its own way to throughput (one job per fetch made this row 16/s and the bench 5 minutes longer).
      await boss.work(
        name,
        { batchSize: 20, pollingIntervalSeconds: 0.5 },
        async (jobs) => void (bareDone += jobs.length),
      ),
    );
  }
  await untilDone(() => bareDone, REQUESTS);
  const bareSeconds = (performance.now() - bareStart) / 1000;
  for (const id of ids) await boss.offWork({ id });
  await boss.deleteQueue(name).catch(() => undefined); // pg-boss keeps finished jobs referenced for a while
  await boss.stop({ graceful: false, wait: true });

  const inbox = pgBoss.createPgBossInbox({ connection: DATABASE_URL, queueName: `${name}_hg` });
  const latency = await webLatency('pg-boss', inbox);
  const t0 = performance.now();
  const worker = inbox.worker({
    stripe: { secret: SECRET, onEvent() {} },
    concurrency: 8,
    pollingIntervalSeconds: 0.5,
    logger: false,
  });
  await untilDone(() => worker.stats().processed, REQUESTS + 50);
  const seconds = (performance.now() - t0) / 1000;
  await worker.close();
  await inbox.boss.deleteQueue(`${name}_hg`).catch(() => undefined);
  await inbox.close();
  return {
    latency: [
      {
        engine: 'pg-boss',
        name: 'bare boss.send (no HTTP)',
        requests: REQUESTS,
        p50Ms: percentile(rawTimes, 50),
        p99Ms: percentile(rawTimes, 99),
      },
      latency,
    ],
    throughput: [
      {
        engine: 'pg-boss',
        name: 'bare boss.work, no-op, 8 pollers, batches of 20',
        jobs: REQUESTS,
        perSecond: Math.round(REQUESTS / bareSeconds),
      },
      {
        engine: 'pg-boss',
        name: 'hookguard worker, no-op, concurrency 8 (claim, stale mark and completion on PostgreSQL)',
        jobs: REQUESTS,
        perSecond: Math.round(REQUESTS / seconds),
      },
    ],
  };
}

const ORDERED_JOBS = smoke ? 100 : 4000;
const ORDER_KEYS = smoke ? 20 : 1000;

/**
 * Worker throughput with `ordered: true` beside the same jobs unordered, same engine, same run: ORDERED_JOBS
 * Stripe events over ORDER_KEYS objects (4 events each), all queued before the worker starts, no-op
 * handler. Ordering gives each key's events one at a time, so a key's later events wait for its earlier.
 */
async function orderedRows(
  engine: 'BullMQ' | 'pg-boss',
  make: (
    ordered: boolean,
    queue: string,
  ) => Inbox & {
    worker(o: object): InboxWorker;
    close(): Promise<void>;
  },
  workerOptions: object,
  drop: (queue: string) => Promise<unknown>,
): Promise<ThroughputRow[]> {
  const rows: ThroughputRow[] = [];
  for (const ordered of [false, true]) {
    const queue = `hg_bench_order_${randomUUID().replaceAll('-', '')}`;
    const inbox = make(ordered, queue);
    for (let i = 0; i < ORDERED_JOBS; i += 50) {
      await Promise.all(
        Array.from({ length: Math.min(50, ORDERED_JOBS - i) }, (_, j) => {
          const n = i + j;
          const event = testing.stripeEvent('customer.subscription.updated', {
            id: `evt_order_${n}`,
            data: { object: { id: `sub_${n % ORDER_KEYS}` } },
          });
          return inbox.enqueue({
            provider: 'stripe',
            event,
            key: `stripe:${event.id}`,
            deliveryId: undefined,
            name: event.type,
            orderKey: `stripe:sub_${n % ORDER_KEYS}`,
          });
        }),
      );
    }
    const t0 = performance.now();
    const worker = inbox.worker({
      stripe: { secret: SECRET, onEvent() {} },
      logger: false,
      ...workerOptions,
    });
    await untilDone(() => worker.stats().processed, ORDERED_JOBS);
    const seconds = (performance.now() - t0) / 1000;
    await worker.close();
    await drop(queue);
    await inbox.close();
    rows.push({
      engine,
      name: `${ordered ? 'ordered' : 'unordered'}, ${ORDER_KEYS} keys × ${ORDERED_JOBS / ORDER_KEYS} events, no-op`,
      jobs: ORDERED_JOBS,
      perSecond: Math.round(ORDERED_JOBS / seconds),
    });
  }
  return rows;
}

const results = [await bullmqRows(), await pgBossRows()];
const orderedThroughput = [
  ...(await orderedRows(
    'BullMQ',
    (ordered, queue) => bullmq.createBullMQInbox({ connection, queueName: queue, ordered, logger: false }),
    { concurrency: 16 },
    async (queue) => {
      const q = new Queue(queue, { connection });
      await q.obliterate({ force: true }).catch(() => undefined);
      await q.close();
    },
  )),
  ...(await orderedRows(
    'pg-boss',
    (ordered, queue) =>
      pgBoss.createPgBossInbox({ connection: DATABASE_URL, queueName: queue, ordered, logger: false }),
    { concurrency: 8, pollingIntervalSeconds: 0.5 },
    async (queue) => {
      const boss = new PgBoss(DATABASE_URL);
      boss.on('error', () => undefined);
      await boss.start();
      await boss.deleteQueue(queue).catch(() => undefined);
      // The lane and mark tables exist once an ordered inbox (or a Stripe event's mark) made them.
      for (const table of ['hookguard_lane', 'hookguard_newest'])
        await boss
          .getDb()
          .executeSql(`DELETE FROM pgboss.${table} WHERE queue = $1`, [queue])
          .catch(() => undefined);
      await boss.stop({ graceful: false, wait: true });
    },
  )),
];
results.push({ latency: [], throughput: orderedThroughput });
const latency = results.flatMap((r) => r.latency);
const throughput = results.flatMap((r) => r.throughput);
const ours = (engine: string) => latency.find((r) => r.engine === engine && r.name.startsWith('hookguard'))!;
const worker = (engine: string) =>
  throughput.find((r) => r.engine === engine && r.name.startsWith('hookguard'))!;
const targets = [
  {
    target: 'BullMQ inbox answer p99 ≤ 5 ms at 500 req/s',
    value: `${ours('BullMQ').p99Ms} ms`,
    met: ours('BullMQ').p99Ms <= 5,
  },
  {
    target: 'pg-boss inbox answer p99 ≤ 10 ms at 500 req/s',
    value: `${ours('pg-boss').p99Ms} ms`,
    met: ours('pg-boss').p99Ms <= 10,
  },
  {
    target: 'BullMQ worker ≥ 1,000 no-op events/s',
    value: `${worker('BullMQ').perSecond}/s`,
    met: worker('BullMQ').perSecond >= 1000,
  },
  ...(['BullMQ', 'pg-boss'] as const).map((engine) => {
    const [unordered, ordered] = orderedThroughput.filter((r) => r.engine === engine);
    const ratio = Math.round((ordered!.perSecond / unordered!.perSecond) * 100) / 100;
    return {
      target: `${engine} worker ordered ≥ 0.7 × unordered at ${ORDER_KEYS} keys`,
      value: `${ratio} ×`,
      met: ratio >= 0.7,
    };
  }),
  {
    target: 'pg-boss worker ≥ 300 no-op events/s',
    value: `${worker('pg-boss').perSecond}/s`,
    met: worker('pg-boss').perSecond >= 300,
  },
];
const markdown = [
  '# Durable inbox',
  '',
  `${cpus()[0]?.model ?? 'unknown'}, ${cpus().length} cores, Node ${process.version}, ${new Date().toISOString().slice(0, 10)}; Redis and PostgreSQL on the same machine.`,
  'Produced by `npm run bench:inbox`: requests sent at a fixed 500 per second (open loop), unique 1 KB Stripe events.',
  '',
  '| target | measured | met |',
  '|---|---:|:---:|',
  ...targets.map((t) => `| ${t.target} | ${t.value} | ${t.met ? 'yes' : '**no**'} |`),
  '',
  '## Answer latency at 500 requests/s',
  '',
  '| engine | what | requests | p50 ms | p99 ms |',
  '|---|---|---:|---:|---:|',
  ...latency.map((r) => `| ${r.engine} | ${r.name} | ${r.requests} | ${r.p50Ms} | ${r.p99Ms} |`),
  '',
  '## Worker throughput',
  '',
  '| engine | what | jobs | per second |',
  '|---|---|---:|---:|',
  ...throughput.map((r) => `| ${r.engine} | ${r.name} | ${r.jobs} | ${r.perSecond} |`),
  '',
].join('\n');
console.log(markdown);
if (!smoke) {
  const dir = new URL('.', import.meta.url);
  writeFileSync(new URL('INBOX.md', dir), markdown);
  writeFileSync(
    new URL('inbox-results.json', dir),
    `${JSON.stringify({ targets, latency, throughput }, null, 2)}\n`,
  );
}
process.exit(0);
