// A process whose only pg-boss worker runs one event, then closes the inbox while the handler is still
// running, and should then exit by itself. MODE=hung: the handler never settles; MODE=slow: it takes 1 s.
// Env: QUEUE, MODE, CLOSE_MS. Prints STARTED when the handler runs, CLOSED <ms> once close() resolved.
import { createStripeHandler } from '../../src/index.js';
import { createPgBossInbox } from '../../src/inbox/pg-boss.js';
import { signStripePayload, stripeEvent } from '../../src/testing/index.js';
import { INBOX_SECRET } from './cluster.js';
import { DATABASE_URL } from './services.js';

const inbox = createPgBossInbox({
  connection: DATABASE_URL,
  queueName: process.env.QUEUE ?? 'hg_close',
  logger: false,
});
let started = () => {};
const running = new Promise<void>((resolve) => (started = resolve));
const stripe = {
  secret: INBOX_SECRET,
  inbox,
  logger: false as const,
  onEvent: () => {
    console.log('STARTED');
    started();
    return process.env.MODE === 'hung'
      ? new Promise<void>(() => {})
      : new Promise<void>((resolve) => setTimeout(resolve, 1000));
  },
};
// pg-boss started (its first start can outlast the enqueue timeout on a busy machine). Two processes that
// create their queues at the same moment can deadlock in pg-boss 10's createQueue: the loser starts again.
for (let tries = 1; ; tries++) {
  try {
    await inbox.failed();
    break;
  } catch (err) {
    if (tries === 5) throw err;
    console.log(`START failed (${String(err)}), trying again`);
    await new Promise((resolve) => setTimeout(resolve, 300 * tries));
  }
}
// Delivered the way a provider does: a 5xx (the enqueue timed out on a busy machine) is sent again.
const handle = createStripeHandler(stripe);
const request = { method: 'POST', ...signStripePayload(stripeEvent('invoice.paid'), INBOX_SECRET) };
let answer = await handle(request);
for (let retry = 0; answer.status >= 500 && retry < 10; retry++) {
  console.log(`ENQUEUE ${answer.status}, sending again`);
  await new Promise((resolve) => setTimeout(resolve, 500));
  answer = await handle(request);
}
if (answer.status !== 200) throw new Error(`enqueue answered ${answer.status}`);
inbox.worker({ stripe, pollingIntervalSeconds: 0.5, logger: false });
await running;
const t0 = performance.now();
await inbox.close(Number(process.env.CLOSE_MS ?? 1000));
console.log(`CLOSED ${Math.round(performance.now() - t0)}`);
