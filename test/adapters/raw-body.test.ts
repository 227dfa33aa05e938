// Where a body parser ran first: reuse what it kept, or fail fast with the fix, never hang.
import bodyParser from '@koa/bodyparser';
import Router from '@koa/router';
import express5 from 'express';
import express4 from 'express4';
import fastify5 from 'fastify';
import fastify4 from 'fastify4';
import { Hono } from 'hono';
import Koa3 from 'koa';
import Koa2 from 'koa2';
import { afterEach, describe, expect, it } from 'vitest';
import * as expressAdapter from '../../src/adapters/express.js';
import * as fastifyAdapter from '../../src/adapters/fastify.js';
import * as fetchAdapter from '../../src/adapters/fetch.js';
import * as koaAdapter from '../../src/adapters/koa.js';
import type { Logger } from '../../src/index.js';
import {
  chatwootEvent,
  signChatwootPayload,
  signStripePayload,
  stripeEvent,
} from '../../src/testing/index.js';
import { send } from '../helpers/http.js';
import { listening, serveFetch, type Running } from '../helpers/servers.js';
import type { Server } from 'node:http';

const SECRET = 'cw-raw-body-secret';
const STRIPE_SECRET = 'whsec_raw_body';
let running: Running | undefined;
afterEach(async () => {
  await running?.close();
  running = undefined;
});

async function serve(server: Server): Promise<Running> {
  running = await listening(server);
  return running;
}

function recordingLogger(lines: string[]): Logger {
  const push = (level: string) => (obj: Record<string, unknown>, msg?: string) =>
    void lines.push(`${level} ${msg ?? ''} ${JSON.stringify(obj)}`);
  return { debug: push('debug'), info: push('info'), warn: push('warn'), error: push('error') };
}

describe.each([
  ['express 5', () => express5()],
  ['express 4', () => express4() as unknown as express5.Express],
])('%s with a body parser', (_name, create) => {
  it('answers 500 RAW_BODY_UNAVAILABLE within 1 s when express.json() consumed the body, and logs the fix', async () => {
    const lines: string[] = [];
    let calls = 0;
    const app = create();
    app.use(express5.json());
    app.post(
      '/cw',
      expressAdapter.chatwootWebhook({
        secret: SECRET,
        logger: recordingLogger(lines),
        onEvent: () => void calls++,
      }),
    );
    const server = await serve(app.listen(0, '127.0.0.1'));
    const started = Date.now();
    const answer = await send(
      server.url('/cw'),
      signChatwootPayload(chatwootEvent('message_created'), SECRET),
    );
    expect(Date.now() - started).toBeLessThan(1000);
    expect(answer).toMatchObject({ status: 500, body: { error: { code: 'RAW_BODY_UNAVAILABLE' } } });
    expect(lines.join('\n')).toMatch(/express\.raw|before app\.use\(express\.json\(\)\)/);
    expect(calls).toBe(0);
  });

  it('verifies with the bytes kept by express.json({ verify })', async () => {
    let calls = 0;
    const app = create();
    app.use(
      express5.json({
        verify: (req, _res, buf) => {
          Object.assign(req, { rawBody: buf });
        },
      }),
    );
    app.post('/cw', expressAdapter.chatwootWebhook({ secret: SECRET, onEvent: () => void calls++ }));
    const server = await serve(app.listen(0, '127.0.0.1'));
    const answer = await send(
      server.url('/cw'),
      signChatwootPayload(chatwootEvent('message_created'), SECRET),
    );
    expect(answer).toMatchObject({ status: 200, body: { ok: true } });
    expect(calls).toBe(1);
  });

  it('verifies with the Buffer express.raw() leaves in req.body', async () => {
    let calls = 0;
    const app = create();
    app.post(
      '/stripe',
      express5.raw({ type: 'application/json' }),
      expressAdapter.stripeWebhook({ secret: STRIPE_SECRET, onEvent: () => void calls++ }),
    );
    const server = await serve(app.listen(0, '127.0.0.1'));
    const answer = await send(
      server.url('/stripe'),
      signStripePayload(stripeEvent('invoice.paid'), STRIPE_SECRET),
    );
    expect(answer).toMatchObject({ status: 200, body: { ok: true } });
    expect(calls).toBe(1);
  });

  it('leaves other routes to express.json() when mounted before it', async () => {
    const app = create();
    app.post('/cw', expressAdapter.chatwootWebhook({ secret: SECRET, onEvent: () => {} }));
    app.use(express5.json());
    app.post('/api', (req, res) => void res.json({ got: (req.body as { a: number }).a }));
    const server = await serve(app.listen(0, '127.0.0.1'));
    expect(
      await send(server.url('/cw'), signChatwootPayload(chatwootEvent('message_created'), SECRET)),
    ).toMatchObject({ status: 200 });
    expect(
      await send(server.url('/api'), { body: '{"a":1}', headers: { 'content-type': 'application/json' } }),
    ).toMatchObject({
      status: 200,
      body: { got: 1 },
    });
  });
});

