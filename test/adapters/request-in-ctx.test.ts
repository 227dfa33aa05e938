// Handlers get the framework's request as ctx.req, typed per adapter: a per-tenant route reads its
// parameter (Express, Fastify), what earlier middleware left (Koa's ctx.state), or the URL (Fetch).
import express5 from 'express';
import express4 from 'express4';
import fastify5 from 'fastify';
import fastify4 from 'fastify4';
import Koa3 from 'koa';
import Koa2 from 'koa2';
import { afterEach, describe, expect, it } from 'vitest';
import * as expressAdapter from '../../src/adapters/express.js';
import * as fastifyAdapter from '../../src/adapters/fastify.js';
import * as fetchAdapter from '../../src/adapters/fetch.js';
import * as koaAdapter from '../../src/adapters/koa.js';
import { createChatwootHandler } from '../../src/index.js';
import {
  chatwootEvent,
  signChatwootPayload,
  signStripePayload,
  stripeEvent,
} from '../../src/testing/index.js';
import { listening, serveFetch, type Running } from '../helpers/servers.js';

const CW = 'cw-request-in-ctx';
const WH = 'whsec_request_in_ctx';
let running: Running | undefined;

afterEach(async () => {
  await running?.close();
  running = undefined;
});

async function deliverChatwoot(path: string): Promise<number> {
  const signed = signChatwootPayload(chatwootEvent('message_created'), CW);
  const res = await fetch(running!.url(path), { method: 'POST', headers: signed.headers, body: signed.body });
  await res.arrayBuffer();
  return res.status;
}

describe('ctx.req', () => {
  it.each([
    ['express 5', () => express5()],
    ['express 4', () => express4()],
  ])('%s: the route parameter of /cw/:account', async (_name, create) => {
    const seen: string[] = [];
    const app = create();
    app.post(
      '/cw/:account',
      expressAdapter.chatwootWebhook({
        secret: CW,
        logger: false,
        on: { message_created: (_event, ctx) => void seen.push(ctx.req.params.account!) },
      }),
    );
    // Express's own Request type, named: its methods are typed on ctx.req.
    app.post(
      '/typed/:account',
      expressAdapter.chatwootWebhook<express5.Request>({
        secret: CW,
        logger: false,
        onEvent: (_event, ctx) =>
          void seen.push(`${ctx.req.get('host') ? 'host' : 'none'}:${ctx.req.params.account}`),
      }),
    );
    running = await listening(app.listen(0, '127.0.0.1'));
    expect(await deliverChatwoot('/cw/acme')).toBe(200);
    expect(await deliverChatwoot('/cw/globex')).toBe(200);
    expect(await deliverChatwoot('/typed/initech')).toBe(200);
    expect(seen).toEqual(['acme', 'globex', 'host:initech']);
  });

  it.each([
    ['fastify 5', () => fastify5()],
    ['fastify 4', () => fastify4() as unknown as ReturnType<typeof fastify5>],
  ])('%s: request.params and the request id', async (_name, create) => {
    const seen: unknown[] = [];
    const app = create();
    await app.register(
      fastifyAdapter.stripeWebhook({
        path: '/stripe/:account',
        secret: WH,
        logger: false,
        onEvent: (event, ctx) => void seen.push([event.type, ctx.req.params, typeof ctx.req.id]),
      }),
    );
    await app.listen({ port: 0, host: '127.0.0.1' });
    running = await listening(app.server);
    const signed = signStripePayload(stripeEvent('invoice.paid'), WH);
    const res = await fetch(running.url('/stripe/acme'), {
      method: 'POST',
      headers: signed.headers,
      body: signed.body,
    });
    expect(res.status).toBe(200);
    expect(seen).toEqual([['invoice.paid', { account: 'acme' }, 'string']]);
  });

  it.each([
    ['koa 3', () => new Koa3()],
    ['koa 2', () => new Koa2()],
  ])('%s: the Koa context, with what earlier middleware put in ctx.state', async (_name, create) => {
    const seen: unknown[] = [];
    const app = create();
    app.use(async (ctx, next) => {
      ctx.state.tenant = ctx.get('x-tenant');
      await next();
    });
    app.use(
      koaAdapter.chatwootWebhook({
        path: '/cw',
        secret: CW,
        logger: false,
        onEvent: (_event, ctx) => void seen.push([ctx.req.state?.tenant, ctx.req.path]),
      }),
    );
    running = await listening(app.listen(0, '127.0.0.1'));
    const signed = signChatwootPayload(chatwootEvent('message_created'), CW);
    const res = await fetch(running.url('/cw'), {
      method: 'POST',
      headers: { ...signed.headers, 'x-tenant': 'acme' },
      body: signed.body,
    });
    expect(res.status).toBe(200);
    expect(seen).toEqual([['acme', '/cw']]);
  });

  it('fetch: the Request, with its URL', async () => {
    const seen: string[] = [];
    const handler = fetchAdapter.chatwootWebhook({
      secret: CW,
      logger: false,
      onEvent: (_event, ctx) => void seen.push(new URL(ctx.req.url).pathname),
    });
    running = await listening(serveFetch(handler));
    expect(await deliverChatwoot('/cw/acme')).toBe(200);
    expect(seen).toEqual(['/cw/acme']);
  });

  it('the core handler: whatever the request carried as req, and undefined without one', async () => {
    const seen: unknown[] = [];
    const handle = createChatwootHandler<{ tenant: string } | undefined>({
      secret: CW,
      logger: false,
      onEvent: (_event, ctx) => void seen.push(ctx.req?.tenant),
    });
    for (const req of [{ tenant: 'acme' }, undefined]) {
      const signed = signChatwootPayload(chatwootEvent('message_created'), CW);
      const answer = await handle({ method: 'POST', headers: signed.headers, body: signed.body, req });
      expect(answer.status).toBe(200);
    }
    expect(seen).toEqual(['acme', undefined]);
  });
});
