// The issue's figure: a Chatwoot delivery through a web process and a worker process is one trace, from the
// HTTP server span of instrumentation-http through verify and the enqueue to the worker's run and the
// user's own span. Each process runs its own OpenTelemetry Node SDK (test/helpers/otel-process.ts) and
// hands its finished spans over IPC; only the job's trace context links them. Then a Stripe delivery whose
// handler fails once: both worker runs continue the request's trace, the first one failed.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { Queue } from 'bullmq';
import Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chatwootDedupKey } from '../../src/index.js';
import { chatwootEvent, signChatwootPayload, stripeEvent } from '../../src/testing/index.js';
import { sleep } from '../helpers/http.js';
import type { ProcessMessage, SpanRecord } from '../helpers/otel-process.js';
import { newIoRedis, redisUp, requireService } from '../helpers/services.js';

const SCRIPT = fileURLToPath(new URL('../helpers/otel-process.ts', import.meta.url));
const CW_SECRET = 'cw-trace-processes-secret-0123456789';
const STRIPE_SECRET = 'whsec_trace_processes_0123456789';
const CONTENT = 'my card number is 4242 and my email is student@example.com';
const QUEUE = `hg-otel-trace-${randomUUID().slice(0, 8)}`;
const stripe = new Stripe('sk_test_unused');
const redisAvailable = await redisUp();

interface Child {
  role: 'web' | 'worker';
  pid: number;
  port: number;
  child: ChildProcess;
  exited: Promise<unknown>;
}

