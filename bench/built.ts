// The benchmarks measure the built package (`dist/`, what users load) but are typed by the sources, so
// `npm run typecheck` works on a fresh clone before any build. `npm run bench` builds first.
import type * as Core from '../src/index.js';
import type * as Express from '../src/adapters/express.js';
import type * as Fastify from '../src/adapters/fastify.js';
import type * as Koa from '../src/adapters/koa.js';
import type * as Postgres from '../src/stores/postgres.js';
import type * as Redis from '../src/stores/redis.js';
import type * as Testing from '../src/testing/index.js';
import type * as BullMQInbox from '../src/inbox/bullmq.js';
import type * as PgBossInbox from '../src/inbox/pg-boss.js';
import type * as Otel from '../src/otel/index.js';

async function load<T>(entry: string): Promise<T> {
  const url = new URL(`../dist/${entry}.js`, import.meta.url);
  try {
    return (await import(url.href)) as T;
  } catch (err) {
    throw new Error(`Cannot load ${url.pathname}: run \`npm run build\` first.`, { cause: err });
  }
}

export const core = await load<typeof Core>('index');
export const testing = await load<typeof Testing>('testing');
export const express = await load<typeof Express>('express');
export const fastify = await load<typeof Fastify>('fastify');
export const koa = await load<typeof Koa>('koa');
export const redis = await load<typeof Redis>('redis');
export const postgres = await load<typeof Postgres>('postgres');
export const bullmq = await load<typeof BullMQInbox>('bullmq');
export const pgBoss = await load<typeof PgBossInbox>('pg-boss');
export const otel = await load<typeof Otel>('otel');