describe.each([
  ['koa 3', () => new Koa3()],
  ['koa 2', () => new Koa2()],
])('%s', (_name, create) => {
  it('verifies behind @koa/bodyparser, using ctx.request.rawBody', async () => {
    let calls = 0;
    const app = create();
    app.use(bodyParser());
    app.use(koaAdapter.chatwootWebhook({ path: '/cw', secret: SECRET, onEvent: () => void calls++ }));
    const server = await serve(app.listen(0, '127.0.0.1'));
    const answer = await send(
      server.url('/cw'),
      signChatwootPayload(chatwootEvent('message_created', { content: 'olá 🙂' }), SECRET),
    );
    expect(answer).toMatchObject({ status: 200, body: { ok: true } });
    expect(calls).toBe(1);
  });

  it('works under @koa/router without a path, and passes other paths on', async () => {
    let calls = 0;
    const app = create();
    const router = new Router();
    router.post('/cw', koaAdapter.chatwootWebhook({ secret: SECRET, onEvent: () => void calls++ }));
    router.get('/health', (ctx) => {
      ctx.body = 'up';
    });
    app.use(router.routes());
    const server = await serve(app.listen(0, '127.0.0.1'));
    expect(
      await send(server.url('/cw'), signChatwootPayload(chatwootEvent('message_created'), SECRET)),
    ).toMatchObject({ status: 200 });
    expect(await send(server.url('/health'), { method: 'GET' })).toMatchObject({ status: 200, body: 'up' });
    expect(calls).toBe(1);
  });

  it('with a path, leaves other requests to the next middleware', async () => {
    const app = create();
    app.use(koaAdapter.chatwootWebhook({ path: '/cw', secret: SECRET, onEvent: () => {} }));
    app.use((ctx) => {
      ctx.body = 'next';
    });
    const server = await serve(app.listen(0, '127.0.0.1'));
    expect(await send(server.url('/elsewhere'), { method: 'GET' })).toMatchObject({
      status: 200,
      body: 'next',
    });
  });

  it('answers 500 RAW_BODY_UNAVAILABLE at once when a parser consumed the body without keeping it', async () => {
    const app = create();
    app.use(async (ctx, next) => {
      for await (const _chunk of ctx.req) {
        // a body parser that keeps nothing
      }
      await next();
    });
    app.use(koaAdapter.chatwootWebhook({ path: '/cw', secret: SECRET, onEvent: () => {} }));
    const server = await serve(app.listen(0, '127.0.0.1'));
    const started = Date.now();
    const answer = await send(
      server.url('/cw'),
      signChatwootPayload(chatwootEvent('message_created'), SECRET),
    );
    expect(Date.now() - started).toBeLessThan(1000);
    expect(answer).toMatchObject({ status: 500, body: { error: { code: 'RAW_BODY_UNAVAILABLE' } } });
  });
});

describe.each([
  ['fastify 5', () => fastify5()],
  ['fastify 4', () => fastify4() as unknown as ReturnType<typeof fastify5>],
])('%s', (_name, create) => {
  it('keeps JSON parsing for a sibling route in the same app', async () => {
    let calls = 0;
    const app = create();
    await app.register(
      fastifyAdapter.chatwootWebhook({ path: '/cw', secret: SECRET, onEvent: () => void calls++ }),
    );
    app.post('/api', async (request: { body: unknown }) => ({ got: (request.body as { a: number }).a }));
    await app.listen({ port: 0, host: '127.0.0.1' });
    const server = await serve(app.server);
    expect(
      await send(server.url('/cw'), signChatwootPayload(chatwootEvent('message_created'), SECRET)),
    ).toMatchObject({ status: 200 });
    expect(
      await send(server.url('/api'), { body: '{"a":7}', headers: { 'content-type': 'application/json' } }),
    ).toMatchObject({
      status: 200,
      body: { got: 7 },
    });
    expect(calls).toBe(1);
  });

  it('verifies whatever content type the sender declares, or none', async () => {
    let calls = 0;
    const app = create();
    await app.register(
      fastifyAdapter.chatwootWebhook({ path: '/cw', secret: SECRET, onEvent: () => void calls++ }),
    );
    await app.listen({ port: 0, host: '127.0.0.1' });
    const server = await serve(app.server);
    const signed = signChatwootPayload(chatwootEvent('message_created'), SECRET);
    const { 'content-type': _ct, ...noType } = signed.headers;
    expect(
      await send(server.url('/cw'), {
        body: signed.body,
        headers: { ...noType, 'content-type': 'text/plain' },
      }),
    ).toMatchObject({ status: 200 });
    const again = signChatwootPayload(chatwootEvent('message_created'), SECRET);
    const { 'content-type': _ct2, ...bare } = again.headers;
    expect(await send(server.url('/cw'), { body: Buffer.from(again.body), headers: bare })).toMatchObject({
      status: 200,
    });
    expect(calls).toBe(2);
  });
});

describe('fetch adapter', () => {
  it('answers 500 RAW_BODY_UNAVAILABLE when the body was already read', async () => {
    const handler = fetchAdapter.chatwootWebhook({ secret: SECRET, onEvent: () => {} });
    const signed = signChatwootPayload(chatwootEvent('message_created'), SECRET);
    const request = new Request('http://localhost/cw', {
      method: 'POST',
      body: signed.body,
      headers: signed.headers,
    });
    await request.text();
    const response = await handler(request);
    expect(response.status).toBe(500);
    expect(await response.json()).toEqual({ error: { code: 'RAW_BODY_UNAVAILABLE' } });
  });

  it('mounts in Hono through c.req.raw', async () => {
    let calls = 0;
    const app = new Hono();
    const cw = fetchAdapter.chatwootWebhook({ secret: SECRET, onEvent: () => void calls++ });
    app.post('/cw', (c) => cw(c.req.raw));
    const server = await serve(serveFetch((request) => Promise.resolve(app.fetch(request))));
    const signed = signChatwootPayload(chatwootEvent('message_created'), SECRET);
    expect(await send(server.url('/cw'), signed)).toMatchObject({ status: 200, body: { ok: true } });
    expect(await send(server.url('/cw'), signed)).toMatchObject({
      status: 200,
      body: { ok: true, duplicate: true },
    });
    expect(calls).toBe(1);
  });
});
