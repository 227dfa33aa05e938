// Runs after tsup (`npm run build`). stripe is an optional peer: a Chatwoot-only project does not install it,
// yet the shared declaration chunks import its types, and TypeScript without `skipLibCheck` stops at the
// unresolved import (TS2307). A `@ts-ignore` on exactly those import lines lets such a project compile;
// there the Stripe types are `any`, and with stripe installed they are stripe's own, unchanged.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const OPTIONAL_PEERS = ['stripe', '@opentelemetry/api'];
const MARK = '// @ts-ignore -- optional peer: without it installed, its types are `any`';
const dist = new URL('../dist/', import.meta.url);
const dir = dist.pathname;

let patched = 0;
for (const name of readdirSync(dir)) {
  if (!/\.d\.c?ts$/.test(name)) continue;
  const file = join(dir, name);
  const lines = readFileSync(file, 'utf8').split('\n');
  const out = [];
  for (const [i, line] of lines.entries()) {
    // `import Stripe from 'stripe';`, or the bare `import 'stripe';` the bundler leaves in entry files (an
    // error too under `noUncheckedSideEffectImports`).
    const from = /^import (?:.* from )?'([^']+)';$/.exec(line)?.[1];
    if (from !== undefined && OPTIONAL_PEERS.includes(from) && lines[i - 1] !== MARK) {
      out.push(MARK);
      patched++;
    }
    out.push(line);
  }
  const text = out.join('\n');
  // Anything else that names an optional peer (a re-export, an inline `import('stripe')`) would still break
  // such a project: fail the build rather than ship it.
  for (const peer of OPTIONAL_PEERS) {
    const stray = text.split('\n').filter(
      (line, i, all) =>
        // A doc comment's example is text, not a reference.
        !/^\s*(?:\/?\*|\/\/)/.test(line) &&
        /\b(?:from|import)\s*\(?\s*'/.test(line) &&
        line.includes(`'${peer}'`) &&
        all[i - 1] !== MARK,
    );
    if (stray.length > 0) {
      throw new Error(`${name}: unexpected reference to the optional peer ${peer}: ${stray[0]}`);
    }
  }
  writeFileSync(file, text);
}
console.log(`optional-peer-types: ${patched} import line(s) marked`);