/** Starts one process of the figure (TypeScript through tsx, an IPC channel) and waits for it to be ready. */
function start(role: Child['role']): Promise<Child> {
  const child = spawn(process.execPath, ['--import', 'tsx', SCRIPT], {
    env: { ...process.env, OTEL_PROCESS: '1', ROLE: role, QUEUE, CW_SECRET, STRIPE_SECRET },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  return new Promise<Child>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${role} did not start within 15 s`)), 15_000);
    child.on('message', (message: ProcessMessage) => {
      if (message.type !== 'ready') return;
      clearTimeout(timer);
      resolve({ role, pid: message.pid, port: message.port, child, exited });
    });
    child.once('exit', (code) => reject(new Error(`${role} exited with ${code} before it was ready`)));
  });
}

/** The process's finished spans, asked over IPC. */
function spansOf(child: Child): Promise<SpanRecord[]> {
  return new Promise((resolve) => {
    const take = (message: ProcessMessage) => {
      if (message.type !== 'spans') return;
      child.child.off('message', take);
      resolve(message.spans);
    };
    child.child.on('message', take);
    child.child.send('spans');
  });
}

/** Asks until `check` holds on the spans of both processes; gives them. */
async function spansWhen(
  check: (web: SpanRecord[], worker: SpanRecord[]) => boolean,
  ms = 10_000,
): Promise<{ web: SpanRecord[]; worker: SpanRecord[] }> {
  const end = Date.now() + ms;
  for (;;) {
    const [web, worker] = await Promise.all([spansOf(processes.web), spansOf(processes.worker)]);
    if (check(web, worker)) return { web, worker };
    if (Date.now() > end) {
      throw new Error(`timed out; spans: ${[...web, ...worker].map((s) => s.name).join(', ')}`);
    }
    await sleep(50);
  }
}

/** The span named `name` among `spans` (exactly one). */
function one(spans: readonly SpanRecord[], name: string): SpanRecord {
  const found = spans.filter((s) => s.name === name);
  if (found.length !== 1) {
    throw new Error(
      `expected one span "${name}", found ${found.length} in ${spans.map((s) => s.name).join(', ')}`,
    );
  }
  return found[0]!;
}

const isChildOf = (child: SpanRecord, parent: SpanRecord) =>
  child.parentSpanId === parent.spanId && child.traceId === parent.traceId;

/** Every attribute and status of every span, as one string, to look for what must never be there. */
const everything = (spans: readonly SpanRecord[]) =>
  JSON.stringify(spans.map((s) => [s.name, s.attributes, s.status]));

/** The tree under `root` on one line, the process named where it changes: the printed figure. */
function drawTree(spans: readonly SpanRecord[], root: SpanRecord): string {
  const roleOf = (pid: number) => (pid === processes.web.pid ? 'web' : 'worker');
  const draw = (span: SpanRecord, parentPid: number | undefined): string => {
    const label = span.pid === parentPid ? span.name : `${span.name} [${roleOf(span.pid)} ${span.pid}]`;
    const children = spans
      .filter((s) => isChildOf(s, span))
      .sort((a, b) => a.startTime - b.startTime)
      .map((s) => draw(s, span.pid));
    if (children.length === 0) return label;
    return `${label} → ${children.length === 1 ? children[0] : `{ ${children.join(', ')} }`}`;
  };
  return draw(root, undefined);
}

let processes: { web: Child; worker: Child };

describe.runIf(requireService('Redis', redisAvailable))('one trace across a web and a worker process', () => {
  beforeAll(async () => {
    const [web, worker] = await Promise.all([start('web'), start('worker')]);
    processes = { web, worker };
  }, 20_000);

  afterAll(async () => {
    for (const child of Object.values(processes ?? {})) {
      if (child.child.exitCode === null && child.child.signalCode === null) child.child.send('stop');
    }
    const stopped = Promise.all(Object.values(processes ?? {}).map((c) => c.exited));
    const late = setTimeout(() => {
      for (const child of Object.values(processes ?? {})) child.child.kill('SIGKILL');
    }, 5000);
    await stopped;
    clearTimeout(late);
    const queue = new Queue(QUEUE, { connection: { host: '127.0.0.1', port: 6379 } });
    await queue.obliterate({ force: true }).catch(() => undefined);
    await queue.close();
    const redis = newIoRedis();
    const keys = await redis.keys(`*${QUEUE}*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
  });

  it('Chatwoot: HTTP request → verify, send → process → claim, handler → the user span', async () => {
    const { web, worker } = processes;
    expect(web.pid).not.toBe(worker.pid);
    expect([web.pid, worker.pid]).not.toContain(process.pid);
    const event = chatwootEvent('message_created', {
      id: Math.floor(Math.random() * 1e9),
      content: CONTENT,
      conversation: { id: 7 },
    });
    const { body, headers } = signChatwootPayload(event, CW_SECRET);
    const response = await fetch(`http://127.0.0.1:${web.port}/cw`, { method: 'POST', headers, body });
    expect(response.status).toBe(200);
    await response.arrayBuffer();

    const spans = await spansWhen(
      (w, k) => w.some((s) => s.kind === SpanKind.SERVER) && k.some((s) => s.name === `process ${QUEUE}`),
    );
    const all = [...spans.web, ...spans.worker];
    const http = spans.web.find((s) => s.kind === SpanKind.SERVER)!;
    const request = one(spans.web, 'hookguard.webhook chatwoot');
    const verify = one(spans.web, 'hookguard.verify');
    const send = one(spans.web, `send ${QUEUE}`);
    const run = one(spans.worker, `process ${QUEUE}`);
    const claim = one(spans.worker, 'hookguard.claim');
    const handler = one(spans.worker, 'hookguard.handler');
    const answer = one(spans.worker, 'tutor.answer');

    // One trace, the whole way.
    expect(new Set(all.map((s) => s.traceId))).toEqual(new Set([http.traceId]));
    expect(http.parentSpanId).toBeUndefined();
    expect(http.attributes).toMatchObject({
      'http.request.method': 'POST',
      'url.path': '/cw',
      'http.response.status_code': 200,
    });
    expect(isChildOf(request, http)).toBe(true);
    expect(isChildOf(verify, request)).toBe(true);
    expect(isChildOf(send, request)).toBe(true);
    expect(isChildOf(run, send)).toBe(true);
    expect(isChildOf(claim, run)).toBe(true);
    expect(isChildOf(handler, run)).toBe(true);
    expect(isChildOf(answer, handler)).toBe(true);
    // The web side claims nothing: with an inbox the engine dedupes, the worker claims.
    expect(spans.web.map((s) => s.name)).not.toContain('hookguard.claim');
    // Two processes: each span from the one that did the work.
    for (const s of [http, request, verify, send]) expect(s.pid).toBe(web.pid);
    for (const s of [run, claim, handler, answer]) expect(s.pid).toBe(worker.pid);
    expect([send.kind, run.kind]).toEqual([SpanKind.PRODUCER, SpanKind.CONSUMER]);
    expect(run.attributes['messaging.message.id']).toBe(send.attributes['messaging.message.id']);
    expect(request.attributes).toMatchObject({ 'hookguard.outcome': 'queued' });
    expect(run.attributes).toMatchObject({ 'hookguard.outcome': 'processed', 'hookguard.attempt': 1 });
    const text = everything(all);
    for (const secretish of [
      '4242',
      'student@example.com',
      CW_SECRET,
      headers['x-chatwoot-signature']!.slice(7, 40),
      headers['x-chatwoot-delivery']!,
      chatwootDedupKey(event)!, // the key, only as the engine's hash of it
    ]) {
      expect(text).not.toContain(secretish);
    }
    console.log(
      `one trace across 2 processes: ${all.length} spans, ${drawTree(all, http)}`.replaceAll(
        QUEUE,
        '{queue}',
      ),
    );
  });

  it('Stripe, failing once: both worker runs continue the request trace, the first one failed', async () => {
    const event = stripeEvent('payment_intent.succeeded');
    const body = JSON.stringify(event);
    const signature = stripe.webhooks.generateTestHeaderString({ payload: body, secret: STRIPE_SECRET });
    const response = await fetch(`http://127.0.0.1:${processes.web.port}/stripe`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'stripe-signature': signature },
      body,
    });
    expect(response.status).toBe(200);
    await response.arrayBuffer();

    const stripeRuns = (worker: SpanRecord[]) =>
      worker
        .filter((s) => s.name === `process ${QUEUE}` && s.attributes['hookguard.provider'] === 'stripe')
        .sort(
          (a, b) => Number(a.attributes['hookguard.attempt']) - Number(b.attributes['hookguard.attempt']),
        );
    const spans = await spansWhen((_, worker) => stripeRuns(worker).length === 2);
    const http = spans.web.find((s) => s.kind === SpanKind.SERVER && s.attributes['url.path'] === '/stripe')!;
    const request = one(spans.web, 'hookguard.webhook stripe');
    const send = one(
      spans.web.filter((s) => s.traceId === request.traceId),
      `send ${QUEUE}`,
    );
    const trace = [...spans.web, ...spans.worker].filter((s) => s.traceId === http.traceId);
    const [first, second] = stripeRuns(spans.worker) as [SpanRecord, SpanRecord];

    expect(isChildOf(request, http)).toBe(true);
    expect(isChildOf(send, request)).toBe(true);
    for (const run of [first, second]) {
      expect(run.pid).toBe(processes.worker.pid);
      expect(isChildOf(run, send)).toBe(true);
    }
    expect(first.attributes).toMatchObject({ 'hookguard.attempt': 1, 'error.type': 'HANDLER_FAILED' });
    expect(first.status.code).toBe(SpanStatusCode.ERROR);
    expect(second.attributes).toMatchObject({ 'hookguard.attempt': 2, 'hookguard.outcome': 'processed' });
    expect(second.attributes['error.type']).toBeUndefined();
    expect(second.status.code).toBe(SpanStatusCode.UNSET);
    const handlers = trace.filter((s) => s.name === 'hookguard.handler');
    expect(handlers).toHaveLength(2);
    expect(handlers.map((s) => [s.parentSpanId, s.status.code])).toEqual(
      expect.arrayContaining([
        [first.spanId, SpanStatusCode.ERROR],
        [second.spanId, SpanStatusCode.UNSET],
      ]),
    );
    expect(handlers.find((s) => isChildOf(s, first))?.attributes['exception.type']).toBe('TutorDown');
    const text = everything(trace);
    for (const secretish of [
      STRIPE_SECRET,
      /v1=([0-9a-f]{64})/.exec(signature)![1]!,
      'the first attempt fails',
      event.id,
    ]) {
      expect(text).not.toContain(secretish);
    }
    const status = (run: SpanRecord) =>
      run.status.code === SpanStatusCode.ERROR ? `ERROR ${String(run.attributes['error.type'])}` : 'OK';
    const figure = `stripe, failing once: one trace, ${trace.length} spans, ${drawTree(trace, http)}; attempt 1 ${status(first)}, attempt 2 ${status(second)}`;
    console.log(figure.replaceAll(QUEUE, '{queue}'));
  });
});
