// Every verified JSON body goes through the pg-boss inbox, even those PostgreSQL's jsonb cannot hold as
// values ("\u0000", a lone surrogate): the event travels as JSON text and the handler gets it back exactly.
// Jobs written by the previous version (the event as a jsonb object) still run.
import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { createChatwootHandler, createStripeHandler } from '../../src/index.js';
import { createPgBossInbox } from '../../src/inbox/pg-boss.js';
import {
  chatwootEvent,
  signChatwootPayload,
  signStripePayload,
  stripeEvent,
} from '../../src/testing/index.js';
import { sleep } from '../helpers/http.js';
import { DATABASE_URL, postgresUp, requireService } from '../helpers/services.js';

const available = await postgresUp();
const CW_SECRET = 'cw-pgboss-bodies';
const STRIPE_SECRET = 'whsec_pgboss_bodies';
const HOSTILE =
  'nul \u0000 here, a lone high \ud800 and a lone low \udc00 surrogate, and a pair \ud83d\ude00';
const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function inboxFor() {
  const queueName = `hg_bodies_${randomUUID().replaceAll('-', '')}`;
  const inbox = createPgBossInbox({ connection: DATABASE_URL, queueName, logger: false });
  cleanups.push(async () => {
    await inbox.boss.deleteQueue(queueName).catch(() => undefined);
    await inbox.close(1000);
  });
  return inbox;
}

async function until(check: () => boolean, ms = 15_000): Promise<void> {
  for (const end = Date.now() + ms; !check(); await sleep(50)) {
    if (Date.now() > end) throw new Error('timed out waiting');
  }
}

describe.runIf(requireService('PostgreSQL', available))('pg-boss inbox bodies', () => {
  it('"\\u0000" and lone surrogates in Stripe and Chatwoot events: 200 queued, handlers get the exact strings', async () => {
    const inbox = inboxFor();
    const seen: { description?: unknown; content?: unknown } = {};
    const stripe = {
      secret: STRIPE_SECRET,
      inbox,
      logger: false as const,
      on: {
        'invoice.paid': (event: { data: { object: { description: string | null } } }) =>
          void (seen.description = event.data.object.description),
      },
    };
    const chatwoot = {
      secret: CW_SECRET,
      inbox,
      logger: false as const,
      on: {
        message_created: (event: { content?: string | null }) => void (seen.content = event.content),
      },
    };
    const payment = stripeEvent('invoice.paid', { data: { object: { description: HOSTILE } } });
    const message = chatwootEvent('message_created', { content: HOSTILE });
    const stripeAnswer = await createStripeHandler(stripe)({
      method: 'POST',
      ...signStripePayload(payment, STRIPE_SECRET),
    });
    const chatwootAnswer = await createChatwootHandler(chatwoot)({
      method: 'POST',
      ...signChatwootPayload(message, CW_SECRET),
    });
    expect([stripeAnswer.status, stripeAnswer.body]).toEqual([200, expect.stringContaining('"queued":true')]);
    expect([chatwootAnswer.status, chatwootAnswer.body]).toEqual([
      200,
      expect.stringContaining('"queued":true'),
    ]);
    const worker = inbox.worker({ stripe, chatwoot, pollingIntervalSeconds: 0.5, logger: false });
    cleanups.push(() => worker.close(1000));
    await until(() => seen.description !== undefined && seen.content !== undefined);
    expect(seen.description).toBe(HOSTILE);
    expect(seen.content).toBe(HOSTILE);
  });

  it('a job written by the previous version (the event as a jsonb object) still runs', async () => {
    const inbox = inboxFor();
    const ran: string[] = [];
    const stripe = {
      secret: STRIPE_SECRET,
      inbox,
      logger: false as const,
      onEvent: (event: { id: string }) => void ran.push(event.id),
    };
    const event = stripeEvent('invoice.paid');
    expect(await inbox.failed()).toEqual([]); // starts pg-boss and the queue
    await inbox.boss.send(inbox.queueName, {
      provider: 'stripe',
      event,
      key: `stripe:${event.id}`,
      deliveryId: undefined,
      name: 'invoice.paid',
    });
    const worker = inbox.worker({ stripe, pollingIntervalSeconds: 0.5, logger: false });
    cleanups.push(() => worker.close(1000));
    await until(() => ran.length === 1);
    expect(ran).toEqual([event.id]);
  });
});
