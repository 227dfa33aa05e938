// Exactly once under pressure: floods of new ids, hostile but signed values, and key functions that fail.
import { describe, expect, it } from 'vitest';
import {
  createMemoryDedupStore,
  createStripeHandler,
  type Logger,
  type WebhookOutcome,
} from '../../src/index.js';
import { signStripePayload, stripeEvent } from '../../src/testing/index.js';

const SECRET = 'whsec_pressure';

const post = (signed: { body: string; headers: Record<string, string> }) => ({
  method: 'POST',
  headers: signed.headers,
  body: signed.body,
});

function recorder() {
  const lines: { level: string; obj: Record<string, unknown>; msg: string | undefined }[] = [];
  const at = (level: string) => (obj: Record<string, unknown>, msg?: string) =>
    void lines.push({ level, obj, msg });
  const logger: Logger = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
  return { lines, logger };
}

describe('under pressure', () => {
  it('a flood of 12,000 new ids through the default store cannot let a retry of a slow event run it twice', async () => {
    let slowRuns = 0;
    let concurrent = 0;
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const slowEvent = stripeEvent('invoice.paid');
    const handle = createStripeHandler({
      secret: SECRET,
      logger: false,
      onEvent: async (event) => {
        if (event.id !== slowEvent.id) return;
        slowRuns++;
        concurrent++;
        await gate;
        concurrent--;
      },
    });
    const signed = signStripePayload(slowEvent, SECRET);
    const first = handle(post(signed));
    for (let i = 0; i < 12_000; i++) {
      const answer = await handle(post(signStripePayload(stripeEvent('invoice.paid'), SECRET)));
      expect(answer.status).toBe(200);
    }
    expect((await handle(post(signed))).status).toBe(409); // still in flight, not claimed again
    expect(concurrent).toBe(1);
    release();
    expect((await first).status).toBe(200);
    expect((await handle(post(signed))).body).toBe('{"ok":true,"duplicate":true}');
    expect(slowRuns).toBe(1);
  });

  it('dedupes an id holding a lone surrogate (it cannot be URI-encoded) instead of running unguarded', async () => {
    let runs = 0;
    const handle = createStripeHandler({ secret: SECRET, logger: false, onEvent: () => void runs++ });
    const keys: (string | undefined)[] = [];
    const spy = createStripeHandler({
      secret: SECRET,
      logger: false,
      store: false,
      onEvent: (_e, ctx) => void keys.push(ctx.key),
    });
    for (const id of ['evt_\ud800', 'evt_\ud801']) {
      // JSON can carry a lone surrogate as an escape; the parsed id holds it.
      const body = JSON.stringify({ ...stripeEvent('invoice.paid'), id: 'ID' }).replace(
        '"ID"',
        JSON.stringify(id),
      );
      const signed = signStripePayload(body, SECRET);
      expect(JSON.parse(signed.body).id).toBe(id);
      await handle(post(signed));
      expect((await handle(post(signed))).body).toBe('{"ok":true,"duplicate":true}');
      await spy(post(signed));
    }
    expect(runs).toBe(2);
    expect(keys).toHaveLength(2);
    expect(keys[0]).toMatch(/^stripe:/);
    expect(keys[0]).not.toBe(keys[1]); // \ud800 and \ud801 stay apart
  });

  it('answers 500 HANDLER_FAILED, logged, when dedupKey throws, and runs nothing unguarded', async () => {
    let runs = 0;
    const { lines, logger } = recorder();
    const outcomes: WebhookOutcome[] = [];
    const handle = createStripeHandler({
      secret: SECRET,
      logger,
      onOutcome: (o) => void outcomes.push(o),
      dedupKey: () => {
        throw new TypeError('cannot read tenant');
      },
      onEvent: () => void runs++,
    });
    const answer = await handle(post(signStripePayload(stripeEvent('invoice.paid'), SECRET)));
    expect(answer).toMatchObject({ status: 500, body: '{"error":{"code":"HANDLER_FAILED"}}' });
    expect(runs).toBe(0);
    expect(outcomes).toMatchObject([{ result: 'failed', code: 'HANDLER_FAILED', status: 500 }]);
    const errors = lines.filter((l) => l.level === 'error');
    expect(errors).toHaveLength(1);
    expect(errors[0]!.msg).toMatch(/dedupKey threw/);
    expect(errors[0]!.obj.err).toEqual({ name: 'TypeError', message: 'cannot read tenant' });
  });

  it('bounds and flattens a signed event type on every log line, preview and outcome', async () => {
    const { lines, logger } = recorder();
    const outcomes: WebhookOutcome[] = [];
    const handle = createStripeHandler({
      secret: SECRET,
      logger,
      onOutcome: (o) => void outcomes.push(o),
      onEvent: () => {},
    });
    const forged = `invoice.paid\r\n{"level":30,"msg":"refund approved"}\u2028${'x'.repeat(100_000)}`;
    await handle(post(signStripePayload({ ...stripeEvent('invoice.paid'), type: forged }, SECRET)));
    const values = lines.flatMap((l) => Object.values(l.obj)).filter((v) => typeof v === 'string');
    expect(values.length).toBeGreaterThan(0);
    for (const value of [...values, outcomes[0]!.event!]) {
      expect(value).not.toMatch(/[\r\n\u2028]/);
      expect(value.length).toBeLessThanOrEqual(200);
    }
    expect(outcomes[0]!.event).toMatch(/^invoice\.paid \{"level":30/);
  });
});

describe('close()', () => {
  it('waits for a handler answered early (ackAfterMs) and its completion, then closes its own store', async () => {
    let finished = 0;
    const handle = createStripeHandler({
      secret: SECRET,
      logger: false,
      ackAfterMs: 20,
      onEvent: async () => {
        await new Promise((resolve) => setTimeout(resolve, 300));
        finished++;
      },
    });
    const answer = await handle(post(signStripePayload(stripeEvent('invoice.paid'), SECRET)));
    expect(answer.status).toBe(202);
    expect(finished).toBe(0);
    const started = performance.now();
    await handle.close();
    expect(performance.now() - started).toBeGreaterThan(200);
    expect(finished).toBe(1);
    expect(handle.stats().counts.processed).toBe(1);
    expect(handle.stats().storeSize).toBe(0); // its own memory store was closed
  });

  it('never closes a store you passed in, and gives up waiting at timeoutMs with a warning', async () => {
    const { lines, logger } = recorder();
    let storeClosed = 0;
    const store = { ...createMemoryDedupStore(), close: () => void storeClosed++ };
    const inner = createMemoryDedupStore();
    store.claim = (k, l) => inner.claim(k, l);
    store.complete = (k, t, ttl) => inner.complete(k, t, ttl);
    store.release = (k, t) => inner.release(k, t);
    const handle = createStripeHandler({
      secret: SECRET,
      logger,
      store,
      ackAfterMs: 10,
      onEvent: () => new Promise(() => {}), // never ends
    });
    expect((await handle(post(signStripePayload(stripeEvent('invoice.paid'), SECRET)))).status).toBe(202);
    const started = performance.now();
    await handle.close({ timeoutMs: 150 });
    expect(performance.now() - started).toBeLessThan(1000);
    expect(storeClosed).toBe(0);
    expect(lines.some((l) => l.level === 'warn' && /still running at the deadline/.test(l.msg ?? ''))).toBe(
      true,
    );
  });
});
