// `npm run demo:inbox`: a Chatwoot bot whose reply takes 8 s, behind Chatwoot's 5 s timeout, on the durable
// inbox (BullMQ). Messages are delivered the way Chatwoot delivers them; the web process is killed right
// after an answer and a worker in the middle of a reply. At the end every message must have been replied to
// exactly once. Uses the machine's Redis, or starts a private redis-server when there is none.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:net';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Redis } from 'ioredis';
import { createBullMQInbox } from 'hookguard/bullmq';
import { chatwootEvent, createChatwootSender, type SimulatedDelivery } from 'hookguard/testing';

const SECRET = 'demo-inbox-chatwoot-secret';
const PROCESS = fileURLToPath(new URL('./inbox-demo-process.ts', import.meta.url));
const QUESTIONS = [
  'What is a prime number?',
  'Can you explain photosynthesis?',
  'How do I solve 2x + 3 = 11?',
  'Why is the sky blue?',
  'What does "ubiquitous" mean?',
];

export interface InboxDemoResult {
  lines: string[];
  replies: number[];
  answersMs: number[];
  exactlyOnce: boolean;
}

interface Proc {
  child: ChildProcess;
  port: number;
}

function start(env: Record<string, string>): Promise<Proc> {
  const child = spawn(process.execPath, ['--import', 'tsx', PROCESS], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const match = /READY (\d+)/.exec(out);
      if (match) resolve({ child, port: Number(match[1]) });
    });
    child.once('exit', (code) => reject(new Error(`a demo process exited (${code}) before it was ready`)));
  });
}

const kill = (proc: Proc) =>
  new Promise<void>((resolve) => {
    proc.child.once('exit', () => resolve());
    proc.child.kill('SIGKILL');
  });

/** The machine's Redis, or a private one on a free port (stopped at the end). */
async function redisServer(): Promise<{ port: number; stop: () => void }> {
  const probe = new Redis({ host: '127.0.0.1', port: 6379, lazyConnect: true, maxRetriesPerRequest: 0 });
  try {
    await probe.connect();
    await probe.ping();
    return { port: 6379, stop: () => undefined };
  } catch {
    const port = await new Promise<number>((resolve) => {
      const server = createServer().listen(0, '127.0.0.1', () => {
        const { port: free } = server.address() as { port: number };
        server.close(() => resolve(free));
      });
    });
    const child = spawn('redis-server', ['--port', String(port), '--save', '', '--appendonly', 'no'], {
      stdio: 'ignore',
    });
    await new Promise((resolve) => setTimeout(resolve, 500));
    return { port, stop: () => void child.kill('SIGTERM') };
  } finally {
    probe.disconnect();
  }
}

export async function runInboxDemo(
  print: (line: string) => void = console.log,
  replyMs = 8000,
): Promise<InboxDemoResult> {
  const redisProc = await redisServer();
  const run = randomUUID();
  const queue = `hookguard-demo-${run}`;
  const env = {
    REDIS_PORT: String(redisProc.port),
    QUEUE: queue,
    RUN: run,
    REPLY_MS: String(replyMs),
    SECRET,
  };
  const redis = new Redis({ host: '127.0.0.1', port: redisProc.port });
  const lines: string[] = [];
  const say = (line: string) => {
    lines.push(line);
    print(line);
  };
  const procs: Proc[] = [];
  try {
    let web = await start({ ...env, ROLE: 'web' });
    const worker = await start({ ...env, ROLE: 'worker' });
    procs.push(web, worker);
    const messages = QUESTIONS.map((content) => chatwootEvent('message_created', { content }));
    const deliveries: { delivery: SimulatedDelivery; ms: number; note: string }[] = [];
    const deliver = async (i: number, note = '') => {
      const chatwoot = createChatwootSender({ url: `http://127.0.0.1:${web.port}/cw`, secret: SECRET });
      const t0 = performance.now();
      const delivery = await chatwoot.deliver(messages[i]!);
      deliveries.push({ delivery, ms: performance.now() - t0, note });
    };
    for (let i = 0; i < 3; i++) await deliver(i);
    await kill(web); // right after its third answer
    web = await start({ ...env, ROLE: 'web' });
    procs.push(web);
    await deliver(3, 'to a new web process: the first was killed (kill -9) right after answering #3');
    await new Promise((resolve) => setTimeout(resolve, replyMs / 3));
    await kill(worker); // mid-reply: it was working on #1 to #4
    procs.push(await start({ ...env, ROLE: 'worker' }));
    await deliver(4, 'after the worker was killed (kill -9) in the middle of its replies');
    const ids = messages.map((m) => String(m.id));
    const replies = async () => {
      const counts = await redis.hgetall(`hg-demo:${run}:replies`);
      return ids.map((id) => Number(counts[id] ?? 0));
    };
    const deadline = Date.now() + replyMs * 6 + 20_000;
    while ((await replies()).some((n) => n === 0) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    await new Promise((resolve) => setTimeout(resolve, 1000)); // anything running twice would show now
    const final = await replies();
    say(`#  message                            answer           in ms  replies  notes`);
    deliveries.forEach(({ delivery, ms, note }, i) => {
      const answer = delivery.attempts.map((a) => `${a.status ?? a.error}`).join(',');
      const queued = (delivery.attempts.at(-1)?.body as { queued?: boolean } | undefined)?.queued === true;
      say(
        `${String(i + 1).padEnd(3)}${`"${QUESTIONS[i]}"`.padEnd(35)}${`${answer} ${queued ? 'queued' : ''}`.padEnd(17)}${String(Math.round(ms)).padStart(5)}  ${String(final[i]).padStart(7)}  ${note}`,
      );
    });
    const exactlyOnce = final.every((n) => n === 1);
    const handedOff = deliveries.filter((d) => d.delivery.failure !== undefined).length;
    say('');
    say(
      'In production give the inbox\'s Redis appendonly yes, so a Redis restart keeps what was answered 200 (README: "The engine must keep what it acknowledged").',
    );
    say(
      `Each reply took ${replyMs / 1000} s (Chatwoot waits 5 s); every answer came in ${Math.round(Math.max(...deliveries.map((d) => d.ms)))} ms or less, ` +
        `${handedOff} conversations handed to a human. Every message replied to exactly once: ${exactlyOnce ? 'yes' : 'NO'}.`,
    );
    return { lines, replies: final, answersMs: deliveries.map((d) => d.ms), exactlyOnce };
  } finally {
    for (const proc of procs) if (proc.child.exitCode === null) proc.child.kill('SIGKILL');
    const inbox = createBullMQInbox({
      connection: { host: '127.0.0.1', port: redisProc.port },
      queueName: queue,
      logger: false,
    });
    await inbox.queue.obliterate({ force: true }).catch(() => undefined);
    await inbox.close();
    await redis.del(`hg-demo:${run}:replies`);
    redis.disconnect();
    redisProc.stop();
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const result = await runInboxDemo();
  process.exitCode = result.exactlyOnce ? 0 : 1;
}
