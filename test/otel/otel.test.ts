// hookguard/otel with the real OpenTelemetry SDK (in-memory exporter, on-demand metric reader): the spans of
// a request and of an inbox run, their parents across the queue, what they carry (and never carry), the
// metrics, and nothing at all without the option.
import { randomUUID } from 'node:crypto';
import * as api from '@opentelemetry/api';
import { MeterProvider, type MetricData } from '@opentelemetry/sdk-metrics';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { coalesce, createBullMQInbox } from '../../src/inbox/bullmq.js';
import { createPgBossInbox } from '../../src/inbox/pg-boss.js';
import type { Inbox, InboxJob } from '../../src/inbox/inbox.js';
import { createChatwootHandler, createStripeHandler, type ChatwootWebhookOptions } from '../../src/index.js';
import { openTelemetry } from '../../src/otel/index.js';
import {
  chatwootEvent,
  signChatwootPayload,
  signStripePayload,
  stripeEvent,
} from '../../src/testing/index.js';
import { isChildOf, OnDemandReader, spanNamed, startTestSdk, type TestSdk } from '../helpers/otel.js';
import { sleep } from '../helpers/http.js';
import { DATABASE_URL, postgresUp, redisUp, requireService } from '../helpers/services.js';

const [redis, postgres] = await Promise.all([redisUp(), postgresUp()]);
const SECRET = 'cw-otel-secret-0123456789';
const STRIPE_SECRET = 'whsec_otel_secret_0123456789';
const CONTENT = 'my card number is 4242 and my email is student@example.com';

let sdk: TestSdk;
const cleanups: (() => Promise<unknown> | unknown)[] = [];
beforeEach(() => {
  sdk = startTestSdk();
});
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  await sdk.shutdown();
});

function signed(content = CONTENT, id = Math.floor(Math.random() * 1e9)) {
  const event = chatwootEvent('message_created', { id, content, conversation: { id: 7 } });
  return signChatwootPayload(event, SECRET);
}

async function until(check: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await sleep(20);
  }
}

/** Every attribute value of every span, as one string, to look for what must never be there. */
const everything = (spans: ReturnType<TestSdk['spans']>) =>
  JSON.stringify(spans.map((s) => [s.name, s.attributes, s.events, s.status]));

