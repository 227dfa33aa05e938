// The provider senders of hookguard/testing against a scripted server: which answers they retry, what
// they report, and that every attempt is signed as the provider signs it.
import { createServer, type IncomingHttpHeaders } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { verifyChatwootSignature, verifyStripeEvent } from '../../src/index.js';
import {
  chatwootEvent,
  createChatwootSender,
  createStripeSender,
  stripeEvent,
} from '../../src/testing/index.js';
import { listening, type Running } from '../helpers/servers.js';

const SECRET = 'whsec_senders';

interface Seen {
  headers: IncomingHttpHeaders;
  body: string;
}

/** A server that answers each request with the next status of `script` (the last one repeats). */
async function scripted(script: (number | 'hang')[]): Promise<Running & { seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      seen.push({ headers: req.headers, body: Buffer.concat(chunks).toString() });
      const next = script[Math.min(seen.length - 1, script.length - 1)]!;
      if (next === 'hang') return;
      if (next >= 300 && next < 400) res.setHeader('location', '/elsewhere');
      res.writeHead(next, { 'content-type': 'application/json' }).end('{"ok":true}');
    });
  }).listen(0, '127.0.0.1');
  return { ...(await listening(server)), seen };
}

let server: (Running & { seen: Seen[] }) | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

describe('createChatwootSender', () => {
  it('retries an agent-bot delivery on 429 and 500, re-signing each attempt with the same delivery id', async () => {
    server = await scripted([429, 500, 200]);
    const sender = createChatwootSender({ url: server.url('/cw'), secret: SECRET, retryDelayMs: 5 });
    const delivery = await sender.deliver(chatwootEvent('message_created'));
    expect(delivery).toMatchObject({ delivered: true, failure: undefined });
    expect(delivery.attempts.map((a) => a.status)).toEqual([429, 500, 200]);
    expect(new Set(server.seen.map((s) => s.headers['x-chatwoot-delivery']))).toEqual(new Set([delivery.id]));
    expect(new Set(server.seen.map((s) => s.body)).size).toBe(1);
    for (const { headers, body } of server.seen) {
      expect(verifyChatwootSignature(body, headers, { secret: SECRET }).deliveryId).toBe(delivery.id);
    }
  });

  it.each([409, 413, 502, 503, 401])(
    'hands the conversation off after a %i, without retrying',
    async (status) => {
      server = await scripted([status, 200]);
      const sender = createChatwootSender({ url: server.url('/cw'), secret: SECRET, retryDelayMs: 5 });
      const delivery = await sender.deliver(chatwootEvent('message_created'));
      expect(delivery).toMatchObject({ delivered: false, failure: 'handed-off' });
      expect(delivery.attempts).toHaveLength(1);
    },
  );

  it('gives up after 3 attempts of 500', async () => {
    server = await scripted([500]);
    const sender = createChatwootSender({ url: server.url('/cw'), secret: SECRET, retryDelayMs: 5 });
    const delivery = await sender.deliver(chatwootEvent('message_created'));
    expect(delivery).toMatchObject({ delivered: false, failure: 'handed-off' });
    expect(delivery.attempts.map((a) => a.status)).toEqual([500, 500, 500]);
  });

  it('counts a timeout as a failure and never retries it', async () => {
    server = await scripted(['hang']);
    const sender = createChatwootSender({ url: server.url('/cw'), secret: SECRET, timeoutMs: 150 });
    const delivery = await sender.deliver(chatwootEvent('message_created'));
    expect(delivery).toMatchObject({
      delivered: false,
      failure: 'handed-off',
      attempts: [{ error: 'timeout' }],
    });
  });

  it('delivers API-inbox and account webhooks once: a failed message is marked failed, other events dropped', async () => {
    server = await scripted([500, 200]);
    const inbox = createChatwootSender({ url: server.url('/cw'), secret: SECRET, kind: 'api-inbox' });
    expect(await inbox.deliver(chatwootEvent('message_created'))).toMatchObject({
      delivered: false,
      failure: 'message-failed',
      attempts: [{ status: 500 }],
    });
    server.seen.length = 0;
    const account = createChatwootSender({ url: server.url('/cw'), secret: SECRET, kind: 'account' });
    expect(await account.deliver(chatwootEvent('conversation_updated'))).toMatchObject({
      delivered: false,
      failure: 'dropped',
    });
  });

  it('reports a refused connection as a failure', async () => {
    server = await scripted([200]);
    const url = server.url('/cw');
    await server.close();
    server = undefined;
    const delivery = await createChatwootSender({ url, secret: SECRET }).deliver(
      chatwootEvent('message_created'),
    );
    expect(delivery).toMatchObject({
      delivered: false,
      attempts: [{ status: undefined, error: 'ECONNREFUSED' }],
    });
  });
});

describe('createStripeSender', () => {
  it('retries every non-2xx, redirects included (not followed), with a fresh signature each time', async () => {
    server = await scripted([302, 503, 400, 200]);
    const sender = createStripeSender({ url: server.url('/stripe'), secret: SECRET, firstRetryMs: 5 });
    const event = stripeEvent('invoice.paid');
    const delivery = await sender.deliver(event);
    expect(delivery).toMatchObject({ id: event.id, delivered: true });
    expect(delivery.attempts.map((a) => a.status)).toEqual([302, 503, 400, 200]);
    expect(server.seen.every((s) => s.headers.host !== undefined)).toBe(true);
    for (const { headers, body } of server.seen) {
      expect(verifyStripeEvent(body, headers, { secret: SECRET }).id).toBe(event.id);
    }
  });

  it('drops the event after its last attempt', async () => {
    server = await scripted([500]);
    const sender = createStripeSender({
      url: server.url('/stripe'),
      secret: SECRET,
      attempts: 3,
      firstRetryMs: 5,
    });
    expect(await sender.deliver(stripeEvent('invoice.paid'))).toMatchObject({
      delivered: false,
      failure: 'dropped',
      attempts: [{ status: 500 }, { status: 500 }, { status: 500 }],
    });
  });
});
