// Webhook health as Prometheus metrics, from `onOutcome` (one call per request): counters by provider,
// result and status, and a latency histogram; with a durable inbox, its queue as gauges, read from
// `inbox.stats()` at each scrape. `npx tsx examples/metrics.ts`, then GET /metrics. With `--inbox`, Chatwoot
// events are queued on BullMQ (Redis on 127.0.0.1:6379) and run by a worker in the same process.
import express from 'express';
import { pathToFileURL } from 'node:url';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Inbox, WebhookOutcome } from 'hookguard';
import { createBullMQInbox, type InboxStats } from 'hookguard/bullmq';
import { chatwootWebhook, stripeWebhook } from 'hookguard/express';
import { inboxHealth } from 'hookguard/shutdown';

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

/**
 * An inbox's queue as gauges, read when Prometheus scrapes: jobs by state, and how long the oldest waiting
 * one has waited. `inboxHealth` never throws and gives the engine `timeoutMs` to answer: an engine that is
 * down or slow reports `hookguard_inbox_up 0` and no counts, and the scrape still answers. Register it in
 * one process per queue (each process that reports a queue adds a copy of its counts).
 */
export function createInboxGauges(
  registry: Registry,
  inbox: { stats(): Promise<InboxStats> },
  timeoutMs = 1000,
) {
  // prom-client collects a scrape's gauges concurrently: they share one reading.
  let reading: ReturnType<typeof inboxHealth> | undefined;
  const read = () => (reading ??= inboxHealth(inbox, { timeoutMs }).finally(() => (reading = undefined)));
  new Gauge({
    name: 'hookguard_inbox_up',
    help: 'Whether the inbox engine answered stats() within the timeout at this scrape',
    registers: [registry],
    async collect() {
      this.set((await read()).engine === 'up' ? 1 : 0);
    },
  });
  new Gauge({
    name: 'hookguard_inbox_jobs',
    help: 'Jobs in the inbox queue, by state (failed: the dead letter)',
    labelNames: ['queue', 'state'] as const,
    registers: [registry],
    async collect() {
      const health = await read();
      this.reset();
      if (health.engine === 'down') return;
      for (const state of ['waiting', 'active', 'delayed', 'failed'] as const)
        this.set({ queue: health.queueName, state }, health[state]);
    },
  });
  new Gauge({
    name: 'hookguard_inbox_oldest_waiting_seconds',
    help: 'How long the job that has waited longest to run has waited; 0 when none waits',
    labelNames: ['queue'] as const,
    registers: [registry],
    async collect() {
      const health = await read();
      this.reset();
      if (health.engine === 'up') this.set({ queue: health.queueName }, (health.oldestWaitingMs ?? 0) / 1000);
    },
  });
}

export function createMetricsApp(
  secrets: { chatwoot: string | undefined; stripe: string | undefined },
  inbox?: Inbox & { stats(): Promise<InboxStats> },
) {
  const { registry, onOutcome } = createMetrics();
  if (inbox !== undefined) createInboxGauges(registry, inbox);
  const app = express();
  const cw = chatwootWebhook({
    secret: secrets.chatwoot,
    onOutcome,
    onEvent: () => {},
    ...(inbox === undefined ? {} : { inbox }),
  });
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
  const inbox = process.argv.includes('--inbox')
    ? createBullMQInbox({ connection: { host: '127.0.0.1', port: 6379 } })
    : undefined;
  inbox?.worker({ chatwoot: { onEvent: () => {} } });
  createMetricsApp(
    { chatwoot: process.env.CW_HMAC_SECRET, stripe: process.env.STRIPE_WEBHOOK_SECRET },
    inbox,
  ).listen(port, (err) => {
    if (err) throw err; // the port is taken, say: Express 5 hands the error to this callback
    console.log(
      `listening on http://localhost:${port} (POST /cw, POST /webhook/payments, GET /metrics, GET /health)`,
    );
  });
}