describe('hookguard/otel, inline', () => {
  it('a request is a child of the active span, with verify, claim and handler steps and the user span inside', async () => {
    const tracer = api.trace.getTracer('test');
    const handler = createChatwootHandler({
      secret: SECRET,
      logger: false,
      telemetry: openTelemetry(api),
      on: {
        message_created: async () => {
          await sleep(5);
          tracer.startActiveSpan('user.work', (span) => span.end());
        },
      },
    });
    const { body, headers } = signed();
    const answer = await tracer.startActiveSpan('POST /cw', async (http) => {
      const result = await handler({ method: 'POST', headers, body });
      http.end();
      return result;
    });
    expect(answer.status).toBe(200);
    const spans = sdk.spans();
    const http = spanNamed(spans, 'POST /cw');
    const request = spanNamed(spans, 'hookguard.webhook chatwoot');
    const verify = spanNamed(spans, 'hookguard.verify');
    const claim = spanNamed(spans, 'hookguard.claim');
    const run = spanNamed(spans, 'hookguard.handler');
    const user = spanNamed(spans, 'user.work');
    expect(isChildOf(request, http)).toBe(true);
    for (const step of [verify, claim, run]) expect(isChildOf(step, request)).toBe(true);
    expect(isChildOf(user, run)).toBe(true);
    expect(request.attributes).toMatchObject({
      'hookguard.provider': 'chatwoot',
      'hookguard.event': 'message_created',
      'hookguard.outcome': 'processed',
      'hookguard.response.status_code': 200,
    });
    expect(request.status.code).toBe(api.SpanStatusCode.UNSET);
    // The steps follow each other.
    expect(hr(verify.endTime)).toBeLessThanOrEqual(hr(claim.startTime) + 1e6);
    expect(hr(claim.endTime)).toBeLessThanOrEqual(hr(run.startTime) + 1e6);
    const text = everything(spans);
    expect(text).not.toContain('4242');
    expect(text).not.toContain(SECRET);
    expect(text).not.toContain(headers['x-chatwoot-signature']!.slice(7, 30));
    expect(text).not.toContain(headers['x-chatwoot-delivery']);
  });

  it('a forged request: the span carries its code and status, the verify step is failed, no secret or body', async () => {
    const handler = createChatwootHandler({
      secret: SECRET,
      logger: false,
      telemetry: openTelemetry(api),
      on: { message_created: () => undefined },
    });
    const { body, headers } = signChatwootPayload(
      chatwootEvent('message_created', { content: CONTENT }),
      'wrong',
    );
    const answer = await handler({ method: 'POST', headers, body });
    expect(answer.status).toBe(401);
    const spans = sdk.spans();
    const request = spanNamed(spans, 'hookguard.webhook chatwoot');
    const verify = spanNamed(spans, 'hookguard.verify');
    const code = 'SIGNATURE_MISMATCH';
    expect(answer.body).toContain(code);
    expect(request.attributes).toMatchObject({
      'hookguard.outcome': 'rejected',
      'hookguard.error.code': code,
      'hookguard.response.status_code': 401,
    });
    // The sender's fault: an outcome, not an error of ours.
    expect(request.status.code).toBe(api.SpanStatusCode.UNSET);
    expect(verify.status.code).toBe(api.SpanStatusCode.ERROR);
    expect(verify.attributes['error.type']).toBe(code);
    console.log(
      `forged request span: outcome rejected, code ${code}, status 401; no body, secret or signature`,
    );
    const text = everything(spans);
    for (const secretish of [
      SECRET,
      'wrong',
      CONTENT.slice(0, 20),
      headers['x-chatwoot-signature']!.slice(7, 30),
    ]) {
      expect(text).not.toContain(secretish);
    }
  });

  it('a failing handler: the handler step and the request are errors, with the error type only', async () => {
    class TutorDown extends Error {
      override name = 'TutorDown';
    }
    const handler = createChatwootHandler({
      secret: SECRET,
      logger: false,
      telemetry: openTelemetry(api),
      on: {
        message_created: () => {
          throw new TutorDown(`could not answer: ${CONTENT}`);
        },
      },
    });
    const { body, headers } = signed();
    expect((await handler({ method: 'POST', headers, body })).status).toBe(500);
    const spans = sdk.spans();
    const run = spanNamed(spans, 'hookguard.handler');
    const request = spanNamed(spans, 'hookguard.webhook chatwoot');
    expect(run.status.code).toBe(api.SpanStatusCode.ERROR);
    expect(run.attributes).toMatchObject({ 'error.type': 'HANDLER_FAILED', 'exception.type': 'TutorDown' });
    expect(request.status.code).toBe(api.SpanStatusCode.ERROR);
    expect(request.attributes['hookguard.error.code']).toBe('HANDLER_FAILED');
    expect(everything(spans)).not.toContain('4242');
  });

  it('metrics: outcomes by provider, result and code; answer and handler durations; the store size', async () => {
    const telemetry = openTelemetry(api);
    const handler = createStripeHandler({
      secret: STRIPE_SECRET,
      logger: false,
      telemetry,
      on: { 'payment_intent.succeeded': () => undefined },
    });
    telemetry.observeHandler(handler);
    const payload = JSON.stringify(stripeEvent('payment_intent.succeeded'));
    const good = signStripePayload(payload, STRIPE_SECRET);
    await handler({ method: 'POST', headers: good.headers, body: good.body });
    await handler({ method: 'POST', headers: good.headers, body: good.body });
    const forged = signStripePayload(payload, 'whsec_wrong');
    await handler({ method: 'POST', headers: forged.headers, body: forged.body });
    const metrics = await sdk.metrics();
    const requests = points(metrics, 'hookguard.webhook.requests');
    expect(requests).toContainEqual({
      attributes: {
        'hookguard.provider': 'stripe',
        'hookguard.outcome': 'processed',
        'hookguard.response.status_code': 200,
      },
      value: 1,
    });
    expect(requests.find((p) => p.attributes['hookguard.outcome'] === 'duplicate')?.value).toBe(1);
    expect(requests.find((p) => p.attributes['hookguard.outcome'] === 'rejected')?.attributes).toMatchObject({
      'hookguard.error.code': 'SIGNATURE_MISMATCH',
      'hookguard.response.status_code': 401,
    });
    const durations = points(metrics, 'hookguard.webhook.duration');
    expect(durations.reduce((n, p) => n + (p.value as { count: number }).count, 0)).toBe(3);
    const handlerRuns = points(metrics, 'hookguard.handler.duration');
    expect(handlerRuns).toHaveLength(1);
    expect(handlerRuns[0]!.attributes).toEqual({
      'hookguard.provider': 'stripe',
      'hookguard.handler.where': 'inline',
      'hookguard.handler.result': 'ok',
    });
    expect(points(metrics, 'hookguard.store.keys')).toEqual([
      { attributes: { 'hookguard.provider': 'stripe' }, value: 1 },
    ]);
  });

  it('gauges observed before the SDK registered its meter provider are reported once it has', async () => {
    api.metrics.disable();
    const telemetry = openTelemetry(api);
    const handler = createStripeHandler({ secret: STRIPE_SECRET, logger: false, telemetry, onEvent() {} });
    const stop = telemetry.observeHandler(handler);
    cleanups.push(stop);
    api.metrics.setGlobalMeterProvider(sdk.meterProvider);
    expect((await sdk.metrics()).has('hookguard.store.keys')).toBe(false);
    await sleep(1300); // no request: only the look-up while something is observed finds the provider
    expect(points(await sdk.metrics(), 'hookguard.store.keys')).toEqual([
      { attributes: { 'hookguard.provider': 'stripe' }, value: 0 },
    ]);
  });

  it('a replaced meter provider stops getting the gauges; the new one gets them', async () => {
    const telemetry = openTelemetry(api);
    const handler = createStripeHandler({ secret: STRIPE_SECRET, logger: false, telemetry, onEvent() {} });
    cleanups.push(telemetry.observeHandler(handler));
    const reader = new OnDemandReader();
    const next = new MeterProvider({ readers: [reader] });
    cleanups.push(() => next.shutdown());
    api.metrics.disable();
    api.metrics.setGlobalMeterProvider(next);
    await sleep(1300);
    const names = async (r: OnDemandReader) =>
      (await r.collect()).resourceMetrics.scopeMetrics.flatMap((s) =>
        s.metrics.map((m) => m.descriptor.name),
      );
    expect(await names(reader)).toContain('hookguard.store.keys');
    expect([...(await sdk.metrics()).keys()]).not.toContain('hookguard.store.keys');
  });

  it('without the option, no span and no metric, and the job carries no trace context', async () => {
    const jobs: InboxJob[] = [];
    const handler = createChatwootHandler({
      secret: SECRET,
      logger: false,
      inbox: { enqueue: async (job) => (jobs.push(job), 'queued') },
      on: { message_created: () => undefined },
    });
    const { body, headers } = signed();
    await api.trace.getTracer('test').startActiveSpan('POST /cw', async (http) => {
      await handler({ method: 'POST', headers, body });
      http.end();
    });
    expect(sdk.spans().map((s) => s.name)).toEqual(['POST /cw']);
    expect(jobs).toHaveLength(1);
    expect('traceContext' in jobs[0]!).toBe(false);
    expect([...(await sdk.metrics()).keys()].filter((n) => n.startsWith('hookguard'))).toEqual([]);
  });
});

