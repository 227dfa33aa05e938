// The client's faults over real sockets: bodies refused as too large or too slow close their socket, an
// upload the client abandons is a rejection (not our failure), and each request has exactly one outcome.
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { WebhookOutcome } from '../../src/index.js';
import { chatwootEvent, signChatwootPayload } from '../../src/testing/index.js';
import { sleep } from '../helpers/http.js';
import { FRAMEWORKS, type Running } from '../helpers/servers.js';

const SECRET = 'cw-client-faults';
const NODE_ADAPTERS = FRAMEWORKS.filter((f) => f.name !== 'fetch');

/** A raw HTTP/1.1 exchange: what the server answered, and whether it closed the socket afterwards. */
function rawExchange(
  url: string,
  head: string,
  send: (socket: Socket) => void,
): Promise<{ response: string; closedByServer: boolean; socket: Socket }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = connect(Number(port), hostname);
    let response = '';
    let settled = false;
    const finish = (closedByServer: boolean) => {
      if (settled) return;
      settled = true;
      resolve({ response, closedByServer, socket });
    };
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      response += chunk;
    });
    socket.on('end', () => finish(true));
    socket.on('close', () => finish(true));
    socket.on('error', () => finish(true));
    socket.write(head);
    send(socket);
    // Still open two seconds after the answer: the server kept it.
    const check = setInterval(() => {
      if (response.includes('\r\n\r\n')) {
        clearInterval(check);
        setTimeout(() => finish(false), 2000);
      }
    }, 20);
    socket.on('close', () => clearInterval(check));
  });
}

const statusOf = (response: string) => Number(/^HTTP\/1\.1 (\d{3})/.exec(response)?.[1]);

describe.each(NODE_ADAPTERS)('$name: client faults', (framework) => {
  let server: Running | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  const start = async (
    outcomes: WebhookOutcome[],
    options: { readTimeoutMs?: number; maxBodyBytes?: number } = {},
  ) => {
    server = await framework.start([
      {
        path: '/cw',
        provider: 'chatwoot',
        options: {
          secret: SECRET,
          logger: false,
          onOutcome: (o) => void outcomes.push(o),
          onEvent() {},
          ...options,
        },
      },
    ]);
    return server;
  };

  it('answers 413 with Connection: close and closes the socket while the sender is still sending', async () => {
    const outcomes: WebhookOutcome[] = [];
    const running = await start(outcomes, { maxBodyBytes: 1024 });
    const head =
      'POST /cw HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n';
    const result = await rawExchange(running.url('/cw'), head, (socket) => {
      const chunk = 'x'.repeat(4096);
      socket.write(`${chunk.length.toString(16)}\r\n${chunk}\r\n`);
    });
    result.socket.destroy();
    expect(statusOf(result.response)).toBe(413);
    expect(result.response.toLowerCase()).toContain('connection: close');
    expect(result.closedByServer).toBe(true);
    expect(outcomes.map((o) => `${o.result}:${o.status}`)).toEqual(['rejected:413']);
  });

  it('answers 408 with Connection: close and closes the socket of a sender that trickles', async () => {
    const outcomes: WebhookOutcome[] = [];
    const running = await start(outcomes, { readTimeoutMs: 300 });
    const head =
      'POST /cw HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n';
    const result = await rawExchange(running.url('/cw'), head, (socket) => socket.write('{"event":'));
    result.socket.destroy();
    expect(statusOf(result.response)).toBe(408);
    expect(result.response.toLowerCase()).toContain('connection: close');
    expect(result.closedByServer).toBe(true);
    expect(outcomes.map((o) => `${o.result}:${o.code}`)).toEqual(['rejected:READ_TIMEOUT']);
  });
});

describe.each(FRAMEWORKS)('$name: an abandoned upload', (framework) => {
  let server: Running | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  const start = async (outcomes: WebhookOutcome[]) => {
    server = await framework.start([
      {
        path: '/cw',
        provider: 'chatwoot',
        options: { secret: SECRET, logger: false, onOutcome: (o) => void outcomes.push(o), onEvent() {} },
      },
    ]);
    return server;
  };

  it('counts an upload the client abandons as one rejection (400, warn), not a failure', async () => {
    const outcomes: WebhookOutcome[] = [];
    const running = await start(outcomes);
    const signed = signChatwootPayload(chatwootEvent('message_created'), SECRET);
    const head = `POST /cw HTTP/1.1\r\nHost: x\r\n${Object.entries(signed.headers)
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join('')}Content-Length: ${signed.body.length + 100}\r\n\r\n`;
    const { hostname, port } = new URL(running.url('/cw'));
    const socket = connect(Number(port), hostname);
    socket.write(head + signed.body.slice(0, 50));
    await sleep(150);
    socket.destroy();
    for (let i = 0; i < 50 && outcomes.length === 0; i++) await sleep(20);
    await sleep(100);
    expect(outcomes.map((o) => `${o.result}:${o.status}:${o.code}`)).toEqual([
      'rejected:400:RAW_BODY_UNAVAILABLE',
    ]);
  });
});

describe('fastify: its own refusals', () => {
  const fastifies = FRAMEWORKS.filter((f) => f.name.startsWith('fastify'));
  let server: Running | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  // Fastify 4 passes every Content-Type to a '*' parser; Fastify 5 refuses malformed ones itself (415).
  it.each(fastifies.filter((f) => f.name === 'fastify 5'))(
    '$name turns its own refusal of a malformed Content-Type into a 400 rejection, not a 500',
    async (framework) => {
      const outcomes: WebhookOutcome[] = [];
      server = await framework.start([
        {
          path: '/cw',
          provider: 'chatwoot',
          options: { secret: SECRET, logger: false, onOutcome: (o) => void outcomes.push(o), onEvent() {} },
        },
      ]);
      const response = await fetch(server.url('/cw'), {
        method: 'POST',
        headers: { 'content-type': 'application/' }, // Fastify refuses it with its own 415
        body: '{}',
      });
      expect(response.status).toBe(400);
      expect(await response.json()).toEqual({ error: { code: 'RAW_BODY_UNAVAILABLE' } });
      expect(outcomes.map((o) => `${o.result}:${o.status}`)).toEqual(['rejected:400']);
    },
  );
});
