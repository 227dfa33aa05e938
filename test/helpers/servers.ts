// Real servers for the adapter tests: each framework mounts hookguard's adapter on an ephemeral port on
// 127.0.0.1, and the tests talk to it over HTTP.
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import express5 from 'express';
import express4 from 'express4';
import fastify5 from 'fastify';
import fastify4 from 'fastify4';
import Koa3 from 'koa';
import Koa2 from 'koa2';
import type { ChatwootWebhookOptions, StripeWebhookOptions } from '../../src/index.js';
import * as expressAdapter from '../../src/adapters/express.js';
import * as fastifyAdapter from '../../src/adapters/fastify.js';
import * as koaAdapter from '../../src/adapters/koa.js';
import * as fetchAdapter from '../../src/adapters/fetch.js';

export type Route =
  | { path: string; provider: 'chatwoot'; options: ChatwootWebhookOptions }
  | { path: string; provider: 'stripe'; options: StripeWebhookOptions };

export interface Running {
  url: (path: string) => string;
  close: () => Promise<void>;
}

export interface Framework {
  name: string;
  start(routes: Route[]): Promise<Running>;
}

/** A plain node:http server around a core handler (`createStripeHandler`, …), on an ephemeral port. */
export function serveCore(
  handle: (req: { method: string; headers: IncomingMessage['headers']; body: Buffer }) => Promise<{
    status: number;
    headers: Record<string, string>;
    body: string;
  }>,
): Promise<Running> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      void handle({ method: 'POST', headers: req.headers, body: Buffer.concat(chunks) }).then((answer) =>
        res.writeHead(answer.status, answer.headers).end(answer.body),
      );
    });
  }).listen(0, '127.0.0.1');
  return listening(server);
}

/** Waits for `server` to listen on its ephemeral port and describes how to reach and stop it. */
export async function listening(server: Server): Promise<Running> {
  if (!server.listening) await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: (path) => `http://127.0.0.1:${port}${path}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function expressFramework(name: string, create: () => express5.Express): Framework {
  return {
    name,
    async start(routes) {
      const app = create();
      for (const route of routes) {
        const handler =
          route.provider === 'chatwoot'
            ? expressAdapter.chatwootWebhook(route.options)
            : expressAdapter.stripeWebhook(route.options);
        // app.all, so other methods reach the adapter and get its 405 (app.post would let Express answer 404).
        app.all(route.path, handler);
      }
      return listening(app.listen(0, '127.0.0.1'));
    },
  };
}

function fastifyFramework(name: string, create: () => ReturnType<typeof fastify5>): Framework {
  return {
    name,
    async start(routes) {
      const app = create();
      for (const route of routes) {
        const options = { ...route.options, path: route.path };
        await app.register(
          route.provider === 'chatwoot'
            ? fastifyAdapter.chatwootWebhook(options as ChatwootWebhookOptions & { path: string })
            : fastifyAdapter.stripeWebhook(options as StripeWebhookOptions & { path: string }),
        );
      }
      await app.listen({ port: 0, host: '127.0.0.1' });
      return listening(app.server);
    },
  };
}

function koaFramework(name: string, create: () => Koa3): Framework {
  return {
    name,
    async start(routes) {
      const app = create();
      for (const route of routes) {
        const options = { ...route.options, path: route.path };
        app.use(
          route.provider === 'chatwoot'
            ? koaAdapter.chatwootWebhook(options as ChatwootWebhookOptions)
            : koaAdapter.stripeWebhook(options as StripeWebhookOptions),
        );
      }
      return listening(app.listen(0, '127.0.0.1'));
    },
  };
}

/** Bridges Node's server to a Fetch handler, the way Next.js, Hono's node server and others do. */
export function serveFetch(handle: (request: Request) => Promise<Response>): Server {
  return createServer((req: IncomingMessage, res: ServerResponse) => {
    const hasBody = req.method !== 'GET' && req.method !== 'HEAD';
    const request = new Request(`http://${req.headers.host ?? 'localhost'}${req.url ?? '/'}`, {
      method: req.method ?? 'GET',
      headers: Object.entries(req.headers).flatMap(([k, v]) =>
        v === undefined
          ? []
          : Array.isArray(v)
            ? v.map((item): [string, string] => [k, item])
            : [[k, v] as [string, string]],
      ),
      ...(hasBody ? { body: Readable.toWeb(req) as ReadableStream, duplex: 'half' } : {}),
    });
    handle(request)
      .then(async (response) => {
        res.writeHead(response.status, Object.fromEntries(response.headers));
        res.end(Buffer.from(await response.arrayBuffer()));
      })
      .catch(() => {
        res.statusCode = 500;
        res.end();
      });
  }).listen(0, '127.0.0.1');
}

const fetchFramework: Framework = {
  name: 'fetch',
  async start(routes) {
    const handlers = new Map(
      routes.map((route) => [
        route.path,
        route.provider === 'chatwoot'
          ? fetchAdapter.chatwootWebhook(route.options)
          : fetchAdapter.stripeWebhook(route.options),
      ]),
    );
    return listening(
      serveFetch(async (request) => {
        const handler = handlers.get(new URL(request.url).pathname);
        return handler === undefined ? new Response('not found', { status: 404 }) : handler(request);
      }),
    );
  },
};

export const FRAMEWORKS: Framework[] = [
  expressFramework('express 5', () => express5()),
  expressFramework('express 4', () => express4()),
  fastifyFramework('fastify 5', () => fastify5()),
  fastifyFramework('fastify 4', () => fastify4()),
  koaFramework('koa 3', () => new Koa3()),
  koaFramework('koa 2', () => new Koa2()),
  fetchFramework,
];
