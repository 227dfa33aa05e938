import { defineConfig } from 'tsup';

// One build for every entry point, with code splitting, so each subpath shares a single copy of the core
// instead of bundling its own, and `hookguard/express` contains nothing of Fastify, Koa or the stores.
export default defineConfig({
  entry: {
    index: 'src/index.ts',
    testing: 'src/testing/index.ts',
    chatwoot: 'src/chatwoot/index.ts',
    otel: 'src/otel/index.ts',
    express: 'src/adapters/express.ts',
    fastify: 'src/adapters/fastify.ts',
    koa: 'src/adapters/koa.ts',
    fetch: 'src/adapters/fetch.ts',
    redis: 'src/stores/redis.ts',
    postgres: 'src/stores/postgres.ts',
    bullmq: 'src/inbox/bullmq.ts',
    'pg-boss': 'src/inbox/pg-boss.ts',
    shutdown: 'src/shutdown/index.ts',
    cli: 'src/cli.ts',
    // The runtime primitives, loaded through package.json "imports" (#platform) by runtime condition.
    'platform-node': 'src/platform/node.ts',
    'platform-web': 'src/platform/web.ts',
  },
  format: ['esm', 'cjs'],
  dts: true,
  splitting: true,
  sourcemap: true,
  clean: true,
  treeshake: true,
  target: 'node20',
  platform: 'node',
  external: [
    '#platform',
    'stripe',
    '@opentelemetry/api',
    'express',
    'fastify',
    'koa',
    'ioredis',
    'redis',
    'pg',
    'bullmq',
    'pg-boss',
  ],
});
