import { defineConfig, mergeConfig } from 'vitest/config';
import { pgBoss12DatabaseUrl } from './test/helpers/pg-boss12-database.js';
import base from './vitest.config.js';

// The pg-boss inbox against pg-boss 12, installed beside pg-boss 10 under the alias `pg-boss12`
// (package.json): every `import ... from 'pg-boss'` of the sources and the tests loads it instead. pg-boss
// 12 needs Node 22.12 or later, and a database of its own (see test/helpers/pg-boss12-database.ts). Run by
// scripts/node-matrix.sh, e.g. on Node 22:
// `node node_modules/vitest/vitest.mjs run --config vitest.pg-boss12.config.ts test/inbox/pg-boss.test.ts`.
export default mergeConfig(
  base,
  defineConfig({
    resolve: { alias: [{ find: /^pg-boss$/, replacement: 'pg-boss12' }] },
    test: {
      globalSetup: ['./test/helpers/pg-boss12-database.ts'],
      // test/inbox/pg-boss.test.ts checks that the run really loads this major.
      env: { DATABASE_URL: pgBoss12DatabaseUrl(), HOOKGUARD_PG_BOSS_MAJOR: '12' },
    },
  }),
);