describe.runIf(requireService('Redis', redis))('hookguard/otel on the BullMQ inbox', () => {
  it('one trace: request, send, then the worker run and the user span, parented across the queue', async () => {
    const telemetry = openTelemetry(api);
    const inbox = createBullMQInbox({
      connection: { host: '127.0.0.1', port: 6379 },
      queueName: `hg-otel-${randomUUID()}`,
      logger: false,
    });
    cleanups.push(async () => {
      await inbox.queue.obliterate({ force: true }).catch(() => undefined);
      await inbox.close();
    });
    const handler = webSide(inbox, telemetry);
    const tracer = api.trace.getTracer('test');
    let ran = 0;
    inbox.worker({
      logger: false,
      telemetry,
      chatwoot: {
        on: {
          message_created: async () => {
            await tracer.startActiveSpan('tutor.answer', async (span) => {
              await sleep(2);
              span.end();
            });
            ran++;
          },
        },
      },
    });
    telemetry.observeInbox(inbox);
    const { body, headers } = signed();
    await tracer.startActiveSpan('POST /cw', async (http) => {
      expect((await handler({ method: 'POST', headers, body })).status).toBe(200);
      http.end();
    });
    await until(() => ran === 1 && sdk.spans().some((s) => s.name.startsWith('process ')));
    const spans = sdk.spans();
    const http = spanNamed(spans, 'POST /cw');
    const request = spanNamed(spans, 'hookguard.webhook chatwoot');
    const send = spanNamed(spans, `send ${inbox.queue.name}`);
    const process = spanNamed(spans, `process ${inbox.queue.name}`);
    const run = spanNamed(spans, 'hookguard.handler');
    const user = spanNamed(spans, 'tutor.answer');
    expect(isChildOf(request, http)).toBe(true);
    expect(isChildOf(send, request)).toBe(true);
    expect(isChildOf(process, send)).toBe(true);
    expect(isChildOf(spanNamed(spans, 'hookguard.claim'), process)).toBe(true);
    expect(isChildOf(run, process)).toBe(true);
    expect(isChildOf(user, run)).toBe(true);
    expect(new Set(spans.map((s) => s.spanContext().traceId)).size).toBe(1);
    expect(send.kind).toBe(api.SpanKind.PRODUCER);
    expect(process.kind).toBe(api.SpanKind.CONSUMER);
    const messageId = send.attributes['messaging.message.id'];
    expect(messageId).toMatch(/^hg-/);
    expect(send.attributes).toMatchObject({
      'messaging.system': 'bullmq',
      'messaging.operation.type': 'send',
      'messaging.destination.name': inbox.queue.name,
      'hookguard.outcome': 'queued',
    });
    expect(process.attributes).toMatchObject({
      'messaging.system': 'bullmq',
      'messaging.operation.type': 'process',
      'messaging.message.id': messageId,
      'hookguard.attempt': 1,
      'hookguard.outcome': 'processed',
    });
    expect(request.attributes['hookguard.outcome']).toBe('queued');
    expect(everything(spans)).not.toContain('4242');
    const metrics = await sdk.metrics();
    expect(points(metrics, 'hookguard.inbox.runs')).toEqual([
      { attributes: { 'hookguard.provider': 'chatwoot', 'hookguard.outcome': 'processed' }, value: 1 },
    ]);
    const jobs = points(metrics, 'hookguard.inbox.jobs');
    expect(jobs.map((p) => p.attributes['hookguard.inbox.state']).sort()).toEqual([
      'active',
      'delayed',
      'failed',
      'waiting',
    ]);
    expect(jobs[0]!.attributes).toMatchObject({
      'messaging.system': 'bullmq',
      'messaging.destination.name': inbox.queue.name,
    });
  });
});

