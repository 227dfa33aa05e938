import { readFileSync } from 'node:fs';
// The command-line sender against a real server: it signs like the provider, so the server verifies,
// processes once and answers repeats as duplicates.
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chatwootWebhook, stripeWebhook } from '../src/adapters/express.js';
import { main } from '../src/cli.js';
import { listening, type Running } from './helpers/servers.js';

const seen: string[] = [];
let server: Running;
beforeAll(async () => {
  const app = express();
  app.post(
    '/cw',
    chatwootWebhook({ secret: 'cw-cli', on: { message_created: (e) => void seen.push(`cw:${e.event}`) } }),
  );
  app.post(
    '/legacy',
    chatwootWebhook({
      secret: 'cw-cli',
      scheme: 'legacy-body',
      onEvent: (e) => void seen.push(`legacy:${e.event}`),
    }),
  );
  app.post(
    '/stripe',
    stripeWebhook({ secret: 'whsec_cli', onEvent: (e) => void seen.push(`stripe:${e.type}`) }),
  );
  server = await listening(app.listen(0, '127.0.0.1'));
});
afterAll(() => server.close());

describe('hookguard send', () => {
  it('sends a signed Chatwoot delivery; --repeat shows the duplicates', async () => {
    seen.length = 0;
    const lines: string[] = [];
    const code = await main(
      ['send', 'chatwoot', server.url('/cw'), '--secret', 'cw-cli', '--repeat', '3'],
      (l) => void lines.push(l),
    );
    expect(code).toBe(0);
    expect(lines).toEqual([
      '1/3 200 {"ok":true}',
      '2/3 200 {"ok":true,"duplicate":true}',
      '3/3 200 {"ok":true,"duplicate":true}',
    ]);
    expect(seen).toEqual(['cw:message_created']);
  });

  it('sends Stripe events of the given type, a file as the payload, and the legacy scheme', async () => {
    seen.length = 0;
    expect(
      await main(
        ['send', 'stripe', server.url('/stripe'), '--secret', 'whsec_cli', '--event', 'invoice.paid'],
        () => {},
      ),
    ).toBe(0);
    const file = join(tmpdir(), `hookguard-cli-${process.pid}.json`);
    writeFileSync(file, JSON.stringify({ id: 'evt_from_file', type: 'customer.created', object: 'event' }));
    expect(
      await main(
        ['send', 'stripe', server.url('/stripe'), '--secret', 'whsec_cli', '--file', file],
        () => {},
      ),
    ).toBe(0);
    expect(
      await main(['send', 'chatwoot', server.url('/legacy'), '--secret', 'cw-cli', '--legacy'], () => {}),
    ).toBe(0);
    expect(seen).toEqual(['stripe:invoice.paid', 'stripe:customer.created', 'legacy:message_created']);
  });

  it('exits 1 and prints the answer when the server refuses (wrong secret)', async () => {
    const lines: string[] = [];
    expect(
      await main(
        ['send', 'stripe', server.url('/stripe'), '--secret', 'whsec_wrong'],
        (l) => void lines.push(l),
      ),
    ).toBe(1);
    expect(lines).toEqual(['1/1 401 {"error":{"code":"SIGNATURE_MISMATCH"}}']);
  });

  it('exits 2 with the usage on bad arguments', async () => {
    for (const args of [
      [],
      ['send', 'github', 'http://x'],
      ['send', 'stripe', 'http://x'],
      ['send', 'stripe', 'http://x', '--secret', 's', '--repeat', '0'],
    ]) {
      const lines: string[] = [];
      expect(await main(args, (l) => void lines.push(l))).toBe(2);
      expect(lines.join('\n')).toMatch(/usage: hookguard send|--repeat/);
    }
  });

  it('says in one line what to fix, never a stack trace, and exits non-zero', async () => {
    const { createServer } = await import('node:net');
    const closedPort = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, '127.0.0.1', () => {
        const { port } = probe.address() as { port: number };
        probe.close(() => resolve(port));
      });
    });
    const cases: [string[], RegExp, number][] = [
      [
        ['--event', 'bogus_event'],
        /^error: unknown Chatwoot event "bogus_event"; use one of: message_created, /,
        2,
      ],
      [['--file', '/nonexistent.json'], /^error: cannot read --file \/nonexistent\.json \(ENOENT\)/, 2],
      [['--bogus'], /^error: Unknown option '--bogus'\nusage: /, 2],
    ];
    for (const [extra, expected, code] of cases) {
      const lines: string[] = [];
      expect(
        await main(
          ['send', 'chatwoot', server.url('/cw'), '--secret', 'cw-cli', ...extra],
          (l) => void lines.push(l),
        ),
      ).toBe(code);
      expect(lines.join('\n')).toMatch(expected);
      expect(lines.join('\n')).not.toMatch(/\n\s+at /);
    }
    const stripeLines: string[] = [];
    expect(
      await main(
        ['send', 'stripe', server.url('/s'), '--secret', 's', '--event', 'Bogus Event'],
        (l) => void stripeLines.push(l),
      ),
    ).toBe(2);
    expect(stripeLines).toEqual([
      'error: "Bogus Event" is not a Stripe event type (like checkout.session.completed or invoice.paid).',
    ]);
    const refused: string[] = [];
    expect(
      await main(
        ['send', 'chatwoot', `http://127.0.0.1:${closedPort}/cw`, '--secret', 'x'],
        (l) => void refused.push(l),
      ),
    ).toBe(1);
    expect(refused).toEqual([
      `1/1 error: connection refused by 127.0.0.1:${closedPort} (ECONNREFUSED): is the server running on that port?`,
    ]);
  });

  it('prints its version and its help, exit 0', async () => {
    const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
      version: string;
    };
    for (const flag of ['--version', '-v']) {
      const lines: string[] = [];
      expect(await main([flag], (l) => void lines.push(l))).toBe(0);
      expect(lines).toEqual([version]);
    }
    const help: string[] = [];
    expect(await main(['--help'], (l) => void help.push(l))).toBe(0);
    expect(help[0]).toMatch(/^usage: hookguard send .*\n\s+hookguard inbox /);
  });

  it('runs as a real process', async () => {
    const cli = fileURLToPath(new URL('../src/cli.ts', import.meta.url));
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', cli, 'send', 'chatwoot', server.url('/cw'), '--repeat', '2'],
      {
        env: { ...process.env, HOOKGUARD_SECRET: 'cw-cli' },
      },
    );
    expect(stdout.trim().split('\n')).toEqual([
      '1/2 200 {"ok":true}',
      '2/2 200 {"ok":true,"duplicate":true}',
    ]);
  });
});
