import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it, vi } from 'vitest';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

describe('README', () => {
  afterEach(() => vi.restoreAllMocks());

  it('shows examples/quick-start.ts verbatim as its quick start', () => {
    const block = /<!-- quick-start:begin -->\n```ts\n([\s\S]*?)```\n<!-- quick-start:end -->/.exec(
      readme,
    )?.[1];
    const file = readFileSync(new URL('../examples/quick-start.ts', import.meta.url), 'utf8');
    expect(block).toBe(file);
  });

  it('shows each file it names with `<!-- file: … -->` verbatim (the inbox example: shared module, web, worker)', () => {
    const blocks = [...readme.matchAll(/<!-- file: (\S+) -->\n```ts\n([\s\S]*?)```/g)];
    expect(blocks.map((m) => m[1])).toEqual([
      'examples/inbox/chatwoot.ts',
      'examples/inbox/web.ts',
      'examples/inbox/worker.ts',
    ]);
    for (const [, path, block] of blocks) {
      expect(block, path).toBe(readFileSync(new URL(`../${path!}`, import.meta.url), 'utf8'));
    }
  });

  it('quick start runs as written: handled once, duplicate acknowledged, forgery refused', async () => {
    const lines: string[] = [];
    vi.spyOn(console, 'log').mockImplementation((...args: unknown[]) => void lines.push(args.join(' ')));
    await import('../examples/quick-start.js');
    expect(lines).toEqual(['handling: Hello!', '200', '200', '401', 'handled 1 time(s)']);
  });

  it('gives `npm test` as the test command, the one .ci/run runs', () => {
    expect(readme).toMatch(/^npm test\b/m);
    expect(readFileSync(new URL('../.ci/run', import.meta.url), 'utf8')).toMatch(/^npm test -- /m);
  });
});
