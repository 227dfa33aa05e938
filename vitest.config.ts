import { fileURLToPath } from 'node:url';
import { configDefaults, defineConfig } from 'vitest/config';

const src = (path: string) => fileURLToPath(new URL(`./src/${path}`, import.meta.url));

export default defineConfig({
  resolve: {
    // Examples and README snippets import the package by name; tests run them against the sources
    // (the same mapping as tsconfig.json "paths", which tsx uses for `npm run demo`).
    alias: [
      // The runtime primitives: Node's, as package.json "imports" picks them under Node.
      { find: /^#platform$/, replacement: src('platform/node.ts') },
      { find: /^hookguard\/testing$/, replacement: src('testing/index.ts') },
      { find: /^hookguard\/chatwoot$/, replacement: src('chatwoot/index.ts') },
      { find: /^hookguard\/otel$/, replacement: src('otel/index.ts') },
      { find: /^hookguard\/(express|fastify|koa|fetch)$/, replacement: src('adapters/$1.ts') },
      { find: /^hookguard\/(redis|postgres)$/, replacement: src('stores/$1.ts') },
      { find: /^hookguard\/(bullmq|pg-boss)$/, replacement: src('inbox/$1.ts') },
      { find: /^hookguard\/shutdown$/, replacement: src('shutdown/index.ts') },
      { find: /^hookguard$/, replacement: src('index.ts') },
    ],
  },
  test: {
    // examples/recipes holds a test file too: how to test your own handler, run as part of the suite.
    include: ['test/**/*.test.ts', 'examples/**/*.test.ts'],
    // The deploy recipes (PM2, nginx, Kubernetes) restart servers 10 times each under load: two minutes of
    // their own, run by `npm run test:deploy` (CI runs both).
    exclude: [...configDefaults.exclude, 'test/deploy/**'],
    // Generous: a busy machine makes tests slower, never wrong; a hang still fails.
    testTimeout: 60_000,
    // hookguard's default logger prints warnings and errors; the suite provokes hundreds on purpose. Tests
    // that check those lines spy on the console, which sees them before this filter.
    onConsoleLog: (line) => !line.startsWith('hookguard '),
  },
});
