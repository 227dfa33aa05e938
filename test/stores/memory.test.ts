import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { createMemoryDedupStore, type ClaimResult, type MemoryDedupStore } from '../../src/index.js';

function clock(start = 1_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

function tokenOf(result: ClaimResult): string {
  expect(result.status).toBe('claimed');
  return (result as { token: string }).token;
}

describe('createMemoryDedupStore', () => {
  it('claims a new key, reports in-flight while leased and duplicate once completed', () => {
    const store = createMemoryDedupStore();
    const token = tokenOf(store.claim('k', 1000));
    expect(store.claim('k', 1000)).toEqual({ status: 'in-flight' });
    store.complete('k', token, 60_000);
    expect(store.claim('k', 1000)).toEqual({ status: 'duplicate' });
    expect(store.size).toBe(1);
  });

  it('gives every claim its own token', () => {
    const store = createMemoryDedupStore();
    const a = tokenOf(store.claim('a', 1000));
    const b = tokenOf(store.claim('b', 1000));
    expect(a).not.toBe(b);
  });

  it('lets the next delivery claim a key whose lease expired (the worker crashed)', () => {
    const c = clock();
    const store = createMemoryDedupStore({ now: c.now });
    const first = tokenOf(store.claim('k', 1000));
    c.advance(999);
    expect(store.claim('k', 1000)).toEqual({ status: 'in-flight' });
    c.advance(1);
    const second = tokenOf(store.claim('k', 1000));
    expect(second).not.toBe(first);
    // The crashed worker's late complete must not overwrite the new owner's claim.
    store.complete('k', first, 60_000);
    expect(store.claim('k', 1000)).toEqual({ status: 'in-flight' });
    store.complete('k', second, 60_000);
    expect(store.claim('k', 1000)).toEqual({ status: 'duplicate' });
  });

  it('forgets a completed key when its TTL expires', () => {
    const c = clock();
    const store = createMemoryDedupStore({ now: c.now });
    store.complete('k', tokenOf(store.claim('k', 1000)), 5000);
    c.advance(4999);
    expect(store.claim('k', 1000)).toEqual({ status: 'duplicate' });
    c.advance(1);
    expect(store.claim('k', 1000).status).toBe('claimed');
  });

  it('ignores complete and release with a wrong token', () => {
    const store = createMemoryDedupStore();
    const token = tokenOf(store.claim('k', 60_000));
    store.complete('k', 'not-the-token', 60_000);
    expect(store.claim('k', 1000)).toEqual({ status: 'in-flight' });
    store.release('k', 'not-the-token');
    expect(store.claim('k', 1000)).toEqual({ status: 'in-flight' });
    store.complete('k', token, 60_000);
    // Once completed, a release (even with the old token) does not reopen the key.
    store.release('k', token);
    expect(store.claim('k', 1000)).toEqual({ status: 'duplicate' });
  });

  it('lets a released key be claimed again at once', () => {
    const store = createMemoryDedupStore();
    const token = tokenOf(store.claim('k', 60_000));
    store.release('k', token);
    expect(store.size).toBe(0);
    expect(store.claim('k', 60_000).status).toBe('claimed');
  });

  it('release of an unknown key does nothing', () => {
    const store = createMemoryDedupStore();
    store.release('nope', 'm1');
    expect(store.size).toBe(0);
  });

  it('never evicts a live claim: a flood of new keys cannot let a retry of a slow event claim it again', () => {
    for (const maxEntries of [3, 10_000]) {
      const store = createMemoryDedupStore({ maxEntries });
      const slow = tokenOf(store.claim('slow-event', 60_000));
      for (let i = 0; i < maxEntries * 3; i++) {
        store.complete(`flood-${i}`, tokenOf(store.claim(`flood-${i}`, 60_000)), 60_000);
      }
      expect(store.claim('slow-event', 60_000), `cap ${maxEntries}`).toEqual({ status: 'in-flight' });
      // It exceeds the cap by the live claims only, and still forgets completed keys oldest first.
      expect(store.size).toBe(maxEntries);
      expect(store.claim(`flood-${maxEntries * 3 - 1}`, 1).status).toBe('duplicate');
      expect(store.claim('flood-0', 1).status).toBe('claimed');
      store.complete('slow-event', slow, 60_000);
      expect(store.claim('slow-event', 1).status).toBe('duplicate');
    }
  });

  it('may exceed its cap by the claims in flight, and shrinks back once they end', () => {
    const store = createMemoryDedupStore({ maxEntries: 3 });
    const tokens = ['a', 'b', 'c', 'd', 'e'].map((key) => tokenOf(store.claim(key, 60_000)));
    expect(store.size).toBe(5);
    ['a', 'b', 'c', 'd', 'e'].forEach((key, i) => store.complete(key, tokens[i]!, 60_000));
    store.complete('f', tokenOf(store.claim('f', 60_000)), 60_000);
    expect(store.size).toBe(3);
  });

  it('completes a key whose lease ran out and was swept before the work finished', () => {
    const c = clock();
    const store = createMemoryDedupStore({ now: c.now });
    const token = tokenOf(store.claim('slow', 1000));
    c.advance(1001);
    store.claim('other-1', 60_000); // each claim sweeps expired entries from the old end
    store.claim('other-2', 60_000);
    expect(store.size).toBe(2); // the expired lease is gone
    store.complete('slow', token, 60_000);
    expect(store.claim('slow', 1000)).toEqual({ status: 'duplicate' });
  });

  it('completes a key whose expired lease was evicted at the cap before the work finished', () => {
    const c = clock();
    const store = createMemoryDedupStore({ maxEntries: 3, now: c.now });
    const token = tokenOf(store.claim('slow', 1000));
    c.advance(1001);
    for (const key of ['x', 'y', 'z', 'w']) store.complete(key, tokenOf(store.claim(key, 60_000)), 60_000);
    store.complete('slow', token, 60_000);
    expect(store.claim('slow', 1000)).toEqual({ status: 'duplicate' });
    expect(store.size).toBe(3);
  });

  it('after 1,000,000 distinct keys with maxEntries 1000, keeps exactly the last 1000 as duplicates', () => {
    const store = createMemoryDedupStore({ maxEntries: 1000 });
    const total = 1_000_000;
    for (let i = 0; i < total; i++) {
      const claim = store.claim(`key-${i}`, 60_000) as { status: string; token: string };
      store.complete(`key-${i}`, claim.token, 86_400_000);
    }
    expect(store.size).toBe(1000);
    for (let i = total - 1000; i < total; i++) {
      expect(store.claim(`key-${i}`, 60_000), `key-${i}`).toEqual({ status: 'duplicate' });
    }
    // The oldest were forgotten, one by one, not all at once.
    expect(store.claim(`key-${total - 1001}`, 60_000).status).toBe('claimed');
  });

  it('evicts the oldest first, never clears everything (the seed code did at 1000)', () => {
    const store = createMemoryDedupStore({ maxEntries: 3 });
    for (const key of ['a', 'b', 'c', 'd']) {
      const claim = store.claim(key, 60_000) as { token: string };
      store.complete(key, claim.token, 60_000);
    }
    expect(store.size).toBe(3);
    expect(store.claim('b', 1).status).toBe('duplicate');
    expect(store.claim('c', 1).status).toBe('duplicate');
    expect(store.claim('d', 1).status).toBe('duplicate');
    expect(store.claim('a', 1).status).toBe('claimed');
  });

  it('ages a key from its latest claim: a released and re-claimed key is not evicted by its old slot', () => {
    const store = createMemoryDedupStore({ maxEntries: 3 });
    store.release('a', tokenOf(store.claim('a', 60_000)));
    for (const key of ['b', 'c', 'a']) store.complete(key, tokenOf(store.claim(key, 60_000)), 60_000);
    store.complete('d', tokenOf(store.claim('d', 60_000)), 60_000);
    expect(store.size).toBe(3);
    expect(store.claim('a', 1).status).toBe('duplicate');
    expect(store.claim('c', 1).status).toBe('duplicate');
    expect(store.claim('d', 1).status).toBe('duplicate');
    expect(store.claim('b', 1).status).toBe('claimed'); // b was the oldest live key
  });

  it('ages an expired key from its new claim too', () => {
    const c = clock();
    const store = createMemoryDedupStore({ maxEntries: 2, now: c.now });
    store.complete('a', tokenOf(store.claim('a', 60_000)), 10);
    store.complete('b', tokenOf(store.claim('b', 60_000)), 60_000);
    c.advance(10);
    store.complete('a', tokenOf(store.claim('a', 60_000)), 60_000); // expired, claimed again: now the newest
    store.complete('x', tokenOf(store.claim('x', 60_000)), 60_000);
    expect(store.claim('a', 1).status).toBe('duplicate');
    expect(store.claim('x', 1).status).toBe('duplicate');
  });

  it('sweeps expired entries from the old end, so memory shrinks without reaching the cap', () => {
    const c = clock();
    const store = createMemoryDedupStore({ now: c.now });
    for (let i = 0; i < 100; i++) {
      const claim = store.claim(`old-${i}`, 60_000) as { token: string };
      store.complete(`old-${i}`, claim.token, 1000);
    }
    expect(store.size).toBe(100);
    c.advance(1000);
    for (let i = 0; i < 60; i++) store.claim(`new-${i}`, 60_000);
    // Each claim sweeps up to two expired entries: 100 old ones gone after 50 claims.
    expect(store.size).toBe(60);
  });

  it('refuses a nonsensical cap', () => {
    expect(() => createMemoryDedupStore({ maxEntries: 0 })).toThrow(RangeError);
    expect(() => createMemoryDedupStore({ maxEntries: Number.NaN })).toThrow(RangeError);
  });

  it('close() forgets everything', () => {
    const store = createMemoryDedupStore();
    store.claim('k', 1000);
    store.close?.();
    expect(store.size).toBe(0);
  });
});

describe('memory store heap', () => {
  // A real collection before each reading, so the figures are the store's, not garbage's.
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const heapAfter = (work: () => void): number => {
    gc();
    const before = process.memoryUsage().heapUsed;
    work();
    gc();
    return process.memoryUsage().heapUsed - before;
  };

  it('stays flat through 200,000 claim + release cycles (failures) on one key', () => {
    const store = createMemoryDedupStore();
    const grown = heapAfter(() => {
      for (let i = 0; i < 200_000; i++) store.release('flaky', tokenOf(store.claim('flaky', 60_000)));
    });
    console.log(`heap growth after 200,000 claim + release cycles: ${(grown / 1024).toFixed(0)} KiB`);
    expect(store.size).toBe(0);
    expect(grown).toBeLessThan(1024 * 1024);
  });

  it('stays flat through 200,000 failures on distinct keys', () => {
    const store = createMemoryDedupStore();
    const grown = heapAfter(() => {
      for (let i = 0; i < 200_000; i++) store.release(`k${i}`, tokenOf(store.claim(`k${i}`, 60_000)));
    });
    console.log(`heap growth after 200,000 failures on distinct keys: ${(grown / 1024).toFixed(0)} KiB`);
    expect(grown).toBeLessThan(1024 * 1024);
  });

  // Issue 20: the store's Map iterator stood still on a key that stays (a live claim, an unexpired key)
  // while claim + release behind it made V8 rebuild the small table every few calls, and every rebuilt
  // table stayed alive for that iterator: ~50 bytes per cycle, ~97 MiB after 2,000,000.
  const cyclesWith = (setUp: (store: MemoryDedupStore) => void, cycles: number): number => {
    const store = createMemoryDedupStore();
    setUp(store);
    const sizeBefore = store.size;
    let refused = 0;
    const grown = heapAfter(() => {
      for (let i = 0; i < cycles; i++) {
        const claim = store.claim('flaky', 60_000);
        // No expect() in the loop: two million of them would take most of a minute.
        if (claim.status === 'claimed') store.release('flaky', claim.token);
        else refused++;
      }
    });
    expect(refused).toBe(0);
    // Used after the last gc, so the store (and whatever it pins) is still alive when the heap is read.
    expect(store.size).toBe(sizeBefore);
    return grown;
  };

  it.each([
    [
      'with another key held by a live claim',
      (store: MemoryDedupStore) => void tokenOf(store.claim('held', 3_600_000)),
    ],
    [
      'with a completed key at the old end',
      (store: MemoryDedupStore) => store.complete('done', tokenOf(store.claim('done', 60_000)), 86_400_000),
    ],
    ['with nothing else held', () => {}],
  ])('stays flat through 200,000 and 2,000,000 claim + release cycles %s', (label, setUp) => {
    for (const cycles of [200_000, 2_000_000]) {
      const grown = cyclesWith(setUp, cycles);
      console.log(
        `memory store: ${cycles.toLocaleString('en-US')} claim+release ${label}: ` +
          `${grown < 0 ? '' : '+'}${(grown / 1024 / 1024).toFixed(1)} MiB`,
      );
      expect(grown, `${cycles} cycles`).toBeLessThan(3 * 1024 * 1024);
    }
  });

  it('holds about the cap after 1,000,000 unique keys through the default store', () => {
    const store = createMemoryDedupStore();
    const grown = heapAfter(() => {
      for (let i = 0; i < 1_000_000; i++) {
        const key = `stripe:evt_${i.toString(36).padStart(24, '0')}`;
        store.complete(key, tokenOf(store.claim(key, 60_000)), 86_400_000);
      }
    });
    console.log(`heap after 1,000,000 unique keys (cap 10,000): ${(grown / 1024 / 1024).toFixed(1)} MiB`);
    expect(store.size).toBe(10_000);
    // 10,000 keys of ~40 characters and their slots: a few MiB, not a growth with the traffic.
    expect(grown).toBeLessThan(8 * 1024 * 1024);
  });
});
