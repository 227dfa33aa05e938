import { defineConfig } from 'vitest/config';
import base from './vitest.config.js';

// `npm test`: the suite of vitest.config.ts in two groups, one after the other. Most files wait on servers
// (Redis, PostgreSQL, child processes), so two run at once even on two cores; the files whose figures are
// timings (a p99, a side-by-side latency ratio, a heap bound, hand-over waits) run alone afterwards,
// so another file's load cannot move them. One file at a time: `npx vitest run <file>` (vitest.config.ts).
// Under CI a failed test runs once more (the default reporter marks it retried): a timing figure on a
// loaded two-core host can miss its bound once; a broken feature fails both runs.
const retry = process.env.CI === 'true' ? 1 : 0;

const TIMED = [
  'test/inbox/bursts.test.ts',
  'test/inbox/ordering-stuck.test.ts',
  'test/inbox/ordering-processes.test.ts',
  'test/inbox/frozen-engine.test.ts',
  'test/security/load-with-failures.test.ts',
  'test/otel/overhead.test.ts',
];

export default defineConfig({
  test: {
    // The pool's size (vitest's default is one fewer than the cores: one here); each group sets its own.
    maxWorkers: 2,
    // Root-only options are not taken from the projects.
    onConsoleLog: base.test!.onConsoleLog!,
    projects: [
      {
        ...base,
        test: {
          ...base.test,
          name: 'two at once',
          exclude: [...(base.test?.exclude ?? []), ...TIMED],
          maxWorkers: 2,
          retry,
          sequence: { groupOrder: 0 },
        },
      },
      {
        ...base,
        test: {
          ...base.test,
          name: 'timed, alone',
          include: TIMED,
          maxWorkers: 1,
          retry,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
