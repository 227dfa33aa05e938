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
    // Plain build scripts run by Node itself (no tsx at build time).
    files: ['scripts/**/*.mjs'],
    languageOptions: { globals: { URL: 'readonly', console: 'readonly' } },
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
    ignores: ['src/cli.ts', 'src/inbox/bullmq.ts', 'src/inbox/pg-boss.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '^(?!node:crypto$|\\.)',
              allowTypeImports: true,
              message: 'The core may import only node:crypto at runtime (ARCHITECTURE.md, "Dependencies").',
            },
          ],
        },
      ],
    },
  },
);
