import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { createChatwootHandler, createMemoryDedupStore, createStripeHandler } from '../../src/index.js';
import {
  chatwootEvent,
  signChatwootPayload,
  signStripePayload,
  stripeEvent,
} from '../../src/testing/index.js';

const SECRET = 'replay-secret';

describe('replay', () => {
  it('a captured delivery re-sent after the window is refused; inside it, it is a duplicate', async () => {
    let clock = 1_767_225_600_000;
    let calls = 0;
    for (const make of [
      () => ({
        handle: createChatwootHandler({ secret: SECRET, now: () => clock, onEvent: () => void calls++ }),
        signed: signChatwootPayload(chatwootEvent('message_created'), SECRET, { timestamp: clock / 1000 }),
      }),
      () => ({
        handle: createStripeHandler({ secret: SECRET, now: () => clock, onEvent: () => void calls++ }),
        signed: signStripePayload(stripeEvent('invoice.paid'), SECRET, { timestamp: clock / 1000 }),
      }),
    ]) {
      calls = 0;
      const { handle, signed } = make();
      const req = { method: 'POST', headers: signed.headers, body: signed.body };
      expect((await handle(req)).status).toBe(200);
      clock += 200_000; // inside the 300 s window
      const replayed = await handle(req);
      expect(JSON.parse(replayed.body)).toEqual({ ok: true, duplicate: true });
      clock += 200_000; // now 400 s later
      const late = await handle(req);
      expect(late.status).toBe(401);
      expect(JSON.parse(late.body)).toEqual({ error: { code: 'TIMESTAMP_OUT_OF_TOLERANCE' } });
      expect(calls).toBe(1);
      clock = 1_767_225_600_000;
    }
  });
});

describe('memory flood', () => {
  it('1,000,000 distinct events through the default store: size stays at the cap, heap flat', () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const store = createMemoryDedupStore();
    const run = (from: number, to: number) => {
      for (let i = from; i < to; i++) {
        const key = ['stripe', `evt_${i.toString(36).padStart(24, '0')}`].join(':');
        const claim = store.claim(key, 60_000);
        if (claim.status === 'claimed') store.complete(key, claim.token, 3 * 86_400_000);
      }
    };
    run(0, 100_000);
    gc();
    const atHundredK = process.memoryUsage().heapUsed;
    run(100_000, 1_000_000);
    gc();
    const atMillion = process.memoryUsage().heapUsed;
    const growthMB = (atMillion - atHundredK) / 2 ** 20;
    console.log(
      `memory flood: size ${store.size}, heap growth from 100 k to 1 M events ${growthMB.toFixed(1)} MB`,
    );
    expect(store.size).toBe(10_000);
    // Bound: 10 000 entries are ~1 MB; anything growing with the event count would add tens of MB.
    expect(growthMB).toBeLessThan(8);
  });
});
