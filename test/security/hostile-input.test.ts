// Hostile input through the real HTTP adapters, Chatwoot and Stripe routes (fast-check, fixed seed). For every case: an answer from
// the contract, no handler call unless the request was genuinely signed, no uncaught exception or
// unhandled rejection, and the server still answers the next valid request.
// `npm run test:fuzz` runs the same property with FUZZ_RUNS=100000.
import fc from 'fast-check';
import { createHmac } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chatwootEvent, signChatwootPayload } from '../../src/testing/index.js';
import { FRAMEWORKS, type Running } from '../helpers/servers.js';

const SECRET = 'hostile-secret';
const RUNS = Number(process.env.FUZZ_RUNS ?? 3_500);
const STATUSES = new Set([200, 400, 401, 405, 408, 413]);
const CODES = new Set([
  'MISSING_SIGNATURE',
  'MALFORMED_SIGNATURE',
  'MISSING_TIMESTAMP',
  'TIMESTAMP_OUT_OF_TOLERANCE',
  'SIGNATURE_MISMATCH',
  'BODY_TOO_LARGE',
  'INVALID_JSON',
  'INVALID_PAYLOAD',
  'METHOD_NOT_ALLOWED',
  'READ_TIMEOUT',
]);

const servers: { name: string; running: Running; calls: () => number }[] = [];
const crashes: unknown[] = [];
const onCrash = (err: unknown) => void crashes.push(err);

beforeAll(async () => {
  process.on('uncaughtException', onCrash);
  process.on('unhandledRejection', onCrash);
  for (const framework of FRAMEWORKS) {
    let calls = 0;
    const running = await framework.start([
      {
        path: '/cw',
        provider: 'chatwoot',
        options: {
          secret: SECRET,
          maxBodyBytes: 32 * 1024,
          ignore: () => false,
          onEvent: () => void calls++,
        },
      },
      {
        path: '/stripe',
        provider: 'stripe',
        options: { secret: SECRET, maxBodyBytes: 32 * 1024, onEvent: () => void calls++ },
      },
    ]);
    servers.push({ name: framework.name, running, calls: () => calls });
  }
});
afterAll(async () => {
  process.off('uncaughtException', onCrash);
  process.off('unhandledRejection', onCrash);
  for (const s of servers) await s.running.close();
});

/** The status a genuine delivery gets: proof the server still works after a hostile case. */
async function validStatus(running: Running): Promise<number> {
  const valid = signChatwootPayload(chatwootEvent('message_created'), SECRET);
  const response = await fetch(running.url('/cw'), {
    method: 'POST',
    body: valid.body,
    headers: valid.headers,
  });
  return response.status;
}

/** Raw HTTP, so header values and bytes arrive exactly as generated. */
function rawPost(
  url: string,
  headers: [string, string][],
  body: Buffer,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    // Repeated names become arrays: Node sends one header line per value.
    const record: Record<string, string | string[]> = { 'content-length': String(body.length) };
    for (const [name, value] of headers) {
      const existing = record[name];
      record[name] =
        existing === undefined ? value : [...(Array.isArray(existing) ? existing : [existing]), value];
    }
    // A fresh connection per case: a server may close one after refusing a body, and a reused socket would fail.
    const req = httpRequest(url, { method: 'POST', headers: record, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    // A server may answer 413 and close while an oversized body is still being written.
    req.on('error', () => resolve({ status: -1, body: '' }));
    req.end(body);
  });
}

const printable = fc.string({
  unit: fc.constantFrom(...'abcdefABCDEF0123456789=,.-+ tv1sha256xyz'),
  maxLength: 90,
});
const hostileText = fc.oneof(
  fc.constantFrom(
    'a\r\n{"level":30,"msg":"forged"}',
    '\ud800',
    'evt_\udfff',
    'x\u2028y',
    '\u001b[31mred',
    '\u0000',
  ),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: fc.constantFrom('\ud800', '\udc00', '\n', '\r', 'a', ':', '%'), maxLength: 20 }),
);
const headerValue = fc.oneof(
  printable,
  fc.constantFrom(
    '',
    'sha256=',
    `sha256=${'a'.repeat(64)}`,
    `sha256=${'g'.repeat(64)}`,
    'x'.repeat(10_240),
    '-1',
    '1e9',
    '9'.repeat(20),
    '1.5',
  ),
  fc.integer().map(String),
);
const body = fc.oneof(
  fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
  fc.jsonValue({ maxDepth: 3 }).map((v) => Buffer.from(JSON.stringify(v))),
  fc
    .constantFrom(
      '{"__proto__":{"polluted":true},"event":"message_created"}',
      '{"constructor":{"prototype":{"x":1}},"event":"constructor"}',
      `${'['.repeat(5000)}${']'.repeat(5000)}`,
      '',
      '{"event":null}',
    )
    .map((s) => Buffer.from(s)),
  fc.constant(Buffer.alloc(40 * 1024, 0x20)),
  // Events whose signed fields would forge log lines or break key encoding: CR/LF, line separators,
  // terminal escapes, lone surrogates (JSON carries them as escapes).
  fc
    .record({
      event: fc.oneof(
        fc.constantFrom('message_created', 'message_updated', 'conversation_updated'),
        hostileText,
      ),
      id: fc.oneof(hostileText, fc.integer()),
      type: hostileText,
      content: hostileText,
      account: fc.record({ id: fc.oneof(hostileText, fc.nat()) }),
    })
    .map((v) => Buffer.from(JSON.stringify(v))),
);
const caseArb = fc.record({
  server: fc.nat(),
  body,
  signature: fc.option(headerValue, { nil: undefined }),
  timestamp: fc.option(headerValue, { nil: undefined }),
  duplicateSignature: fc.boolean(),
  contentType: fc.constantFrom(
    'application/json',
    'text/plain',
    'application/x-www-form-urlencoded',
    'multipart/form-data; boundary=x',
    'application/octet-stream',
    undefined,
  ),
  signGenuinely: fc.boolean(),
  route: fc.constantFrom('chatwoot', 'stripe'),
});

