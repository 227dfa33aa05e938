// The servers of the HTTP benchmark, run as a separate process: for Express, Fastify and Koa, the
// hookguard adapter (memory store, dedup on) beside a hand-written route doing only raw buffering, the
// HMAC check and JSON.parse. Prints {"name": port, ...} on stdout.
import express from 'express';
import Fastify from 'fastify';
import Koa from 'koa';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { express as expressAdapter, fastify as fastifyAdapter, koa as koaAdapter } from './built.js';
import { HTTP_SECRET } from './micro.js';

const onEvent = () => {};
const expressStripe = expressAdapter.stripeWebhook;
const fastifyStripe = fastifyAdapter.stripeWebhook;
const koaStripe = koaAdapter.stripeWebhook;

/** The least a correct receiver does: check the HMAC of the raw body and parse it. */
function handWritten(body: Buffer, header: string | undefined): boolean {
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

async function main(): Promise<void> {
  const ports: Record<string, number> = {};

  const expressApp = express();
  expressApp.post('/stripe', expressStripe({ secret: HTTP_SECRET, onEvent }));
  ports['express hookguard'] = await listen(createServer(expressApp));
  const expressBase = express();
  expressBase.post('/stripe', express.raw({ type: '*/*' }), (req, res) => {
    const ok = handWritten(req.body as Buffer, req.headers['stripe-signature'] as string | undefined);
    res.status(ok ? 200 : 401).json({ ok });
  });
  ports['express hand-written'] = await listen(createServer(expressBase));

  const fastifyApp = Fastify();
  await fastifyApp.register(fastifyStripe({ path: '/stripe', secret: HTTP_SECRET, onEvent }));
  await fastifyApp.listen({ port: 0, host: '127.0.0.1' });
  ports['fastify hookguard'] = port(fastifyApp.server);
  const fastifyBase = Fastify();
  fastifyBase.removeAllContentTypeParsers();
  fastifyBase.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  fastifyBase.post('/stripe', async (request, reply) => {
    const ok = handWritten(request.body as Buffer, request.headers['stripe-signature'] as string | undefined);
    return reply.code(ok ? 200 : 401).send({ ok });
  });
  await fastifyBase.listen({ port: 0, host: '127.0.0.1' });
  ports['fastify hand-written'] = port(fastifyBase.server);

  const koaApp = new Koa();
  koaApp.use(koaStripe({ path: '/stripe', secret: HTTP_SECRET, onEvent }));
  ports['koa hookguard'] = await listen(createServer(nodeHandler(koaApp)));
  const koaBase = new Koa();
  koaBase.use(async (ctx) => {
    const chunks: Buffer[] = [];
    for await (const chunk of ctx.req) chunks.push(chunk as Buffer);
    const ok = handWritten(Buffer.concat(chunks), ctx.get('stripe-signature') || undefined);
    ctx.status = ok ? 200 : 401;
    ctx.body = { ok };
  });
  ports['koa hand-written'] = await listen(createServer(nodeHandler(koaBase)));

  process.stdout.write(`${JSON.stringify(ports)}\n`);
}

await main();
