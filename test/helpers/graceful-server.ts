// A web process for the graceful-stop test: Express with a Chatwoot endpoint whose handler takes HANDLER_MS
// (default 400). It prints READY <port>, ALL-IN once EXPECT requests are inside their handlers, and leaves
// the rest to stopGracefully (SIGTERM: answer what arrived, close the handler, exit 0).
import express from 'express';
import type { AddressInfo } from 'node:net';
import { chatwootWebhook } from '../../src/adapters/express.js';
import { stopGracefully } from '../../src/shutdown/index.js';

const expected = Number(process.env.EXPECT ?? 100);
let inside = 0;
const cw = chatwootWebhook({
  secret: process.env.SECRET,
  logger: false,
  on: {
    async message_created() {
      if (++inside === expected) console.log('ALL-IN');
      await new Promise((resolve) => setTimeout(resolve, Number(process.env.HANDLER_MS ?? 400)));
    },
  },
});
const app = express();
app.post('/cw', cw);
const server = app.listen(0, '127.0.0.1', () => {
  console.log(`READY ${(server.address() as AddressInfo).port}`);
});
stopGracefully(server, { close: [cw], timeoutMs: Number(process.env.STOP_MS ?? 10_000) });