describe.runIf(requireService('Redis', redis))(
  'hookguard/otel and coalesce() on an ordered BullMQ inbox',
  () => {
    it("one call for a burst: its process span continues the first message's trace and links the others", async () => {
      const telemetry = openTelemetry(api);
      const inbox = createBullMQInbox({
        connection: { host: '127.0.0.1', port: 6379 },
        queueName: `hg-otel-burst-${randomUUID()}`,
        ordered: true,
        logger: false,
      });
      cleanups.push(async () => {
        await inbox.queue.obliterate({ force: true }).catch(() => undefined);
        await inbox.close();
      });
      const calls: string[][] = [];
      const chatwoot = {
        secret: SECRET,
        logger: false as const,
        inbox,
        telemetry,
        on: {
          message_created: coalesce({ windowMs: 400 }, (messages) => {
            calls.push(messages.map((m) => m.content ?? ''));
          }),
        },
      } satisfies ChatwootWebhookOptions;
      const web = createChatwootHandler(chatwoot);
      inbox.worker({ chatwoot, inFlightDelayMs: 100 });
      const tracer = api.trace.getTracer('test');
      const conversation = Math.floor(Math.random() * 1e9);
      for (const content of ['hi', 'I need help', 'with fractions']) {
        const event = chatwootEvent('message_created', {
          content,
          conversation: { id: conversation, inbox_id: 7 },
        });
        const { body, headers } = signChatwootPayload(event, SECRET);
        await tracer.startActiveSpan(`POST ${content}`, async (http) => {
          expect((await web({ method: 'POST', headers, body })).status).toBe(200);
          http.end();
        });
      }
      await until(() => calls.length === 1 && sdk.spans().some((s) => s.name.startsWith('process ')));
      await sleep(300); // a stray second run would show up here
      expect(calls).toEqual([['hi', 'I need help', 'with fractions']]);
      const spans = sdk.spans();
      const sends = spans.filter((s) => s.name.startsWith('send '));
      const runs = spans.filter(
        (s) => s.name.startsWith('process ') && s.attributes['hookguard.outcome'] === 'processed',
      );
      expect(sends).toHaveLength(3);
      expect(runs).toHaveLength(1);
      const [first, ...others] = sends;
      expect(isChildOf(runs[0]!, first!)).toBe(true);
      expect(runs[0]!.links.map((l) => l.context.spanId).sort()).toEqual(
        others.map((s) => s.spanContext().spanId).sort(),
      );
      // The linked messages' traces are their own requests'.
      expect(new Set(sends.map((s) => s.spanContext().traceId)).size).toBe(3);
    });
  },
);

