// The servers of the HTTP benchmark, run as a separate process. For each of Express, Fastify and Koa:
// - `hookguard`: the adapter (memory store, dedup on);
// - `hand-written`: the route a user writes from Stripe's docs: a raw-body parser,
//   `Stripe.webhooks.constructEvent`, and a Map of seen event ids (the targets compare against this);
// - `bare`: a floor doing only raw buffering, the HMAC check and JSON.parse (no dedup, no tolerance).
// Prints {"name": port, ...} on stdout.
import express from 'express';
import Fastify from 'fastify';
import Koa from 'koa';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import Stripe from 'stripe';
import { express as expressAdapter, fastify as fastifyAdapter, koa as koaAdapter } from './built.js';
import { HTTP_SECRET } from './micro.js';

const onEvent = () => {};
const expressStripe = expressAdapter.stripeWebhook;
const fastifyStripe = fastifyAdapter.stripeWebhook;
const koaStripe = koaAdapter.stripeWebhook;

/** The route from Stripe's docs, with a Map as the dedup a user adds: true when the event is accepted. */
function handWritten(seen: Map<string, true>) {
  return (body: Buffer, header: string | undefined): boolean => {
    if (header === undefined) return false;
    let event: Stripe.Event;
    try {
      event = Stripe.webhooks.constructEvent(body, header, HTTP_SECRET);
    } catch {
      return false;
    }
    if (!seen.has(event.id)) seen.set(event.id, true);
    return true;
  };
}

/** The least a correct receiver does: check the HMAC of the raw body and parse it. */
function bare(body: Buffer, header: string | undefined): boolean {
  if (header === undefined) return false;
  let t = '';
  let v1 = '';
  for (const part of header.split(',')) {
    if (part.startsWith('t=')) t = part.slice(2);
    else if (part.startsWith('v1=')) v1 = part.slice(3);
  }
  const expected = createHmac('sha256', HTTP_SECRET).update(`${t}.`).update(body).digest();
  const received = Buffer.from(v1, 'hex');
  if (received.length !== expected.length || !timingSafeEqual(expected, received)) return false;
  JSON.parse(body.toString('utf8'));
  return true;
}

/** Koa's request listener returns a promise it settles itself (errors become 500s). */
const nodeHandler = (app: Koa) => {
  const callback = app.callback();
  return (req: IncomingMessage, res: ServerResponse) => void callback(req, res);
};

const port = (server: Server) => (server.address() as AddressInfo).port;
const listen = (server: Server) =>
  new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve(port(server))));

type Check = (body: Buffer, header: string | undefined) => boolean;

function expressRoute(check: Check) {
  const app = express();
  app.post('/stripe', express.raw({ type: '*/*' }), (req, res) => {
    const ok = check(req.body as Buffer, req.headers['stripe-signature'] as string | undefined);
    res.status(ok ? 200 : 401).json({ ok });
  });
  return listen(createServer(app));
}

async function fastifyRoute(check: Check) {
  const app = Fastify();
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  app.post('/stripe', async (request, reply) => {
    const ok = check(request.body as Buffer, request.headers['stripe-signature'] as string | undefined);
    return reply.code(ok ? 200 : 401).send({ ok });
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  return port(app.server);
}

function koaRoute(check: Check) {
  const app = new Koa();
  app.use(async (ctx) => {
    const chunks: Buffer[] = [];
    for await (const chunk of ctx.req) chunks.push(chunk as Buffer);
    const ok = check(Buffer.concat(chunks), ctx.get('stripe-signature') || undefined);
    ctx.status = ok ? 200 : 401;
    ctx.body = { ok };
  });
  return listen(createServer(nodeHandler(app)));
}

async function main(): Promise<void> {
  const ports: Record<string, number> = {};

  const expressApp = express();
  expressApp.post('/stripe', expressStripe({ secret: HTTP_SECRET, onEvent }));
  ports['express hookguard'] = await listen(createServer(expressApp));
  ports['express hand-written'] = await expressRoute(handWritten(new Map()));
  ports['express bare'] = await expressRoute(bare);

  const fastifyApp = Fastify();
  await fastifyApp.register(fastifyStripe({ path: '/stripe', secret: HTTP_SECRET, onEvent }));
  await fastifyApp.listen({ port: 0, host: '127.0.0.1' });
  ports['fastify hookguard'] = port(fastifyApp.server);
  ports['fastify hand-written'] = await fastifyRoute(handWritten(new Map()));
  ports['fastify bare'] = await fastifyRoute(bare);

  const koaApp = new Koa();
  koaApp.use(koaStripe({ path: '/stripe', secret: HTTP_SECRET, onEvent }));
  ports['koa hookguard'] = await listen(createServer(nodeHandler(koaApp)));
  ports['koa hand-written'] = await koaRoute(handWritten(new Map()));
  ports['koa bare'] = await koaRoute(bare);

  process.stdout.write(`${JSON.stringify(ports)}\n`);
}

await main();
