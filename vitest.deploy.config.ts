import { configDefaults, defineConfig } from 'vitest/config';
import base from './vitest.config.js';

// The deploy recipes of examples/deploy/ (test/deploy/): `npm run test:deploy`. They need PM2 (a
// devDependency) and nginx (Debian's nginx-light; scripts/ensure-services.sh installs it), besides Redis.
// Under CI a failed test runs once more, as in the main suite (vitest.suite.config.ts): a reload's timing on
// a loaded two-core host can miss once (one sender timeout in 967 deliveries was seen); a broken recipe
// fails both runs.
export default defineConfig({
  ...base,
  test: {
    ...base.test,
    include: ['test/deploy/**/*.test.ts'],
    exclude: configDefaults.exclude,
    retry: process.env.CI === 'true' ? 1 : 0,
  },
});