describe('hostile input through every adapter', () => {
  it(`${RUNS} generated requests: contract answers, no handler for forgeries, no crash`, async () => {
    let sent = 0;
    let genuine = 0;
    await fc.assert(
      fc.asyncProperty(caseArb, async (c) => {
        const server = servers[c.server % servers.length]!;
        const headers: [string, string][] = [];
        const bodyBytes = c.body;
        const stripe = c.route === 'stripe';
        if (c.signGenuinely) {
          // Genuinely signed hostile bytes: verification passes, parsing must still refuse or accept cleanly.
          const ts = String(Math.floor(Date.now() / 1000));
          const sig = createHmac('sha256', SECRET).update(`${ts}.`).update(bodyBytes).digest('hex');
          if (stripe) headers.push(['stripe-signature', `t=${ts},v1=${sig}`]);
          else headers.push(['x-chatwoot-timestamp', ts], ['x-chatwoot-signature', `sha256=${sig}`]);
        } else if (stripe) {
          const forged = `t=${c.timestamp ?? ''},v1=${c.signature ?? ''}`;
          headers.push(['stripe-signature', c.signature === undefined ? forged : c.signature]);
          if (c.duplicateSignature) headers.push(['stripe-signature', forged]);
        } else {
          if (c.signature !== undefined) headers.push(['x-chatwoot-signature', c.signature]);
          if (c.signature !== undefined && c.duplicateSignature)
            headers.push(['x-chatwoot-signature', c.signature]);
          if (c.timestamp !== undefined) headers.push(['x-chatwoot-timestamp', c.timestamp]);
        }
        if (c.contentType !== undefined) headers.push(['content-type', c.contentType]);
        const before = server.calls();
        const answer = await rawPost(server.running.url(stripe ? '/stripe' : '/cw'), headers, bodyBytes);
        sent++;
        if (answer.status === 431) {
          // Node's own limit on header size (16 KB) answers before any framework code runs.
          expect(headers.reduce((n, [k, v]) => n + k.length + v.length, 0)).toBeGreaterThan(8 * 1024);
          expect(server.calls()).toBe(before);
          return;
        }
        if (answer.status === -1) {
          expect(bodyBytes.length, `${server.name}: connection error on a small body`).toBeGreaterThan(
            32 * 1024,
          );
          expect(server.calls()).toBe(before);
          return;
        }
        expect(STATUSES.has(answer.status), `${server.name}: status ${answer.status} ${answer.body}`).toBe(
          true,
        );
        expect(answer.body, `${server.name}: status ${answer.status} with a non-JSON body`).toMatch(/^\{/);
        const parsed = JSON.parse(answer.body) as { ok?: boolean; error?: { code: string } };
        if (answer.status === 200) {
          expect(c.signGenuinely).toBe(true);
          genuine++;
        } else {
          expect(CODES.has(parsed.error?.code ?? ''), `${server.name}: ${answer.body}`).toBe(true);
          expect(server.calls()).toBe(before);
        }
        expect(crashes).toEqual([]);
        expect(({} as Record<string, unknown>).polluted).toBeUndefined();
      }),
      { numRuns: RUNS, seed: 1_123_2026 },
    );
    console.log(
      `hostile input: ${sent} requests over ${servers.length} adapters, ${genuine} genuinely signed objects processed, 0 crashes`,
    );
    for (const server of servers) {
      expect(await validStatus(server.running), server.name).toBe(200);
    }
  }, 600_000);

  it('a client that aborts mid-body leaves every server answering', async () => {
    for (const server of servers) {
      await new Promise<void>((resolve) => {
        const req = httpRequest(server.running.url('/cw'), {
          method: 'POST',
          headers: { 'content-length': '5000', 'content-type': 'application/json' },
        });
        req.on('error', () => resolve());
        req.write('{"event":"message_cr');
        setTimeout(() => {
          req.destroy();
          resolve();
        }, 30);
      });
      expect(await validStatus(server.running), server.name).toBe(200);
    }
    await new Promise((r) => setTimeout(r, 100));
    expect(crashes).toEqual([]);
  });
});
