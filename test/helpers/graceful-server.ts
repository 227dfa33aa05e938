// A web process for the graceful-stop test: a Chatwoot endpoint on FRAMEWORK (express, the default; koa;
// fastify) whose handler takes HANDLER_MS (default 400). It prints READY <port>, ALL-IN once EXPECT requests
// are inside their handlers, and leaves the rest to stopGracefully, called as the README says for each
// framework (SIGTERM: answer what arrived, close the handler, exit 0).
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { stopGracefully } from '../../src/shutdown/index.js';

const expected = Number(process.env.EXPECT ?? 100);
let inside = 0;
const options = {
  secret: process.env.SECRET,
  logger: false as const,
  on: {
    async message_created() {
      if (++inside === expected) console.log('ALL-IN');
      await new Promise((resolve) => setTimeout(resolve, Number(process.env.HANDLER_MS ?? 400)));
    },
  },
};
const stop = { timeoutMs: Number(process.env.STOP_MS ?? 10_000) };
const ready = (server: Server) => console.log(`READY ${(server.address() as AddressInfo).port}`);

switch (process.env.FRAMEWORK ?? 'express') {
  case 'express': {
    const { default: express } = await import('express');
    const { chatwootWebhook } = await import('../../src/adapters/express.js');
    const cw = chatwootWebhook(options);
    const app = express();
    app.post('/cw', cw);
    const server = app.listen(0, '127.0.0.1', () => ready(server));
    stopGracefully(server, { ...stop, close: [cw] });
    break;
  }
  case 'koa': {
    const { default: Koa } = await import('koa');
    const { chatwootWebhook } = await import('../../src/adapters/koa.js');
    const cw = chatwootWebhook({ ...options, path: '/cw' });
    const app = new Koa();
    app.use(cw);
    const server = app.listen(0, '127.0.0.1', () => ready(server));
    stopGracefully(server, { ...stop, close: [cw] });
    break;
  }
  case 'fastify': {
    const { default: Fastify } = await import('fastify');
    const { chatwootWebhook } = await import('../../src/adapters/fastify.js');
    const cw = chatwootWebhook({ ...options, path: '/cw' });
    const app = Fastify();
    app.addHook('onClose', (_app, done) => {
      console.log('FASTIFY-CLOSED'); // the app's own hooks run too, after the drain
      done();
    });
    await app.register(cw);
    await app.listen({ port: 0, host: '127.0.0.1' });
    ready(app.server);
    stopGracefully(app, { ...stop, close: [cw] });
    break;
  }
}
