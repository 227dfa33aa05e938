// `npm run demo:inbox`, with the reply shortened from 8 s to 1.5 s: every answer fast, no hand-off, and
// every message replied to exactly once although a web process and a worker were killed.
import { describe, expect, it } from 'vitest';
import { runInboxDemo } from '../../scripts/demo-inbox.js';
import { redisUp, requireService } from '../helpers/services.js';

const available = await redisUp();

describe.runIf(requireService('Redis', available))('npm run demo:inbox', () => {
  it('replies to every message exactly once, answering each delivery in well under Chatwoot’s 5 s', async () => {
    const result = await runInboxDemo(() => {}, 1500);
    expect(result.replies).toEqual([1, 1, 1, 1, 1]);
    expect(result.exactlyOnce).toBe(true);
    expect(Math.max(...result.answersMs)).toBeLessThan(1000);
    expect(result.lines.at(-1)).toMatch(
      /0 conversations handed to a human\. Every message replied to exactly once: yes\.$/,
    );
    expect(result.lines.filter((l) => /^\d /.test(l))).toHaveLength(5);
  }, 120_000);
});
