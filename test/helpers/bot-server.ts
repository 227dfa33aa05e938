// A bot's webhook endpoint for the Chatwoot bot kit tests: a real HTTP server whose Chatwoot options are
// mounted after it listens (the double needs its URL, the bot needs the double's).
import express from 'express';
import { createServer, type RequestListener } from 'node:http';
import { chatwootWebhook } from '../../src/adapters/express.js';
import type { ChatwootWebhookOptions } from '../../src/index.js';
import { listening } from './servers.js';

export interface BotServer {
  /** The webhook's URL (POST /cw). */
  url: string;
  mount(options: ChatwootWebhookOptions): void;
  close(): Promise<void>;
}

export async function startBotServer(): Promise<BotServer> {
  let app: RequestListener | undefined;
  const server = createServer((req, res) => {
    if (app === undefined) res.writeHead(503).end();
    else app(req, res);
  }).listen(0, '127.0.0.1');
  const running = await listening(server);
  return {
    url: running.url('/cw'),
    mount(options) {
      const mounted = express();
      mounted.post('/cw', chatwootWebhook(options));
      app = mounted;
    },
    close: running.close,
  };
}
