// For every rejection path: the answer, the thrown error (message, properties, JSON, util.inspect) and
// every log line contain neither the secret, nor the signature, nor the payload.
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import {
  createChatwootHandler,
  createStripeHandler,
  verifyChatwootSignature,
  verifyStripeEvent,
  type Logger,
  type WebhookRequest,
} from '../../src/index.js';
import { signChatwootPayload, signStripePayload } from '../../src/testing/index.js';

const SECRET = 'SECRET-c0ffee-do-not-log';
const MARKER = 'PAYLOAD-MARKER-7f3a-card-4242424242424242';
const NOW_S = 1_767_225_600;
const now = () => NOW_S * 1000;

function recorder() {
  const lines: string[] = [];
  const at = (level: string) => (obj: Record<string, unknown>, msg?: string) =>
    void lines.push(`${level} ${msg} ${inspect(obj, { depth: 5 })}`);
  const logger: Logger = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
  return { lines, logger };
}

const cw = (body: string, secret = SECRET, ts = NOW_S) =>
  signChatwootPayload(body, secret, { timestamp: ts });
const st = (body: string, secret = SECRET, ts = NOW_S) => signStripePayload(body, secret, { timestamp: ts });
const event = JSON.stringify({ event: 'message_created', id: 1, content: MARKER, id_: 'evt', type: 't' });
const stripeBody = JSON.stringify({ id: 'evt_1', type: 'invoice.paid', note: MARKER });

type Case = [string, 'chatwoot' | 'stripe', WebhookRequest, Record<string, unknown>?];
const post = (
  s: { body: string; headers: Record<string, string> },
  headers: Record<string, string> = {},
): WebhookRequest => ({
  method: 'POST',
  headers: { ...s.headers, ...headers },
  body: s.body,
});
const cases: Case[] = [
  ['wrong secret', 'chatwoot', post(cw(event, 'wrong'))],
  ['tampered body', 'chatwoot', { ...post(cw(event)), body: event.replace('"id":1', '"id":2') }],
  ['stale timestamp', 'chatwoot', post(cw(event, SECRET, NOW_S - 3600))],
  ['malformed signature', 'chatwoot', post(cw(event), { 'x-chatwoot-signature': `sha256=${MARKER}` })],
  ['missing signature', 'chatwoot', post(cw(event), { 'x-chatwoot-signature': '' })],
  ['invalid JSON', 'chatwoot', post(cw(`{"x":"${MARKER}"`))],
  ['not an object', 'chatwoot', post(cw(`["${MARKER}"]`))],
  ['too large', 'chatwoot', post(cw(`{"event":"x","pad":"${MARKER.repeat(50_000)}"}`))],
  ['missing secret', 'chatwoot', post(cw(event)), { secret: undefined }],
  ['GET', 'chatwoot', { method: 'GET', headers: {}, body: event }],
  ['wrong secret', 'stripe', post(st(stripeBody, 'whsec_wrong'))],
  ['stale', 'stripe', post(st(stripeBody, SECRET, NOW_S - 3600))],
  ['future', 'stripe', post(st(stripeBody, SECRET, NOW_S + 3600))],
  ['invalid JSON', 'stripe', post(st(`{"id":"${MARKER}"`))],
  ['not an event', 'stripe', post(st(`{"note":"${MARKER}"}`))],
  ['garbage header', 'stripe', post(st(stripeBody), { 'stripe-signature': `t=1,v1=${MARKER}` })],
];

function secretsOf(req: WebhookRequest): string[] {
  const headers = req.headers as Record<string, string>;
  const signature = headers['x-chatwoot-signature'] ?? headers['stripe-signature'] ?? '';
  const hex =
    signature
      .replace(/^sha256=/, '')
      .split('v1=')
      .pop() ?? '';
  return [SECRET, MARKER, ...(hex.length >= 16 ? [hex] : [])];
}

describe.each(cases)('%s (%s)', (_name, provider, req, extra = {}) => {
  it('leaks nothing in the answer or the logs', async () => {
    const log = recorder();
    const options = {
      secret: SECRET,
      now,
      maxBodyBytes: 64 * 1024,
      logger: log.logger,
      onEvent: () => {},
      ...extra,
    };
    const handle = provider === 'chatwoot' ? createChatwootHandler(options) : createStripeHandler(options);
    const answer = await handle(req);
    expect(answer.status).toBeGreaterThanOrEqual(400);
    expect(log.lines.length).toBeGreaterThan(0);
    const seen = [JSON.stringify(answer), ...log.lines].join('\n');
    for (const secret of secretsOf(req)) expect(seen).not.toContain(secret);
  });

  it('leaks nothing in the thrown error, however it is printed', () => {
    if (req.method !== 'POST' || 'secret' in extra) return;
    let thrown: unknown;
    try {
      if (provider === 'chatwoot')
        verifyChatwootSignature(req.body as string, req.headers, { secret: SECRET, now });
      else verifyStripeEvent(req.body as string, req.headers, { secret: SECRET, now });
    } catch (err) {
      thrown = err;
    }
    if (thrown === undefined) return; // valid signature: the pipeline refuses it later (JSON, size)
    const printed = [
      String(thrown),
      JSON.stringify(thrown),
      inspect(thrown, { depth: 5, showHidden: true }),
      JSON.stringify(Object.entries(thrown as object)),
    ].join('\n');
    for (const secret of secretsOf(req)) expect(printed).not.toContain(secret);
  });
});
