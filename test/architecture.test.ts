import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
const MAX_FUNCTION_LINES = 80;

function filesUnder(dir: string, ending: string): string[] {
  return readdirSync(join(root, dir)).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(join(root, path)).isDirectory()) return filesUnder(path, ending);
    return path.endsWith(ending) ? [path] : [];
  });
}

/** Every function in a source file with its length in lines (nested functions count in their parent too). */
function functionLengths(path: string): { where: string; lines: number }[] {
  const source = ts.createSourceFile(
    path,
    readFileSync(join(root, path), 'utf8'),
    ts.ScriptTarget.Latest,
    true,
  );
  const found: { where: string; lines: number }[] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isFunctionLike(node) && 'body' in node && node.body !== undefined) {
      const first = source.getLineAndCharacterOfPosition(node.getStart(source)).line;
      const last = source.getLineAndCharacterOfPosition(node.end).line;
      found.push({ where: `${path}:${first + 1}`, lines: last - first + 1 });
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

describe('the shape of the code', () => {
  it(`has no function in src/ longer than ${MAX_FUNCTION_LINES} lines`, () => {
    const all = filesUnder('src', '.ts').flatMap(functionLengths);
    const longest = all.reduce((a, b) => (b.lines > a.lines ? b : a));
    console.log(
      `longest function in src/: ${longest.lines} lines at ${longest.where} (${all.length} functions)`,
    );
    expect(all.filter((f) => f.lines > MAX_FUNCTION_LINES)).toEqual([]);
  });

  it('the pipeline imports nothing from the inbox (the inbox depends on the pipeline, never the reverse)', () => {
    const reverse = filesUnder('src/pipeline', '.ts').filter((path) =>
      /from '\.\.\/inbox\//.test(readFileSync(join(root, path), 'utf8')),
    );
    expect(filesUnder('src/pipeline', '.ts').length).toBeGreaterThan(5);
    expect(reverse).toEqual([]);
  });

  it('the measure sees a long function (so the check above can fail)', () => {
    const lengths = functionLengths('test/architecture.test.ts');
    expect(Math.max(...lengths.map((f) => f.lines))).toBeGreaterThan(10);
  });

  it('keeps every store beside the others and every body reader beside its twin', () => {
    expect(filesUnder('src/stores', '.ts').sort()).toEqual([
      'src/stores/memory.ts',
      'src/stores/postgres.ts',
      'src/stores/redis.ts',
      'src/stores/with-timeout.ts',
    ]);
    expect(filesUnder('src/body', '.ts').sort()).toEqual(['src/body/node-body.ts', 'src/body/web-body.ts']);
  });
});

const DOCS = [
  'README.md',
  'ARCHITECTURE.md',
  'CHANGELOG.md',
  'SECURITY.md',
  'bench/README.md',
  ...filesUnder('examples', '.md'),
];
// A path in a Markdown link, or a code span that names a file of this repository.
const LINK = /\]\(([^)#\s]+)(?:#[^)]*)?\)/g;
const CODE_PATH = /`((?:src|test|bench|examples|scripts|\.ci)\/[\w./-]+)`/g;

describe('references', () => {
  it.each(DOCS)('%s points only at files that exist', (doc) => {
    const text = readFileSync(join(root, doc), 'utf8');
    const targets = [
      ...[...text.matchAll(LINK)].map((m) => m[1]!).filter((t) => !/^[a-z]+:/.test(t)),
      ...[...text.matchAll(CODE_PATH)].map((m) => m[1]!),
    ];
    const missing = targets.filter((target) => {
      const fromDoc = join(root, dirname(doc), target);
      return !existsSync(fromDoc) && !existsSync(join(root, target));
    });
    expect(missing, `${doc} names files that are not in the repository`).toEqual([]);
  });

  it('no file names a document that lives outside this repository', () => {
    const texts = [
      ...DOCS,
      'eslint.config.js',
      ...filesUnder('src', '.ts'),
      ...filesUnder('scripts', '.ts'),
      ...filesUnder('bench', '.ts'),
    ];
    const outside = texts.filter((path) =>
      /\b(?:STYLE\.md|API\.md|shared\/spec)\b/.test(readFileSync(join(root, path), 'utf8')),
    );
    expect(outside.map((p) => relative(root, join(root, p)))).toEqual([]);
  });
});
