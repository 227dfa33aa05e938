import type { Queue, Worker } from 'bullmq';
import type { IoRedisLike } from '../stores/redis.js';

// Where a BullMQ queue or worker keeps its Redis connections, across BullMQ 5 and 6.

/** BullMQ's client wraps an ioredis instance and forwards what it does not override, `call` included. */
const asIoRedis = (client: unknown) => client as IoRedisLike;

/** What a queue or worker holds of its connections: BullMQ 5 keeps them itself, BullMQ 6 in its `backend`. */
export interface Connections {
  client?: Promise<unknown>;
  blockingConnection?: { disconnect(wait?: boolean): Promise<void> };
}

/**
 * The Redis client of a queue or worker. BullMQ 6 moved the connections into a datastore backend: `client`
 * is then the Redis backend's (its escape hatch to the raw client), no longer the queue's.
 */
export const connectionsOf = (owner: Queue | Worker<unknown>): Connections => {
  const { backend } = owner as unknown as { backend?: Connections };
  return backend?.client === undefined ? (owner as unknown as Connections) : backend;
};
export const redisOf = async (owner: Queue | Worker<unknown>) => asIoRedis(await connectionsOf(owner).client);
