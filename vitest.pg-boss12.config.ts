import { fileURLToPath } from 'node:url';
import { defineConfig, mergeConfig } from 'vitest/config';
import { pgBoss12DatabaseUrl } from './test/helpers/pg-boss12-database.js';
import base from './vitest.config.js';

// The pg-boss inbox against pg-boss 12, which scripts/node-matrix.sh installs into a cache folder of its
// own (not a devDependency: its engines field asks for Node 22.12, and `npm install` on Node 20 must stay
// clean): every `import ... from 'pg-boss'` of the sources and the tests loads it instead. It needs a
// database of its own (see test/helpers/pg-boss12-database.ts). Run by scripts/node-matrix.sh, e.g. on Node 22:
// `node node_modules/vitest/vitest.mjs run --config vitest.pg-boss12.config.ts test/inbox/pg-boss.test.ts`.
/** Where scripts/node-matrix.sh installs pg-boss 12 (HOOKGUARD_PG_BOSS_12 overrides). */
export const PG_BOSS_12 =
  process.env.HOOKGUARD_PG_BOSS_12 ??
  fileURLToPath(new URL('./node_modules/.cache/hookguard-pg-boss12/node_modules/pg-boss', import.meta.url));

export default mergeConfig(
  base,
  defineConfig({
    resolve: { alias: [{ find: /^pg-boss$/, replacement: PG_BOSS_12 }] },
    test: {
      globalSetup: ['./test/helpers/pg-boss12-database.ts'],
      // test/inbox/pg-boss.test.ts checks that the run really loads this major.
      env: { DATABASE_URL: pgBoss12DatabaseUrl(), HOOKGUARD_PG_BOSS_MAJOR: '12' },
    },
  }),
);
