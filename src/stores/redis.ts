import { createHash, randomUUID } from 'node:crypto';
import type { ClaimResult, DedupStore } from '../dedup/dedup-store.js';
import { StoreCalls } from './with-timeout.js';

/**
 * An ioredis client (`Redis`, `Cluster`): it has `call(command, ...args)`.
 */
export interface IoRedisLike {
  call(command: string, ...args: (string | number)[]): Promise<unknown>;
}

/**
 * A node-redis v4 / v5 client (`createClient()`, connected): it has `sendCommand(args)`.
 */
export interface NodeRedisLike {
  sendCommand(args: string[]): Promise<unknown>;
}

/**
 * Options for {@link createRedisDedupStore}.
 */
export interface RedisDedupStoreOptions {
  /** A connected ioredis or node-redis client; you own it (the store never closes it). */
  client: IoRedisLike | NodeRedisLike;
  /** Prefix of every key. Default `'hookguard:'`. */
  prefix?: string;
  /** Longest a call may take before it counts as a store failure (503 to Stripe, 500 to Chatwoot). Default 1000 ms. */
  timeoutMs?: number;
}

// Values: "L:<token>" while leased, "D" once completed; Redis expiry (PX) ends leases and TTLs.
// Each script touches one key, so every call is one round trip and fits Redis Cluster's key rules.
const CLAIM = `local v = redis.call('GET', KEYS[1])
if not v then
  redis.call('SET', KEYS[1], 'L:' .. ARGV[1], 'PX', ARGV[2])
  return 'claimed'
end
if v == 'D' then return 'duplicate' end
return 'in-flight'`;

// A lease that expired without being taken over still belongs to its holder: the work did finish.
const COMPLETE = `local v = redis.call('GET', KEYS[1])
if v == 'L:' .. ARGV[1] or not v then
  redis.call('SET', KEYS[1], 'D', 'PX', ARGV[2])
  return 1
end
return 0`;

const RELEASE = `if redis.call('GET', KEYS[1]) == 'L:' .. ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0`;

interface Script {
  source: string;
  sha: string;
}
const script = (source: string): Script => ({ source, sha: createHash('sha1').update(source).digest('hex') });
const SCRIPTS = { claim: script(CLAIM), complete: script(COMPLETE), release: script(RELEASE) };

/**
 * A {@link DedupStore} on Redis, shared by every instance of your app. Works with an ioredis or a
 * node-redis client you pass in (no Redis library is imported here). Each call is one atomic round trip
 * (a Lua script by EVALSHA, falling back to EVAL once after a `NOSCRIPT`).
 *
 * @example
 * ```ts
 * import { Redis } from 'ioredis';
 * import { createRedisDedupStore } from 'hookguard/redis';
 * import { stripeWebhook } from 'hookguard/express';
 * const redis = new Redis(process.env.REDIS_URL!, { enableOfflineQueue: false });
 * redis.on('error', (err: Error) => console.warn(`Redis: ${err.message}`)); // else ioredis prints "Unhandled error event"
 * const store = createRedisDedupStore({ client: redis });
 * app.post('/webhook/payments', stripeWebhook({ secret: process.env.STRIPE_WEBHOOK_SECRET, store, onEvent }));
 * ```
 */
export function createRedisDedupStore(
  options: RedisDedupStoreOptions,
): DedupStore & { close(): Promise<void> } {
  const { client } = options;
  const prefix = options.prefix ?? 'hookguard:';
  const timeoutMs = options.timeoutMs ?? 1000;
  const send: (args: string[]) => Promise<unknown> =
    typeof (client as IoRedisLike).call === 'function'
      ? (args) => (client as IoRedisLike).call(args[0]!, ...args.slice(1))
      : typeof (client as NodeRedisLike).sendCommand === 'function'
        ? (args) => (client as NodeRedisLike).sendCommand(args)
        : () => Promise.reject(new TypeError('createRedisDedupStore needs an ioredis or node-redis client.'));

  async function run(which: Script, key: string, args: string[]): Promise<unknown> {
    const rest = ['1', prefix + key, ...args];
    try {
      return await send(['EVALSHA', which.sha, ...rest]);
    } catch (err) {
      // The script cache is empty after a restart or a failover: send the source once, which reloads it.
      if (!(err instanceof Error) || !err.message.includes('NOSCRIPT')) throw err;
      return send(['EVAL', which.source, ...rest]);
    }
  }

  const calls = new StoreCalls('Redis');
  return {
    async claim(key: string, leaseMs: number): Promise<ClaimResult> {
      const token = randomUUID();
      let status: unknown;
      try {
        status = await calls.run('Redis claim', timeoutMs, () =>
          run(SCRIPTS.claim, key, [token, String(Math.max(1, Math.ceil(leaseMs)))]),
        );
      } catch (err) {
        // A claim that timed out may still run later (clients queue commands while reconnecting) and would
        // then hold the key until its lease ends. Queue a release of our token behind it: same connection,
        // same order, so the phantom lease is removed as soon as it appears.
        run(SCRIPTS.release, key, [token]).catch(() => undefined);
        throw err;
      }
      if (status === 'claimed') return { status: 'claimed', token };
      if (status === 'duplicate') return { status: 'duplicate' };
      return { status: 'in-flight' };
    },
    async complete(key: string, token: string, ttlMs: number): Promise<void> {
      await calls.run('Redis complete', timeoutMs, () =>
        run(SCRIPTS.complete, key, [token, String(Math.max(1, Math.ceil(ttlMs)))]),
      );
    },
    async release(key: string, token: string): Promise<void> {
      await calls.run('Redis release', timeoutMs, () => run(SCRIPTS.release, key, [token]));
    },
    /** Refuses new calls and waits for those in flight; the client stays open (it is yours). */
    close: () => calls.close(),
  };
}