describe.runIf(requireService('PostgreSQL', postgres))('hookguard/otel on the pg-boss inbox', () => {
  it('the worker run continues the request trace; waiting jobs and their age are gauges', async () => {
    const telemetry = openTelemetry(api);
    const queueName = `hg_otel_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
    const inbox = createPgBossInbox({ connection: DATABASE_URL, queueName, logger: false });
    cleanups.push(async () => {
      await inbox.boss.deleteQueue(queueName).catch(() => undefined);
      await inbox.close();
    });
    const handler = webSide(inbox, telemetry);
    telemetry.observeInbox(inbox);
    const first = signed();
    expect((await handler({ method: 'POST', ...first })).status).toBe(200);
    await sleep(50);
    const waiting = await sdk.metrics();
    expect(
      points(waiting, 'hookguard.inbox.jobs').find((p) => p.attributes['hookguard.inbox.state'] === 'waiting')
        ?.value,
    ).toBe(1);
    expect(points(waiting, 'hookguard.inbox.oldest_waiting_age')[0]?.value).toBeGreaterThan(0);
    let ran = 0;
    // The telemetry given with the handlers (the web side's options object) serves the worker too.
    inbox.worker({
      logger: false,
      pollingIntervalSeconds: 0.5,
      chatwoot: { telemetry, on: { message_created: () => void ran++ } },
    });
    await until(() => ran === 1 && sdk.spans().some((s) => s.name === `process ${queueName}`));
    const spans = sdk.spans();
    const send = spanNamed(spans, `send ${queueName}`);
    const process = spanNamed(spans, `process ${queueName}`);
    expect(isChildOf(process, send)).toBe(true);
    expect(process.attributes['messaging.system']).toBe('pg-boss');
    expect(process.attributes['messaging.message.id']).toBe(send.attributes['messaging.message.id']);
  });
});

function points(metrics: Map<string, MetricData>, name: string) {
  const metric = metrics.get(name);
  if (metric === undefined) throw new Error(`no metric ${name}; have ${[...metrics.keys()].join(', ')}`);
  return metric.dataPoints.map((p) => ({ attributes: { ...p.attributes }, value: p.value }));
}

const hr = (time: [number, number]) => time[0] * 1e9 + time[1];

/** The web side of an inbox: its Chatwoot handler queues message_created events. */
function webSide(inbox: Inbox, telemetry: ReturnType<typeof openTelemetry>) {
  return createChatwootHandler({
    secret: SECRET,
    logger: false,
    inbox,
    telemetry,
    on: { message_created: () => undefined },
  });
}
