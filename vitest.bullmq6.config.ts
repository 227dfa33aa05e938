import { defineConfig, mergeConfig } from 'vitest/config';
import base from './vitest.config.js';

// The BullMQ inbox against BullMQ 6, installed beside BullMQ 5 under the alias `bullmq6` (package.json):
// every `import ... from 'bullmq'` of the sources and the tests loads it instead. Run by
// scripts/node-matrix.sh, e.g. `npx vitest run --config vitest.bullmq6.config.ts test/inbox/bullmq.test.ts`.
export default mergeConfig(
  base,
  defineConfig({
    resolve: { alias: [{ find: /^bullmq$/, replacement: 'bullmq6' }] },
    // test/inbox/bullmq.test.ts checks that the run really loads this major.
    test: { env: { HOOKGUARD_BULLMQ_MAJOR: '6' } },
  }),
);
