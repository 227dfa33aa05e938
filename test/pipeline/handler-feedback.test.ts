// What a user sees of their own handlers: their ctx.log.info lines under the default logger, a warning
// when an inline handler keeps Chatwoot waiting, which attempt a worker run is (typed, no cast), which
// failures the engine retries and which end in the dead letter, and no alarm from `next build`.
import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createBullMQInbox } from '../../src/inbox/bullmq.js';
import { createChatwootHandler, createStripeHandler, type ChatwootWebhookOptions } from '../../src/index.js';
import {
  chatwootEvent,
  signChatwootPayload,
  signStripePayload,
  stripeEvent,
} from '../../src/testing/index.js';
import { sleep } from '../helpers/http.js';
import { redisUp, requireService } from '../helpers/services.js';

const available = await redisUp();
const CW_SECRET = 'cw-feedback-secret';
const STRIPE_SECRET = 'whsec_feedback';

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  vi.unstubAllEnvs();
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Every console line of one level, as printed. */
function consoleLines(level: 'info' | 'warn' | 'error'): string[] {
  const lines: string[] = [];
  vi.spyOn(console, level).mockImplementation((line: unknown) => void lines.push(String(line)));
  return lines;
}

const incoming = () => chatwootEvent('message_created', { message_type: 'incoming' });

describe('ctx.log under the default logger', () => {
  it("prints the handler's own info lines with the delivery's fields, not hookguard's own", async () => {
    const info = consoleLines('info');
    const handle = createChatwootHandler({
      secret: CW_SECRET,
      on: { message_created: (_event, ctx) => ctx.log.info({ tutor: 'ada' }, 'answered the student') },
    });
    const answer = await handle({ method: 'POST', ...signChatwootPayload(incoming(), CW_SECRET) });
    expect(answer.status).toBe(200);
    expect(info).toEqual([
      expect.stringMatching(
        /^hookguard info: answered the student provider=chatwoot event=message_created key=\S+ deliveryId=\S+ tutor=ada$/,
      ),
    ]);
  });

  it("goes to the user's logger as it is, and with `logger: false` nowhere", async () => {
    const info = consoleLines('info');
    const mine: string[] = [];
    const logger = { info: (_: object, msg?: string) => void mine.push(msg ?? ''), warn() {}, error() {} };
    for (const option of [logger, false] as const) {
      const handle = createStripeHandler({
        secret: STRIPE_SECRET,
        logger: option,
        onEvent: (_event, ctx) => ctx.log.info({}, 'fulfilled'),
      });
      await handle({ method: 'POST', ...signStripePayload(stripeEvent('invoice.paid'), STRIPE_SECRET) });
    }
    expect(mine).toEqual(['fulfilled', 'processed']); // the user's logger gets hookguard's info lines too
    expect(info).toEqual([]);
  });
});

describe('an inline handler that keeps the sender waiting', () => {
  it.concurrent.each([
    ['chatwoot', 4200, 1],
    ['chatwoot', 300, 0],
    ['stripe', 4200, 0],
  ] as const)('%s, a %i ms handler: %i warning(s) naming the inbox', async (provider, ms, warnings) => {
    const lines: string[] = [];
    const logger = {
      info() {},
      warn: (obj: object, msg?: string) => void lines.push(`${msg} ${JSON.stringify(obj)}`),
      error() {},
    };
    const slow = () => sleep(ms);
    const answer =
      provider === 'chatwoot'
        ? await createChatwootHandler({ secret: CW_SECRET, logger, onEvent: slow })({
            method: 'POST',
            ...signChatwootPayload(incoming(), CW_SECRET),
          })
        : await createStripeHandler({ secret: STRIPE_SECRET, logger, onEvent: slow })({
            method: 'POST',
            ...signStripePayload(stripeEvent('invoice.paid'), STRIPE_SECRET),
          });
    expect(answer.status).toBe(200);
    expect(lines).toHaveLength(warnings);
    if (warnings > 0) {
      expect(lines[0]).toMatch(
        /^the answer took 4\.\d s, close to the 5 s chatwoot waits for it: .*durable inbox/,
      );
      expect(lines[0]).toContain('"senderWaitsMs":5000');
    }
  });

  it('warns at creation when ackAfterMs is not below the 5 s Chatwoot waits', () => {
    const warn = consoleLines('warn');
    createChatwootHandler({ secret: CW_SECRET, ackAfterMs: 5000, onEvent() {} });
    createChatwootHandler({ secret: CW_SECRET, ackAfterMs: 3000, onEvent() {} });
    expect(warn).toEqual([
      expect.stringMatching(/^hookguard warn: ackAfterMs is not below the time chatwoot waits/),
    ]);
  });
});

describe('a missing secret at build time', () => {
  it('is not an error while `next build` collects page data, and is one at run time', () => {
    const error = consoleLines('error');
    vi.stubEnv('NEXT_PHASE', 'phase-production-build');
    createChatwootHandler({ secret: undefined, onEvent() {} });
    expect(error).toEqual([]);
    vi.stubEnv('NEXT_PHASE', 'phase-production-server');
    createChatwootHandler({ secret: undefined, onEvent() {} });
    expect(error).toEqual([expect.stringContaining('No chatwoot webhook secret is set')]);
  });
});

describe.runIf(requireService('Redis', available))('an inbox worker tells the user', () => {
  it('ctx.attempt without a cast, options without a secret, and what becomes of each failure', async () => {
    const queueName = `hg-feedback-${randomUUID()}`;
    const inbox = createBullMQInbox({
      connection: { host: '127.0.0.1', port: 6379 },
      queueName,
      attempts: 2,
      backoffMs: 20,
      logger: false,
    });
    cleanups.push(async () => {
      await inbox.queue.obliterate({ force: true }).catch(() => undefined);
      await inbox.close();
    });
    const info = consoleLines('info');
    const errors = consoleLines('error');
    const attempts: (number | undefined)[] = [];
    const on: ChatwootWebhookOptions['on'] = {
      message_created: (_event, ctx) => {
        attempts.push(ctx.attempt); // typed on the handler's context: no cast
        ctx.log.info({}, `tutor run ${ctx.attempt ?? 0}`);
        throw new Error('model offline');
      },
    };
    const web = { secret: CW_SECRET, inbox, logger: false as const, on } satisfies ChatwootWebhookOptions;
    const answer = await createChatwootHandler(web)({
      method: 'POST',
      ...signChatwootPayload(incoming(), CW_SECRET),
    });
    expect(answer.body).toBe('{"ok":true,"queued":true}');
    // No secret: a worker verifies nothing.
    const worker = inbox.worker({ chatwoot: { on } });
    cleanups.push(() => worker.close(5000));
    for (let i = 0; i < 200 && (await inbox.failed()).length === 0; i++) await sleep(25);
    expect(attempts).toEqual([1, 2]);
    expect(info).toEqual([
      expect.stringMatching(/^hookguard info: tutor run 1 .*attempt=1$/),
      expect.stringMatching(/^hookguard info: tutor run 2 .*attempt=2$/),
    ]);
    expect(errors).toEqual([
      expect.stringMatching(
        /^hookguard error: handler failed in the inbox worker; the engine will retry it with backoff /,
      ),
      expect.stringMatching(
        /^hookguard error: handler failed on its last attempt: the job is kept as failed \(dead letter\)/,
      ),
    ]);
  });
});
