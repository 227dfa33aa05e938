// The web process of the frozen-engine test: Stripe deliveries into the inbox of ENGINE (bullmq or
// pg-boss) at ENGINE_URL, answered over HTTP; GET /heap answers the heap after a full GC (run it with
// --expose-gc). Prints READY <port>.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createStripeHandler } from '../../src/index.js';
import type { Inbox } from '../../src/pipeline/enqueue-stage.js';

const url = process.env.ENGINE_URL!;
let inbox: Inbox;
if (process.env.ENGINE === 'pg-boss') {
  const { createPgBossInbox } = await import('../../src/inbox/pg-boss.js');
  inbox = createPgBossInbox({ connection: url, queueName: 'frozen', logger: false });
} else {
  const { createBullMQInbox } = await import('../../src/inbox/bullmq.js');
  const { port } = new URL(url);
  inbox = createBullMQInbox({
    connection: { host: '127.0.0.1', port: Number(port) },
    queueName: 'frozen',
    logger: false,
  });
}
const handle = createStripeHandler({ secret: process.env.SECRET!, inbox, logger: false, onEvent() {} });

const server = createServer((req, res) => {
  if (req.method === 'GET') {
    global.gc!();
    global.gc!();
    res.end(String(process.memoryUsage().heapUsed));
    return;
  }
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    void handle({ method: 'POST', headers: req.headers, body: Buffer.concat(chunks) }).then((answer) =>
      res.writeHead(answer.status, answer.headers).end(answer.body),
    );
  });
});
server.keepAliveTimeout = 60_000; // the test's client keeps its connections across the pauses
server.listen(0, '127.0.0.1', () => console.log(`READY ${(server.address() as AddressInfo).port}`));
