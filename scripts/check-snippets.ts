// Type-checks every ```ts block of README.md and every TSDoc `@example` in src/, so documentation cannot
// drift from the API. Each block becomes its own module. A README block must be complete as it stands
// (a reader copies it): it imports or declares every name it uses. A README block preceded by
// `<!-- file: examples/… -->` is that file of the repository (test/readme.test.ts checks it), checked at
// its path so its relative imports reach the other such blocks. In TSDoc examples, names used without
// being defined (your handler, your app, the raw body) are declared with the types a user would have.
// Run by `npm run check:snippets` in CI.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const out = join(root, '.tmp', 'snippets');

interface Snippet {
  /** Where it comes from, for the file name and the error message. */
  origin: string;
  code: string;
  /** The repository file a README block shows, written at that path (relative to the output folder). */
  file?: string;
  /** Whether free names get the declarations of `ambient` (TSDoc examples only). */
  declaresFreeNames: boolean;
}

function readmeSnippets(): Snippet[] {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  return [...readme.matchAll(/(?:<!-- file: (\S+) -->\n)?```ts\n([\s\S]*?)```/g)].map((m, i) => ({
    origin: `README-${i + 1}`,
    code: m[2]!,
    ...(m[1] === undefined ? {} : { file: m[1] }),
    declaresFreeNames: false,
  }));
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return path.endsWith('.ts') ? [path] : [];
  });
}

/** The ```ts block of every `@example` tag, with the comment's leading ` * ` removed. */
function exampleSnippets(): Snippet[] {
  return sourceFiles(join(root, 'src')).flatMap((path) => {
    const text = readFileSync(path, 'utf8');
    return [...text.matchAll(/@example\n \* ```ts\n((?: \*.*\n)*?) \* ```/g)].map((m) => {
      const line = text.slice(0, m.index).split('\n').length;
      const code = m[1]!.replace(/^ \* ?/gm, '');
      const origin = `${relative(root, path).replaceAll('/', '-').replace(/\.ts$/, '')}-${line}`;
      return { origin, code, declaresFreeNames: true };
    });
  });
}

// Free names used by the TSDoc examples, with what they stand for in a user's program.
const ambient: Record<string, string> = {
  reply:
    'declare const reply: (event: import("hookguard").ChatwootMessageEvent<"message_created">) => Promise<void>;',
  fulfil:
    'declare const fulfil: (event: import("stripe").default.CheckoutSessionCompletedEvent) => Promise<void>;',
  onEvent: 'declare const onEvent: (event: unknown) => void;',
  onPaid: 'declare const onPaid: (event: import("stripe").default.InvoicePaidEvent) => Promise<void>;',
  app: 'declare const app: import("express").Express;',
  rawBody: 'declare const rawBody: Buffer;',
  req: 'declare const req: import("node:http").IncomingMessage;',
  body: 'declare const body: Buffer;',
  headers: 'declare const headers: import("node:http").IncomingHttpHeaders;',
  secret: 'declare const secret: string;',
  answer: 'declare const answer: (question: string) => Promise<string>;',
  inbox: 'declare const inbox: import("hookguard/bullmq").BullMQInbox;',
};

function prelude(code: string): string {
  const declared = (name: string) =>
    new RegExp(
      `(?:const|let|var|function)\\s+${name}\\b|import\\s+${name}\\b|import\\s*(?:type\\s*)?\\{[^}]*\\b${name}\\b|\\{[^}]*\\b${name}\\b[^}]*\\}\\s*=`,
    ).test(code);
  return Object.entries(ambient)
    .filter(([name]) => new RegExp(`(?<![.'"\`])\\b${name}\\b(?!\\s*:)`).test(code) && !declared(name))
    .map(([, declaration]) => declaration)
    .join('\n');
}

const snippets = [...readmeSnippets(), ...exampleSnippets()];
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
for (const { origin, code, file, declaresFreeNames } of snippets) {
  const path = join(out, file ?? `${origin}.ts`);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${declaresFreeNames ? prelude(code) : ''}\n${code}\nexport {};\n`);
}
writeFileSync(
  join(out, 'tsconfig.json'),
  JSON.stringify({
    extends: '../../tsconfig.json',
    compilerOptions: { noUnusedLocals: false, rootDir: '../..' },
    include: ['**/*.ts'],
  }),
);
try {
  execFileSync(
    process.execPath,
    [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(out, 'tsconfig.json')],
    {
      stdio: 'inherit',
    },
  );
  console.log(`snippets: ${snippets.length} TypeScript blocks type-check (README and TSDoc examples)`);
} catch {
  console.error('snippets: a TypeScript block does not type-check (see above; files in .tmp/snippets)');
  process.exitCode = 1;
}
