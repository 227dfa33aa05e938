import { defineConfig } from 'tsup';

// One build for every entry point, with code splitting, so `hookguard` and `hookguard/testing`
// (and later the adapters) share a single copy of the core instead of each bundling their own.
export default defineConfig({
  entry: {
    index: 'src/index.ts',
    testing: 'src/testing/index.ts',
  },
  format: ['esm', 'cjs'],
  dts: true,
  splitting: true,
  sourcemap: true,
  clean: true,
  treeshake: true,
  target: 'node20',
  platform: 'node',
  external: ['stripe'],
});
