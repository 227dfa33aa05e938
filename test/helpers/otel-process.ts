// One process of the cross-process trace figure (test/otel/trace-processes.test.ts), set up as an
// application would: the OpenTelemetry Node SDK with an in-memory exporter (the AsyncLocalStorage context
// manager and the W3C propagator are the SDK's defaults), and hookguard's `telemetry` option.
//   ROLE=web     instrumentation-http, an Express server with the Chatwoot and Stripe webhooks on a BullMQ
//                inbox (the web side verifies and enqueues; it runs no handler)
//   ROLE=worker  the inbox worker: Chatwoot's message_created opens the user's own span `tutor.answer`;
//                Stripe's payment_intent.succeeded throws on its first attempt
// Env: QUEUE, CW_SECRET, STRIPE_SECRET. Over IPC the process sends { ready, pid, port } once started and
// answers each 'spans' with its finished spans; 'stop' (or the parent going away) closes it.
import * as api from '@opentelemetry/api';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { createBullMQInbox } from '../../src/inbox/bullmq.js';
import { openTelemetry } from '../../src/otel/index.js';

/** A finished span as it crosses the IPC channel. */
export interface SpanRecord {
  pid: number;
  name: string;
  kind: api.SpanKind;
  traceId: string;
  spanId: string;
  parentSpanId: string | undefined;
  /** Milliseconds since the epoch. */
  startTime: number;
  attributes: api.Attributes;
  status: api.SpanStatus;
}

export type ProcessMessage =
  { type: 'ready'; pid: number; port: number } | { type: 'spans'; spans: SpanRecord[] };

/** What the Stripe handler throws on its first attempt (the span keeps its type, never its message). */
export class TutorDown extends Error {
  override name = 'TutorDown';
}

const record = (span: ReadableSpan): SpanRecord => ({
  pid: process.pid,
  name: span.name,
  kind: span.kind,
  traceId: span.spanContext().traceId,
  spanId: span.spanContext().spanId,
  parentSpanId: span.parentSpanContext?.spanId,
  startTime: span.startTime[0] * 1e3 + span.startTime[1] / 1e6,
  attributes: span.attributes,
  status: span.status,
});

function startSdk(instrumentations: HttpInstrumentation[]) {
  const exporter = new InMemorySpanExporter();
  const sdk = new NodeSDK({
    spanProcessors: [new SimpleSpanProcessor(exporter)],
    instrumentations,
    // Nothing of the host (cloud, container) is needed, and detecting it costs start-up time.
    resourceDetectors: [],
  });
  sdk.start();
  return { exporter, sdk };
}

const inboxOf = (queueName: string) =>
  createBullMQInbox({
    connection: { host: '127.0.0.1', port: 6379 },
    queueName,
    backoffMs: 100,
    logger: false,
  });

async function web(queueName: string): Promise<{ port: number; close(): Promise<unknown> }> {
  // The instrumentation patches `http` as it is required (require-in-the-middle), so it must be enabled
  // before Express loads it: Express (CommonJS) captures `require('http')` at its own load, and static
  // imports would all be evaluated before `sdk.start()` runs (tried: with `import express from 'express'`
  // at the top there is no server span at all). Hence the dynamic imports below; an application gets the
  // same order from `node --import ./telemetry.js server.js`.
  const { exporter } = startSdk([new HttpInstrumentation()]);
  const { default: express } = await import('express');
  const { chatwootWebhook, stripeWebhook } = await import('../../src/adapters/express.js');
  const inbox = inboxOf(queueName);
  const telemetry = openTelemetry(api, { metrics: false });
  const app = express();
  app.post(
    '/cw',
    chatwootWebhook({
      secret: process.env.CW_SECRET!,
      inbox,
      telemetry,
      logger: false,
      on: { message_created: () => undefined },
    }),
  );
  app.post(
    '/stripe',
    stripeWebhook({
      secret: process.env.STRIPE_SECRET!,
      inbox,
      telemetry,
      logger: false,
      on: { 'payment_intent.succeeded': () => undefined },
    }),
  );
  const server = app.listen(0, '127.0.0.1');
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  const address = server.address();
  serveSpans(exporter);
  return {
    port: typeof address === 'object' && address !== null ? address.port : 0,
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await inbox.close();
    },
  };
}

async function worker(queueName: string): Promise<{ port: number; close(): Promise<unknown> }> {
  const { exporter } = startSdk([]);
  const inbox = inboxOf(queueName);
  const tracer = api.trace.getTracer('tutor');
  const running = inbox.worker({
    telemetry: openTelemetry(api, { metrics: false }),
    logger: false,
    chatwoot: {
      on: {
        message_created: async () => {
          await tracer.startActiveSpan('tutor.answer', async (span) => {
            await new Promise((resolve) => setTimeout(resolve, 5));
            span.end();
          });
        },
      },
    },
    stripe: {
      on: {
        'payment_intent.succeeded': (_event, ctx) => {
          if (ctx.attempt === 1) throw new TutorDown('the first attempt fails');
        },
      },
    },
  });
  serveSpans(exporter);
  return {
    port: 0,
    close: async () => {
      await running.close(2000);
      await inbox.close();
    },
  };
}

function serveSpans(exporter: InMemorySpanExporter): void {
  process.on('message', (message) => {
    if (message !== 'spans') return;
    const reply: ProcessMessage = { type: 'spans', spans: exporter.getFinishedSpans().map(record) };
    process.send?.(reply);
  });
}

async function main() {
  const queueName = process.env.QUEUE!;
  const started = process.env.ROLE === 'web' ? await web(queueName) : await worker(queueName);
  let closing = false;
  const stop = () => {
    if (closing) return;
    closing = true;
    void started
      .close()
      .catch(() => undefined)
      .finally(() => process.exit(0));
  };
  process.on('message', (message) => {
    if (message === 'stop') stop();
  });
  process.once('disconnect', stop);
  const ready: ProcessMessage = { type: 'ready', pid: process.pid, port: started.port };
  process.send?.(ready);
}

if (process.env.OTEL_PROCESS === '1') void main();
