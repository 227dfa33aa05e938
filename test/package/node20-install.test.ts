// `npm install` on Node 20 must be clean: no package in the lock file may ask for a newer Node (npm prints
// EBADENGINE for each). fastify 5's light-my-request ≥ 6.8 pulls cookie 2 (node ≥ 22); package.json
// pins it to 6.6.0 for fastify 5 only (`overrides`), which this test keeps honest.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import semver from 'semver';
import { describe, expect, it } from 'vitest';

const repo = resolve(import.meta.dirname, '../..');
const lock = JSON.parse(readFileSync(resolve(repo, 'package-lock.json'), 'utf8')) as {
  packages: Record<string, { version?: string; optional?: boolean; engines?: { node?: string } | string[] }>;
};

describe('the lock file on Node 20', () => {
  it('holds no required package whose engines exclude Node 20.19 or the running Node', () => {
    const refused: string[] = [];
    for (const [path, entry] of Object.entries(lock.packages)) {
      const range = Array.isArray(entry.engines) ? undefined : entry.engines?.node;
      // npm skips an optional package whose engines do not fit, silently (no EBADENGINE).
      if (!path || range === undefined || entry.optional) continue;
      for (const node of ['20.19.0', process.versions.node]) {
        if (!semver.satisfies(node, range)) refused.push(`${path}@${entry.version} (node ${range})`);
      }
    }
    expect([...new Set(refused)]).toEqual([]);
  });

  it('declares engines.node >=20 for hookguard itself', () => {
    const pkg = JSON.parse(readFileSync(resolve(repo, 'package.json'), 'utf8')) as {
      engines: { node: string };
    };
    expect(pkg.engines.node).toBe('>=20');
  });
});
