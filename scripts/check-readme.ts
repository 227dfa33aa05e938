// Type-checks every ```ts block of README.md, so the documentation cannot drift from the API. Each block
// becomes its own module; names a snippet uses without defining (your handler, your app, the raw body)
// are declared for it with the types a user would have. Run by `npm run check:readme` in CI.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const out = `${root}.tmp/readme`;
const readme = readFileSync(`${root}README.md`, 'utf8');
const blocks = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!);

// Free names used by the snippets, with what they stand for in a user's program.
const ambient: Record<string, string> = {
  reply:
    'declare const reply: (event: import("hookguard").ChatwootMessageEvent<"message_created">) => Promise<void>;',
  fulfil:
    'declare const fulfil: (event: import("stripe").default.CheckoutSessionCompletedEvent) => Promise<void>;',
  onEvent: 'declare const onEvent: (event: unknown) => void;',
  app: 'declare const app: import("express").Express;',
  rawBody: 'declare const rawBody: Buffer;',
  req: 'declare const req: import("node:http").IncomingMessage;',
};

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
const files = blocks.map((code, i) => {
  const declared = (name: string) =>
    new RegExp(
      `(?:const|let|var|function)\\s+${name}\\b|import\\s+${name}\\b|import\\s*(?:type\\s*)?\\{[^}]*\\b${name}\\b`,
    ).test(code);
  const prelude = Object.entries(ambient)
    .filter(([name, _]) => new RegExp(`\\b${name}\\b`).test(code) && !declared(name))
    .map(([, declaration]) => declaration);
  const file = `${out}/block-${i + 1}.ts`;
  writeFileSync(file, `${prelude.join('\n')}\n${code}\nexport {};\n`);
  return file;
});
writeFileSync(
  `${out}/tsconfig.json`,
  JSON.stringify({
    extends: '../../tsconfig.json',
    compilerOptions: { noUnusedLocals: false, rootDir: '../..' },
    include: ['*.ts'],
  }),
);
try {
  execFileSync(process.execPath, [`${root}node_modules/typescript/bin/tsc`, '-p', `${out}/tsconfig.json`], {
    stdio: 'inherit',
  });
  console.log(`README: ${files.length} TypeScript blocks type-check`);
} catch {
  console.error('README: a TypeScript block does not type-check (see above; files in .tmp/readme)');
  process.exitCode = 1;
}
