// Type-checks every ```ts block of README.md and every TSDoc `@example` in src/, so documentation cannot
// drift from the API. Each block becomes its own module; names a snippet uses without defining (your
// handler, your app, the raw body) are declared for it with the types a user would have. Run by
// `npm run check:snippets` in CI.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const out = join(root, '.tmp', 'snippets');

interface Snippet {
  /** Where it comes from, for the file name and the error message. */
  origin: string;
  code: string;
}

function readmeSnippets(): Snippet[] {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  return [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m, i) => ({
    origin: `README-${i + 1}`,
    code: m[1]!,
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
      return { origin: `${relative(root, path).replaceAll('/', '-').replace(/\.ts$/, '')}-${line}`, code };
    });
  });
}

// Free names used by the snippets, with what they stand for in a user's program.
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
for (const { origin, code } of snippets) {
  writeFileSync(join(out, `${origin}.ts`), `${prelude(code)}\n${code}\nexport {};\n`);
}
writeFileSync(
  join(out, 'tsconfig.json'),
  JSON.stringify({
    extends: '../../tsconfig.json',
    compilerOptions: { noUnusedLocals: false, rootDir: '../..' },
    include: ['*.ts'],
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
