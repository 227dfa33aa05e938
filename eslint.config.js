import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'coverage/**', 'node_modules/**', 'test-results/**', '.tmp/**', 'docs/api/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    // Type-aware rules: a promise nobody awaits or catches turns an error into an unhandled rejection.
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/return-await': ['error', 'in-try-catch'],
      '@typescript-eslint/no-unnecessary-type-assertion': 'error',
    },
  },
  {
    // Runs inside Bun, Deno, workerd and edge-runtime: the web globals.
    files: ['test/runtimes/*.mjs'],
    languageOptions: { globals: { URL: 'readonly', Request: 'readonly' } },
  },
  {
    // Plain build scripts run by Node itself (no tsx at build time).
    files: ['scripts/**/*.mjs', 'bench/**/*.mjs'],
    languageOptions: {
      globals: {
        URL: 'readonly',
        console: 'readonly',
        process: 'readonly',
        Buffer: 'readonly',
        performance: 'readonly',
      },
    },
  },
  {
    // Configuration files read by tools that load CommonJS (PM2's ecosystem file).
    files: ['examples/**/*.cjs'],
    languageOptions: {
      sourceType: 'commonjs',
      globals: { require: 'readonly', module: 'writable', __dirname: 'readonly' },
    },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    rules: {
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' },
      ],
      'no-restricted-syntax': [
        'error',
        {
          selector: 'ExportAllDeclaration',
          message: 'List every public name explicitly (ARCHITECTURE.md, "Public surface"): no export *.',
        },
      ],
    },
  },
  {
    files: ['src/**/*.ts'],
    // The command-line sender is a tool, not the library core: it may read files and parse arguments.
    // The inbox entry points exist to drive their engine (an optional peer, loaded only by that subpath).
    // The testing helpers and the Node-only stores may use node:crypto; platform/node.ts is where the core's
    // Node primitives live.
    ignores: [
      'src/cli.ts',
      'src/inbox/bullmq.ts',
      'src/inbox/bullmq-lanes.ts',
      'src/inbox/pg-boss.ts',
      'src/platform/node.ts',
      'src/testing/**',
      'src/stores/redis.ts',
      'src/stores/postgres.ts',
    ],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '^(?!#platform$|\\.)',
              allowTypeImports: true,
              message:
                'The core imports nothing at runtime but its own modules and #platform (ARCHITECTURE.md, "Dependencies"): it runs on Web Crypto runtimes too.',
            },
          ],
        },
      ],
      // Buffer is Node's: the core's bytes are Uint8Array, its text goes through #platform.
      'no-restricted-globals': [
        'error',
        { name: 'Buffer', message: 'Use Uint8Array and #platform (web runtimes have no Buffer).' },
      ],
    },
  },
  {
    // The Node adapters and their body reader are Node-only by nature.
    files: [
      'src/adapters/express.ts',
      'src/adapters/fastify.ts',
      'src/adapters/koa.ts',
      'src/body/node-body.ts',
    ],
    rules: { 'no-restricted-globals': 'off' },
  },
);
