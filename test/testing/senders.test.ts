// The provider senders of hookguard/testing against a scripted server: which answers they retry, what
// they report, and that every attempt is signed as the provider signs it.
import { createServer, type IncomingHttpHeaders } from 'node:http';
import { afterEach, describe, expect, it, vi } from 'vitest';
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

/** A message in a conversation the bot holds (`pending`): the one Chatwoot hands to a human on a failure. */
const pendingMessage = () => chatwootEvent('message_created', { conversation: { status: 'pending' } });

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
      const delivery = await sender.deliver(pendingMessage());
      expect(delivery).toMatchObject({ delivered: false, failure: 'handed-off' });
      expect(delivery.attempts).toHaveLength(1);
    },
  );

  it('gives up after 3 attempts of 500', async () => {
    server = await scripted([500]);
    const sender = createChatwootSender({ url: server.url('/cw'), secret: SECRET, retryDelayMs: 5 });
    const delivery = await sender.deliver(pendingMessage());
    expect(delivery).toMatchObject({ delivered: false, failure: 'handed-off' });
    expect(delivery.attempts.map((a) => a.status)).toEqual([500, 500, 500]);
  });

  it('counts a timeout as a failure and never retries it', async () => {
    server = await scripted(['hang']);
    const sender = createChatwootSender({ url: server.url('/cw'), secret: SECRET, timeoutMs: 150 });
    const delivery = await sender.deliver(pendingMessage());
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

  it('hands off only a pending conversation, and none where the account keeps them pending', async () => {
    server = await scripted([503]);
    const url = server.url('/cw');
    const plain = createChatwootSender({ url, secret: SECRET });
    const keeping = createChatwootSender({ url, secret: SECRET, keepPendingOnBotFailure: true });
    expect((await plain.deliver(pendingMessage())).failure).toBe('handed-off');
    const open = chatwootEvent('message_created', { conversation: { status: 'open' } });
    expect((await plain.deliver(open)).failure).toBe('dropped');
    expect((await keeping.deliver(pendingMessage())).failure).toBe('dropped');
  });

  it('times out per read, as Chatwoot does: a slow body is delivered, a silent receiver is not', async () => {
    const slow = createServer((req, res) => {
      req.resume().on('end', () => {
        // Headers at 150 ms, the body's end at 400 ms: 400 ms in all, yet no wait reaches the 300 ms timeout.
        setTimeout(() => res.writeHead(200, { 'content-type': 'application/json' }).write('{"ok"'), 150);
        setTimeout(() => res.end(':true}'), 400);
      });
    }).listen(0, '127.0.0.1');
    const running = await listening(slow);
    try {
      const sender = createChatwootSender({ url: running.url('/cw'), secret: SECRET, timeoutMs: 300 });
      expect(await sender.deliver(pendingMessage())).toMatchObject({
        delivered: true,
        attempts: [{ status: 200, body: { ok: true } }],
      });
    } finally {
      await running.close();
    }
    server = await scripted(['hang']);
    const silent = createChatwootSender({ url: server.url('/cw'), secret: SECRET, timeoutMs: 300 });
    expect(await silent.deliver(pendingMessage())).toMatchObject({ attempts: [{ error: 'timeout' }] });
  });

  it('waits between retries as Rails does: the delay plus up to 15 % jitter', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0.999);
    try {
      server = await scripted([500, 500, 200]);
      const times: number[] = [];
      const timed = createServer((req, res) => {
        times.push(performance.now());
        req.resume().on('end', () => res.writeHead(times.length < 3 ? 500 : 200).end());
      }).listen(0, '127.0.0.1');
      const running = await listening(timed);
      try {
        const sender = createChatwootSender({ url: running.url('/cw'), secret: SECRET, retryDelayMs: 200 });
        expect((await sender.deliver(pendingMessage())).delivered).toBe(true);
      } finally {
        await running.close();
      }
      const gaps = times.slice(1).map((t, i) => t - times[i]!);
      expect(gaps.every((gap) => gap >= 228)).toBe(true); // 200 ms + 15 % of it (a busy machine only adds)
    } finally {
      vi.restoreAllMocks();
    }
  });

  it('serialises the body as Rails does: <, > and & escaped, the signature over those bytes', async () => {
    server = await scripted([200]);
    const sender = createChatwootSender({ url: server.url('/cw'), secret: SECRET });
    const content = 'x<y && y>z \u2028';
    await sender.deliver(chatwootEvent('message_created', { content }));
    const [{ body, headers }] = server.seen as [Seen];
    expect(body).toContain('x\\u003cy \\u0026\\u0026 y\\u003ez \\u2028');
    expect(body).not.toMatch(/[<>&\u2028]/);
    expect(verifyChatwootSignature(body, headers, { secret: SECRET }).deliveryId).toBeDefined();
    expect(JSON.parse(body)).toMatchObject({ content });
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
