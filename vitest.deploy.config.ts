import { configDefaults, defineConfig } from 'vitest/config';
import base from './vitest.config.js';

// The deploy recipes of examples/deploy/ (test/deploy/): `npm run test:deploy`. They need PM2 (a
// devDependency) and nginx (Debian's nginx-light; scripts/ensure-services.sh installs it), besides Redis.
export default defineConfig({
  ...base,
  test: { ...base.test, include: ['test/deploy/**/*.test.ts'], exclude: configDefaults.exclude },
});
