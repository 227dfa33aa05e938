// Traces through OpenTelemetry, printed to the console. `npx tsx examples/otel.ts` starts the Node SDK, then
// the app, sends itself one signed Chatwoot delivery and prints its spans, all with one traceId:
// `hookguard.webhook chatwoot` (the request) → `hookguard.verify`, `hookguard.claim`, `hookguard.handler`
// → `write reply` (the handler's own span). Needs `@opentelemetry/api` and `@opentelemetry/sdk-node`.
import * as api from '@opentelemetry/api';
import { NodeSDK, tracing } from '@opentelemetry/sdk-node';
import express from 'express';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { chatwootWebhook } from 'hookguard/express';
import { openTelemetry } from 'hookguard/otel';
import { chatwootEvent, signChatwootPayload } from 'hookguard/testing';

// The SDK first: it sets the global tracer and meter providers that `openTelemetry(api)` reports to. Start
// it before creating any handler (in an app: in a file loaded with `node --import ./telemetry.js`).
const sdk = new NodeSDK({
  serviceName: 'hookguard-example',
  spanProcessors: [new tracing.SimpleSpanProcessor(new tracing.ConsoleSpanExporter())],
  resourceDetectors: [], // keeps the printout short: no host or process attributes on every span
  metricReaders: [], // none here; without this option NodeSDK sends metrics over OTLP to localhost:4318
});
sdk.start();

const secret = process.env.CW_HMAC_SECRET ?? 'example-secret';
const tracer = api.trace.getTracer('example-bot');
const app = express();
app.post(
  '/cw',
  chatwootWebhook({
    secret,
    telemetry: openTelemetry(api),
    on: {
      // The handler runs inside `hookguard.handler`, so the span it starts is a child of it.
      message_created: (event) =>
        tracer.startActiveSpan('write reply', async (span) => {
          try {
            span.setAttribute('chatwoot.conversation.id', event.conversation?.id ?? 0);
            await new Promise((resolve) => setTimeout(resolve, 20)); // the bot's work
          } finally {
            span.end();
          }
        }),
    },
  }),
);

const server = app.listen(0, '127.0.0.1'); // a free port
await once(server, 'listening');
const { port } = server.address() as AddressInfo;
// One delivery as Chatwoot sends it, signed with the testing helpers.
const { body, headers } = signChatwootPayload(chatwootEvent('message_created', { content: 'Hi!' }), secret);
const response = await fetch(`http://127.0.0.1:${port}/cw`, { method: 'POST', body, headers });
console.log(`POST /cw answered ${response.status} ${await response.text()}`);
server.close();
await sdk.shutdown(); // flushes what is left to export
