// `npm run demo`: starts the Express example bot on an ephemeral port with the default in-memory store and
// sends it what a webhook endpoint meets in real life, then prints one row per request and a summary.
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import type { WebhookOutcome } from 'hookguard';
import { chatwootEvent, signChatwootPayload, signStripePayload, stripeEvent } from 'hookguard/testing';
import { createBotApp } from '../examples/express.js';

const CW_SECRET = 'demo-chatwoot-secret';
const STRIPE_SECRET = 'whsec_demo_stripe_secret';

export interface DemoRow {
  sent: string;
  status: number;
  outcome: string;
}

export interface DemoResult {
  rows: DemoRow[];
  replies: number;
  fulfilments: Map<string, number>;
  summary: string;
}

export async function runDemo(print: (line: string) => void = console.log): Promise<DemoResult> {
  const replies: string[] = [];
  const fulfilments = new Map<string, number>();
  const failOnce = new Set<string>();
  const outcomes: WebhookOutcome[] = [];
  const app = createBotApp({
    chatwootSecret: CW_SECRET,
    stripeSecret: STRIPE_SECRET,
    onOutcome: (outcome) => void outcomes.push(outcome),
    services: {
      reply: async (_conversation, text) => void replies.push(text),
      fulfilOrder: async (sessionId) => {
        if (failOnce.delete(sessionId)) throw new Error('database unavailable');
        fulfilments.set(sessionId, (fulfilments.get(sessionId) ?? 0) + 1);
      },
    },
  });
  // hookguard's default logger prints warnings and errors to the console: collect them for after the table.
  const logged: string[] = [];
  const { warn, error } = console;
  console.warn = (line: unknown) => void logged.push(String(line));
  console.error = (line: unknown) => void logged.push(String(line));
  try {
    return await exchange(app, print, { replies, fulfilments, failOnce, outcomes }, logged);
  } finally {
    console.warn = warn;
    console.error = error;
  }
}

interface Watched {
  replies: string[];
  fulfilments: Map<string, number>;
  failOnce: Set<string>;
  outcomes: WebhookOutcome[];
}

async function exchange(
  app: ReturnType<typeof createBotApp>,
  print: (line: string) => void,
  { replies, fulfilments, failOnce, outcomes }: Watched,
  logged: string[],
): Promise<DemoResult> {
  const server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const rows: DemoRow[] = [];
  const post = async (
    sent: string,
    path: string,
    signed: { body: string; headers: Record<string, string> },
  ) => {
    const before = outcomes.length;
    const response = await fetch(`${base}${path}`, {
      method: 'POST',
      body: signed.body,
      headers: signed.headers,
    });
    const body = (await response.json()) as { error?: { code: string } };
    const outcome = outcomes[before];
    const label =
      outcome === undefined ? '?' : outcome.result + (body.error === undefined ? '' : ` ${body.error.code}`);
    rows.push({ sent, status: response.status, outcome: label });
  };

  const message = chatwootEvent('message_created', { content: 'Hi! Can I book a trial lesson?' });
  const delivery = signChatwootPayload(message, CW_SECRET);
  await post('Chatwoot message_created', '/cw', delivery);
  await post('the same delivery again', '/cw', delivery);
  await post(
    'a forged message (wrong secret)',
    '/cw',
    signChatwootPayload(chatwootEvent('message_created'), 'attacker-guess'),
  );
  const ownReply = chatwootEvent('message_created', { message_type: 'outgoing', content: 'You said: Hi!' });
  await post("the bot's own reply coming back", '/cw', signChatwootPayload(ownReply, CW_SECRET));

  const paid = signStripePayload(
    stripeEvent('checkout.session.completed', { data: { object: { amount_total: 4900 } } }),
    STRIPE_SECRET,
  );
  await post('Stripe checkout.session.completed', '/webhook/payments', paid);
  await post('the same event id again', '/webhook/payments', paid);

  const flakyEvent = stripeEvent('checkout.session.completed', { data: { object: { amount_total: 1900 } } });
  failOnce.add(flakyEvent.data.object.id);
  const flaky = signStripePayload(flakyEvent, STRIPE_SECRET);
  await post('a payment whose handler fails once', '/webhook/payments', flaky);
  await post("Stripe's retry of it", '/webhook/payments', flaky);

  const huge = chatwootEvent('message_created', { content: 'x'.repeat(5 * 1024 * 1024) });
  await post('a 5 MiB body (limit 4 MiB)', '/cw', signChatwootPayload(huge, CW_SECRET));

  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));

  const width = Math.max(...rows.map((r) => r.sent.length));
  print(`${'#'.padEnd(3)}${'sent'.padEnd(width + 2)}status  outcome`);
  rows.forEach((row, i) =>
    print(
      `${String(i + 1).padEnd(3)}${row.sent.padEnd(width + 2)}${String(row.status).padEnd(8)}${row.outcome}`,
    ),
  );
  const count = (result: string) => outcomes.filter((o) => o.result === result).length;
  const fulfilled = [...fulfilments.values()];
  const exactlyOnce = replies.length === 1 && fulfilled.length === 2 && fulfilled.every((n) => n === 1);
  const summary =
    `${rows.length} requests: ${count('processed')} processed, ${count('duplicate')} duplicates, ${count('ignored')} ignored, ` +
    `${count('rejected')} rejected, ${count('failed')} failed (then retried). ` +
    `Handlers ran: ${replies.length} reply, ${fulfilled.length} fulfilments, each exactly once: ${exactlyOnce ? 'yes' : 'NO'}.`;
  print('');
  print(summary);
  print('');
  print("The server's console meanwhile (hookguard's default logger: warnings and errors, one line each):");
  for (const line of logged) print(line.length > 150 ? `${line.slice(0, 149)}…` : line);
  return { rows, replies: replies.length, fulfilments, summary };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const result = await runDemo();
  process.exitCode = result.summary.includes('each exactly once: yes') ? 0 : 1;
}
