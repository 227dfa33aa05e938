// Webhook health as Prometheus metrics, from `onOutcome` (one call per request): counters by provider,
// result and status, and a latency histogram. `npx tsx examples/metrics.ts`, then GET /metrics.
import express from 'express';
import { pathToFileURL } from 'node:url';
import { Counter, Histogram, Registry } from 'prom-client';
import type { WebhookOutcome } from 'hookguard';
import { chatwootWebhook, stripeWebhook } from 'hookguard/express';

export function createMetrics(registry = new Registry()) {
  const deliveries = new Counter({
    name: 'webhook_deliveries_total',
    help: 'Webhook deliveries answered, by provider, result and HTTP status',
    labelNames: ['provider', 'result', 'status'] as const,
    registers: [registry],
  });
  const latency = new Histogram({
    name: 'webhook_duration_seconds',
    help: 'Time from receiving a webhook to answering it (or, after a 202, to finishing it)',
    labelNames: ['provider'] as const,
    buckets: [0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
    registers: [registry],
  });
  const onOutcome = (outcome: WebhookOutcome) => {
    deliveries.inc({ provider: outcome.provider, result: outcome.result, status: String(outcome.status) });
    latency.observe({ provider: outcome.provider }, outcome.durationMs / 1000);
  };
  return { registry, onOutcome };
}

export function createMetricsApp(secrets: { chatwoot: string | undefined; stripe: string | undefined }) {
  const { registry, onOutcome } = createMetrics();
  const app = express();
  const cw = chatwootWebhook({ secret: secrets.chatwoot, onOutcome, onEvent: () => {} });
  const st = stripeWebhook({ secret: secrets.stripe, onOutcome, onEvent: () => {} });
  app.post('/cw', cw);
  app.post('/webhook/payments', st);
  app.get('/metrics', async (_req, res) => {
    res.set('content-type', registry.contentType).send(await registry.metrics());
  });
  // The same counts without Prometheus: stats() on each handler, with the store's size.
  app.get('/health', (_req, res) => void res.json({ chatwoot: cw.stats(), stripe: st.stats() }));
  return app;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const port = Number(process.env.PORT ?? 3000);
  createMetricsApp({
    chatwoot: process.env.CW_HMAC_SECRET,
    stripe: process.env.STRIPE_WEBHOOK_SECRET,
  }).listen(port, (err) => {
    if (err) throw err; // the port is taken, say: Express 5 hands the error to this callback
    console.log(
      `listening on http://localhost:${port} (POST /cw, POST /webhook/payments, GET /metrics, GET /health)`,
    );
  });
}
