import { readFileSync } from 'node:fs';
// The command-line sender against a real server: it signs like the provider, so the server verifies,
// processes once and answers repeats as duplicates.
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { randomUUID } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { Queue, Worker, type ConnectionOptions } from 'bullmq';
import express from 'express';
import { Redis } from 'ioredis';
import PgBoss from 'pg-boss';
import { redisOf } from '../src/inbox/bullmq-connections.js';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chatwootWebhook, stripeWebhook } from '../src/adapters/express.js';
import { main } from '../src/cli.js';
import { sleep } from './helpers/http.js';
import { freePort, startPrivateRedis, type PrivateRedis } from './helpers/private-engines.js';
import { bullMQInStates, dropPgBossQueue, pgBossInStates } from './helpers/inbox-states.js';
import { listening, type Running } from './helpers/servers.js';
import { DATABASE_URL, postgresUp, requireService } from './helpers/services.js';

const seen: string[] = [];
let server: Running;
beforeAll(async () => {
  const app = express();
  app.post(
    '/cw',
    chatwootWebhook({
      secret: 'cw-cli',
      on: { message_created: (e) => void seen.push(`cw:${e.event}:${String(e.id)}`) },
    }),
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
    stripeWebhook({ secret: 'whsec_cli', onEvent: (e) => void seen.push(`stripe:${e.type}:${e.id}`) }),
  );
  // An inline handler slower than Chatwoot waits (5 s): the answer arrives, too late for Chatwoot.
  app.post('/slow', chatwootWebhook({ secret: 'cw-cli', onEvent: () => sleep(5300) }));
  server = await listening(app.listen(0, '127.0.0.1'));
});
afterAll(() => server.close());

/** Runs the CLI in-process: its exit code, its lines (stdout), its warnings (stderr), how long it took. */
async function cli(
  args: string[],
): Promise<{ code: number; lines: string[]; warnings: string[]; ms: number }> {
  const lines: string[] = [];
  const warnings: string[] = [];
  const started = performance.now();
  const code = await main(
    args,
    (l) => void lines.push(l),
    (l) => void warnings.push(l),
  );
  return { code, lines, warnings, ms: performance.now() - started };
}

/** An answer line: `1/3 200 in 12 ms {"ok":true}`. */
const answer = (prefix: string, body: string) =>
  expect.stringMatching(new RegExp(`^${prefix} in \\d+ ms ${body.replace(/[{}[\]().*+?^$|\\]/g, '\\$&')}$`));

describe('hookguard send', () => {
  it('sends a signed Chatwoot delivery, each answer with its latency; --repeat shows the duplicates', async () => {
    seen.length = 0;
    const { code, lines, warnings } = await cli([
      'send',
      'chatwoot',
      server.url('/cw'),
      '--secret',
      'cw-cli',
      '--repeat',
      '3',
    ]);
    expect(code).toBe(0);
    expect(lines).toEqual([
      answer('1/3 200', '{"ok":true}'),
      answer('2/3 200', '{"ok":true,"duplicate":true}'),
      answer('3/3 200', '{"ok":true,"duplicate":true}'),
    ]);
    expect(warnings).toEqual([]);
    expect(seen).toEqual([expect.stringMatching(/^cw:message_created:\d+$/)]);
  });

  it('sends Stripe events of the given type, a file as the payload, and the legacy scheme', async () => {
    seen.length = 0;
    expect(
      (
        await cli([
          'send',
          'stripe',
          server.url('/stripe'),
          '--secret',
          'whsec_cli',
          '--event',
          'invoice.paid',
        ])
      ).code,
    ).toBe(0);
    const file = join(tmpdir(), `hookguard-cli-${process.pid}.json`);
    writeFileSync(file, JSON.stringify({ id: 'evt_from_file', type: 'customer.created', object: 'event' }));
    // The file's own type is sent (no warning about it: the payload is the user's); --event is said to be ignored.
    const fromFile = ['send', 'stripe', server.url('/stripe'), '--secret', 'whsec_cli', '--file', file];
    expect(await cli([...fromFile, '--event', 'invoice.paid'])).toMatchObject({
      code: 0,
      warnings: ['warning: --event is ignored: the payload and its event come from --file'],
    });
    expect(
      (await cli(['send', 'chatwoot', server.url('/legacy'), '--secret', 'cw-cli', '--legacy'])).code,
    ).toBe(0);
    expect(seen).toEqual([
      expect.stringMatching(/^stripe:invoice\.paid:evt_/),
      'stripe:customer.created:evt_from_file',
      'legacy:message_created',
    ]);
  });

  it('--new-id sends a fixture again as a new event (fresh evt_ id / message id, re-signed); without it, a duplicate', async () => {
    seen.length = 0;
    const stripeFile = join(tmpdir(), `hookguard-cli-new-id-${process.pid}.json`);
    writeFileSync(stripeFile, JSON.stringify({ id: 'evt_fixture_1', type: 'invoice.paid', object: 'event' }));
    const chatwootFile = join(tmpdir(), `hookguard-cli-new-id-cw-${process.pid}.json`);
    const message = { event: 'message_created', id: 4242, message_type: 'incoming', private: false };
    writeFileSync(chatwootFile, JSON.stringify({ ...message, account: { id: 1 }, content: 'hi' }));
    const stripe = ['send', 'stripe', server.url('/stripe'), '--secret', 'whsec_cli', '--file', stripeFile];
    const chatwoot = ['send', 'chatwoot', server.url('/cw'), '--secret', 'cw-cli', '--file', chatwootFile];
    expect((await cli(stripe)).lines).toEqual([answer('1/1 200', '{"ok":true}')]);
    expect((await cli(stripe)).lines).toEqual([answer('1/1 200', '{"ok":true,"duplicate":true}')]);
    expect((await cli([...stripe, '--new-id'])).lines).toEqual([answer('1/1 200', '{"ok":true}')]);
    expect((await cli(chatwoot)).lines).toEqual([answer('1/1 200', '{"ok":true}')]);
    expect((await cli(chatwoot)).lines).toEqual([answer('1/1 200', '{"ok":true,"duplicate":true}')]);
    expect((await cli([...chatwoot, '--new-id'])).lines).toEqual([answer('1/1 200', '{"ok":true}')]);
    // Within one run the new id is one event: --repeat shows its duplicates.
    expect((await cli([...chatwoot, '--new-id', '--repeat', '2'])).lines).toEqual([
      answer('1/2 200', '{"ok":true}'),
      answer('2/2 200', '{"ok":true,"duplicate":true}'),
    ]);
    expect(seen).toEqual([
      'stripe:invoice.paid:evt_fixture_1',
      expect.stringMatching(/^stripe:invoice\.paid:evt_[A-Za-z0-9]{24}$/),
      'cw:message_created:4242',
      expect.stringMatching(/^cw:message_created:\d{10}$/),
      expect.stringMatching(/^cw:message_created:\d{10}$/),
    ]);
    expect(new Set(seen).size).toBe(5);
    writeFileSync(stripeFile, '[1, 2]');
    expect(await cli([...stripe, '--new-id'])).toMatchObject({
      code: 2,
      lines: ['error: --new-id needs a JSON object as the payload'],
    });
  });

  it('--timestamp signs with the given time in seconds (the receiver judges it); milliseconds are refused as such', async () => {
    const now = Math.floor(Date.now() / 1000);
    const stripe = ['send', 'stripe', server.url('/stripe'), '--secret', 'whsec_cli'];
    expect((await cli([...stripe, '--timestamp', String(now - 10)])).code).toBe(0);
    expect(await cli([...stripe, '--timestamp', String(now - 3600)])).toMatchObject({
      code: 1,
      lines: [answer('1/1 401', '{"error":{"code":"TIMESTAMP_OUT_OF_TOLERANCE"}}')],
    });
    const ms = await cli([...stripe, '--timestamp', String(now * 1000)]);
    expect(ms).toMatchObject({
      code: 2,
      lines: [`error: --timestamp ${now * 1000} looks like milliseconds: pass seconds (${now})`],
    });
  });

  it('exits 1 and prints the answer when the server refuses (wrong secret)', async () => {
    const { code, lines } = await cli(['send', 'stripe', server.url('/stripe'), '--secret', 'whsec_wrong']);
    expect(code).toBe(1);
    expect(lines).toEqual([answer('1/1 401', '{"error":{"code":"SIGNATURE_MISMATCH"}}')]);
  });

  it('a mistake on the command line is exit 2 with a line that says what is wrong', async () => {
    const cases: [string[], string][] = [
      [
        ['send', 'github', 'http://x', '--secret', 's'],
        'error: unknown provider github (chatwoot or stripe)',
      ],
      [
        ['send', 'chatwoot', 'localhost:3000/hook', '--secret', 's'],
        'error: localhost:3000/hook needs http:// or https:// in front (like http://localhost:3000/hook)',
      ],
      [
        ['send', 'stripe', 'ftp://host/hook', '--secret', 's'],
        'error: ftp://host/hook is not an http:// or https:// URL',
      ],
      [['send', 'stripe', 'http://x'], 'error: a secret is required (--secret or HOOKGUARD_SECRET)'],
      [
        ['send', 'stripe', 'http://x', '--secret', 's', '--repeat', '0'],
        'error: --repeat must be a positive integer',
      ],
      [
        ['send', 'stripe', 'http://x', '--secret', 's', '--timeout', '0'],
        'error: --timeout takes a number of seconds above 0, like 10',
      ],
      [
        ['send', 'chatwoot', 'http://x', '--secret', 's', '--legacy', '--timestamp', '1764000000'],
        "error: --timestamp does nothing with --legacy: the 'legacy-body' scheme signs no time",
      ],
      [
        ['send', 'stripe', 'http://x', 'extra', '--secret', 's'],
        'error: unexpected argument extra after the URL',
      ],
      [['sned', 'stripe'], 'error: unknown command sned (send or inbox)'],
      [
        ['inbox', 'list', '--redis', 'redis://x'],
        'error: unknown inbox command list (failed, retry or stats)',
      ],
      [
        ['inbox', 'retry', '--redis', 'redis://x'],
        'error: retry needs the id of a failed job (from hookguard inbox failed), or --all',
      ],
      [
        ['inbox', 'failed', '--redis', 'redis://x', '--limit', 'all'],
        'error: --limit must be a positive integer',
      ],
      [
        ['inbox', 'stats', '--redis', 'redis://x', '--warn-after', '1m'],
        'error: --warn-after takes a number of seconds, like 10',
      ],
      [
        ['inbox', 'stats', '--redis', 'redis://x', '--max-failed', '1.5'],
        'error: --max-failed takes a number of jobs, 0 or more',
      ],
    ];
    for (const [args, expected] of cases) {
      const { code, lines } = await cli(args);
      expect({ args, code, first: lines.join('\n').split('\n')[0] }).toEqual({
        args,
        code: 2,
        first: expected,
      });
    }
    // Where the shape of the line is wrong, the usage follows.
    expect((await cli(['send', 'github', 'http://x'])).lines[0]).toMatch(/\nusage: hookguard send /);
    expect((await cli([])).lines[0]).toMatch(/^usage: hookguard send /);
  });

  it('Chatwoot events are a closed list (refused), Stripe types an open one (sent, with a warning when hookguard has no full payload)', async () => {
    seen.length = 0;
    const chatwoot = await cli([
      'send',
      'chatwoot',
      server.url('/cw'),
      '--secret',
      'cw-cli',
      '--event',
      'bogus_event',
    ]);
    expect(chatwoot).toMatchObject({
      code: 2,
      lines: [
        expect.stringMatching(/^error: unknown Chatwoot event "bogus_event"; use one of: message_created, /),
      ],
    });
    const stripe = ['send', 'stripe', server.url('/stripe'), '--secret', 'whsec_cli', '--event'];
    const known = await cli([...stripe, 'customer.subscription.deleted']);
    expect(known).toMatchObject({ code: 0, warnings: [] });
    const other = await cli([...stripe, 'product.updated']);
    expect(other.code).toBe(0);
    expect(other.warnings).toEqual([
      'warning: sending "product.updated" with a data.object that holds only its id and object: hookguard builds full objects for checkout.session, payment_intent, charge, charge.refund, refund, invoice, customer.subscription events. Check the spelling, or pass --file with a payload of your own.',
    ]);
    const typo = await cli([...stripe, 'invoce.paid']);
    expect(typo.warnings).toEqual([
      expect.stringMatching(/^warning: sending "invoce\.paid" with a data\.object/),
    ]);
    expect(seen).toEqual([
      expect.stringMatching(/^stripe:customer\.subscription\.deleted:/),
      expect.stringMatching(/^stripe:product\.updated:/),
      expect.stringMatching(/^stripe:invoce\.paid:/),
    ]);
    expect(await cli([...stripe, 'Bogus Event'])).toMatchObject({
      code: 2,
      lines: [
        'error: "Bogus Event" is not a Stripe event type (like checkout.session.completed or invoice.paid).',
      ],
    });
  });

  it('says in one line what to fix, never a stack trace, and exits non-zero', async () => {
    const closedPort = await freePort();
    const cases: [string[], RegExp][] = [
      [['--file', '/nonexistent.json'], /^error: cannot read --file \/nonexistent\.json \(ENOENT\)/],
      [['--bogus'], /^error: Unknown option '--bogus'\nusage: /],
    ];
    for (const [extra, expected] of cases) {
      const { code, lines } = await cli([
        'send',
        'chatwoot',
        server.url('/cw'),
        '--secret',
        'cw-cli',
        ...extra,
      ]);
      expect(code).toBe(2);
      expect(lines.join('\n')).toMatch(expected);
      expect(lines.join('\n')).not.toMatch(/\n\s+at /);
    }
    // Two engines named: which inbox is meant is not guessed.
    expect(
      await cli([
        'inbox',
        'stats',
        '--redis',
        'redis://127.0.0.1:6379',
        '--postgres',
        'postgres://127.0.0.1/test',
      ]),
    ).toMatchObject({
      code: 2,
      lines: ['error: --redis and --postgres name two inboxes: give the one this command is for'],
    });
    const refused = await cli(['send', 'chatwoot', `http://127.0.0.1:${closedPort}/cw`, '--secret', 'x']);
    expect(refused).toMatchObject({
      code: 1,
      lines: [
        `1/1 error: connection refused by 127.0.0.1:${closedPort} (ECONNREFUSED): is the server running on that port?`,
      ],
    });
  });

  it('prints its version and its help, exit 0', async () => {
    const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
      version: string;
    };
    for (const flag of ['--version', '-v']) {
      expect(await cli([flag])).toMatchObject({ code: 0, lines: [version] });
    }
    const help = await cli(['--help']);
    expect(help.code).toBe(0);
    expect(help.lines[0]).toMatch(/^usage: hookguard send .*\n\s+hookguard inbox failed\|retry\|stats /);
    // Every flag the parser takes is in the help.
    for (const flag of [
      'secret',
      'event',
      'file',
      'new-id',
      'repeat',
      'timestamp',
      'timeout',
      'legacy',
      'redis',
      'postgres',
      'queue',
      'limit',
      'warn-after',
      'max-failed',
      'all',
    ]) {
      expect(help.lines[0]).toMatch(new RegExp(`\\n  --${flag} `));
    }
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
      answer('1/2 200', '{"ok":true}'),
      answer('2/2 200', '{"ok":true,"duplicate":true}'),
    ]);
  });
});

// Slow answers, run side by side: each waits out a timeout of its own.
describe.concurrent('hookguard send: slow answers and none', () => {
  it("shows an answer past Chatwoot's 5 s with its latency and a warning that names the durable inbox", async () => {
    const { code, lines, warnings } = await cli([
      'send',
      'chatwoot',
      server.url('/slow'),
      '--secret',
      'cw-cli',
    ]);
    expect(code).toBe(0);
    expect(lines).toEqual([expect.stringMatching(/^1\/1 200 in 5\.\d s \{"ok":true\}$/)]);
    expect(warnings).toEqual([
      expect.stringMatching(
        /^warning: an answer took 5\.\d s, past Chatwoot's 5 s \(its WEBHOOK_TIMEOUT default\): Chatwoot would count a failure .* the durable inbox \(hookguard\/bullmq or hookguard\/pg-boss\)\.$/,
      ),
    ]);
  }, 15_000);

  it('gives up on a server that accepts and never answers after 10 s by default, in one line, exit 1', async () => {
    const silent = await silentServer();
    try {
      const result = await cli(['send', 'chatwoot', `http://127.0.0.1:${silent.port}/cw`, '--secret', 'x']);
      expect(result).toMatchObject({
        code: 1,
        lines: [
          `1/1 error: no answer from 127.0.0.1:${silent.port} within 10 s (--timeout): the server is stuck, or its handler is slow; that is past Chatwoot's 5 s (its WEBHOOK_TIMEOUT default): Chatwoot would count a failure and, for a message, hand a pending agent-bot conversation to a human or mark an API-inbox message failed; answer at once and run the handler in a worker: the durable inbox (hookguard/bullmq or hookguard/pg-boss).`,
        ],
      });
      expect(result.ms).toBeGreaterThan(9500);
      expect(result.ms).toBeLessThan(12_000);
    } finally {
      await silent.close();
    }
  }, 20_000);

  it('--timeout bounds each answer, and the real process exits 1 with one line', async () => {
    const silent = await silentServer();
    try {
      const cliPath = fileURLToPath(new URL('../src/cli.ts', import.meta.url));
      const started = performance.now();
      const failure = (await promisify(execFile)(
        process.execPath,
        [
          '--import',
          'tsx',
          cliPath,
          'send',
          'stripe',
          `http://127.0.0.1:${silent.port}/s`,
          '--secret',
          's',
          '--timeout',
          '1',
          '--repeat',
          '2',
        ],
        { timeout: 20_000 },
      ).then(
        () => undefined,
        (err: unknown) => err,
      )) as { code?: number; killed?: boolean; stdout?: string } | undefined;
      expect(failure).toMatchObject({ code: 1, killed: false });
      expect(failure!.stdout!.trim().split('\n')).toEqual([
        `1/2 error: no answer from 127.0.0.1:${silent.port} within 1.0 s (--timeout): the server is stuck, or its handler is slow.`,
        `2/2 error: no answer from 127.0.0.1:${silent.port} within 1.0 s (--timeout): the server is stuck, or its handler is slow.`,
      ]);
      expect(performance.now() - started).toBeLessThan(8000);
    } finally {
      await silent.close();
    }
  }, 25_000);
});

// `hookguard inbox` against engines of the test's own (a private redis-server with a password, closed
// ports, servers that accept and never answer): it uses the whole URL, and a failure is one line, fast.
const PASSWORD = 'pw';
const pgAvailable = await postgresUp();
let redis: PrivateRedis;
beforeAll(async () => {
  redis = await startPrivateRedis({ password: PASSWORD });
});
afterAll(() => redis.stop());

/** `hookguard inbox …` in-process. */
const inbox = (args: string[]) => cli(['inbox', ...args]);

/** Adds each job to `queueName` and has a worker fail its only attempt with the given error; the ids. */
async function failJobs(
  connection: ConnectionOptions,
  queueName: string,
  jobs: { data: unknown; error: string }[],
): Promise<string[]> {
  const queue = new Queue(queueName, { connection });
  const errors = new Map<string, string>();
  for (const [i, job] of jobs.entries()) {
    const added = await queue.add(`job ${i}`, job.data, { attempts: 1, removeOnFail: false });
    errors.set(added.id!, job.error);
  }
  let failed = 0;
  const done = new Promise<void>((resolve) => {
    const worker = new Worker(queueName, (job) => Promise.reject(new Error(errors.get(job.id!))), {
      connection,
    });
    worker.on('failed', () => {
      if (++failed === jobs.length) resolve(worker.close());
    });
  });
  await done;
  await queue.close();
  return [...errors.keys()];
}

/** A TCP server that accepts connections and never says a word (a frozen or wrong server). */
async function silentServer(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => void sockets.add(socket.on('error', () => undefined)));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    close: () => {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

const BOUND_MS = 5000;

/** One line, naming the engine and the host, with no stack trace and no password. */
function expectOneLine(result: { code: number; lines: string[]; ms: number }, expected: RegExp): void {
  expect(result.lines).toEqual([expect.stringMatching(expected)]);
  expect(result.lines[0]).not.toMatch(/\n|\r|\bat .*:\d+:\d+/);
  expect(result.lines[0]).not.toContain('\u001b');
  expect(result.code).toBe(1);
  expect(result.ms).toBeLessThan(BOUND_MS);
}

describe('hookguard inbox: the whole --redis URL', () => {
  it('logs in with the password and reads the database of the path (/3), not database 0', async () => {
    const queueName = `hg-cli-${randomUUID()}`;
    const connection = { host: '127.0.0.1', port: redis.port, password: PASSWORD, db: 3 };
    const data = { provider: 'stripe', name: 'invoice.paid', key: 'stripe:evt_db3', deliveryId: undefined };
    await failJobs(connection, queueName, [{ data, error: 'ledger offline' }]);

    const inDb3 = await inbox(['failed', '--redis', `${redis.url}/3`, '--queue', queueName]);
    expect(inDb3).toMatchObject({ code: 0 });
    // The dedup key says what the job is about; the id (hg-… for hookguard's jobs) does not.
    expect(inDb3.lines).toEqual([
      expect.stringMatching(
        /^\S+ {2}stripe invoice\.paid {2}stripe:evt_db3 {2}1 attempts {2}\S+ {2}ledger offline$/,
      ),
    ]);
    // Another database of the same server holds no such queue: `retry --all` there touches nothing.
    const where = `this Redis (127.0.0.1:${redis.port})`;
    expect((await inbox(['failed', '--redis', redis.url, '--queue', queueName])).lines).toEqual([
      `no failed jobs in queue ${queueName}`,
      `queue ${queueName} holds no jobs, nor does any other queue on ${where}: is this the inbox's server and database number?`,
    ]);
    expect(
      (await inbox(['retry', '--all', '--redis', `${redis.url}/0`, '--queue', queueName])).lines[0],
    ).toEqual(`0 failed jobs of queue ${queueName} queued again`);
    const again = await inbox(['retry', '--all', '--redis', `${redis.url}/3`, '--queue', queueName]);
    expect(again).toMatchObject({ code: 0, lines: [`1 failed job of queue ${queueName} queued again`] });
  }, 15_000);

  it('says a wrong or missing password in one line (WRONGPASS, NOAUTH) within 5 s, exit 1, never printing it', async () => {
    const host = `127\\.0\\.0\\.1:${redis.port}`;
    const wrong = await inbox(['failed', '--redis', `redis://:hunter2x@127.0.0.1:${redis.port}/3`]);
    expectOneLine(wrong, new RegExp(`^error: Redis at ${host}: wrong user or password \\(WRONGPASS `));
    expect(wrong.lines[0]).not.toContain('hunter2x');
    const user = await inbox(['failed', '--redis', `redis://nobody:hunter2x@127.0.0.1:${redis.port}`]);
    expectOneLine(user, /WRONGPASS/);
    expect(user.lines[0]).not.toContain('hunter2x');
    const none = await inbox(['failed', '--redis', `redis://127.0.0.1:${redis.port}/3`]);
    expectOneLine(none, new RegExp(`^error: Redis at ${host}: the server wants a password: .*\\(NOAUTH `));
    const noDb = await inbox(['failed', '--redis', `${redis.url}/99`]);
    expectOneLine(noDb, /^error: Redis at .*: cannot use that database .*DB index is out of range/);
  }, 20_000);

  it('says in one line within 5 s that nothing listens on the port, exit 1', async () => {
    const port = await freePort();
    const refused = await inbox(['failed', '--redis', `redis://:hunter2x@127.0.0.1:${port}/3`]);
    expectOneLine(
      refused,
      new RegExp(`^error: Redis at 127\\.0\\.0\\.1:${port}: connection refused: .*ECONNREFUSED`),
    );
    expect(refused.lines[0]).not.toContain('hunter2x');
  }, 15_000);

  it('speaks TLS for rediss://: against a plain server it fails within the bound instead of talking plaintext', async () => {
    const tls = await inbox(['failed', '--redis', `rediss://:${PASSWORD}@127.0.0.1:${redis.port}/3`]);
    expectOneLine(
      tls,
      new RegExp(`^error: Redis at 127\\.0\\.0\\.1:${redis.port}: no TLS handshake within 3 s`),
    );
  }, 15_000);

  it('gives up on a server that accepts and never answers, and the process exits 1', async () => {
    const silent = await silentServer();
    try {
      expectOneLine(
        await inbox(['failed', '--redis', `redis://127.0.0.1:${silent.port}`]),
        /^error: Redis at 127\.0\.0\.1:\d+: no answer within 3 s/,
      );
      const cli = fileURLToPath(new URL('../src/cli.ts', import.meta.url));
      const run = promisify(execFile)(
        process.execPath,
        ['--import', 'tsx', cli, 'inbox', 'failed', '--redis', `redis://127.0.0.1:${silent.port}`],
        { timeout: 20_000 },
      );
      const failure = (await run.then(
        () => undefined,
        (err: unknown) => err,
      )) as { code?: number; killed?: boolean; stdout?: string } | undefined;
      expect(failure).toMatchObject({ code: 1, killed: false });
      expect(failure!.stdout!.trim().split('\n')).toEqual([expect.stringMatching(/^error: Redis at /)]);
    } finally {
      await silent.close();
    }
  }, 30_000);
});

describe('hookguard inbox: an unreachable --postgres', () => {
  it('says in one line within 5 s that nothing listens, or that the server does not answer; exit 1', async () => {
    const port = await freePort();
    const refused = await inbox([
      'failed',
      '--postgres',
      `postgres://postgres:hunter2x@127.0.0.1:${port}/db`,
    ]);
    expectOneLine(
      refused,
      new RegExp(`^error: PostgreSQL at 127\\.0\\.0\\.1:${port}: connection refused: .*ECONNREFUSED`),
    );
    expect(refused.lines[0]).not.toContain('hunter2x');
    const silent = await silentServer();
    try {
      expectOneLine(
        await inbox(['failed', '--postgres', `postgres://postgres@127.0.0.1:${silent.port}/db`]),
        /^error: PostgreSQL at 127\.0\.0\.1:\d+: no answer within 3 s/,
      );
    } finally {
      await silent.close();
    }
  }, 20_000);
});

// What a handler throws can quote a customer ("\n| fake row |" and escape sequences); the event name and
// the data come from outside too. One line per job, escaped and bounded; a job BullMQ cannot even parse
// (its data is not JSON) is listed as far as it can be, and the others with it. These run without a
// password (a server of their own), so that each fails for its own reason on the old code.
const UNTRUSTED_JOBS = [
  {
    data: { provider: 'chatwoot', name: 'message_created\u001b]0;pwned\u0007', key: 'k\r\n1' },
    error: 'boom\n| fake row |\u001b[31m',
  },
  { data: { provider: 'stripe', name: 'invoice.paid', key: 'k2' }, error: `long ${'x'.repeat(10_000)}` },
];

function expectEscaped({ code, lines }: { code: number; lines: string[] }): void {
  expect(code).toBe(0);
  expect(lines).toHaveLength(2);
  for (const line of lines) {
    // eslint-disable-next-line no-control-regex -- no raw control character may reach the terminal
    expect(line).not.toMatch(/[\u0000-\u001f\u007f-\u009f]/);
    expect(line.length).toBeLessThan(400);
  }
  expect(lines).toContainEqual(
    expect.stringMatching(
      /^\S+ {2}chatwoot message_created\\u001b\]0;pwned\\u0007 {2}k\\r\\n1 {2}1 attempts {2}\S+ {2}boom\\n\| fake row \|\\u001b\[31m$/,
    ),
  );
  expect(lines).toContainEqual(expect.stringMatching(/^\S+ {2}stripe invoice\.paid {2}k2 {2}.* long x+…$/));
}

describe('hookguard inbox failed: untrusted text', () => {
  let open: PrivateRedis;
  beforeAll(async () => {
    open = await startPrivateRedis();
  });
  afterAll(() => open.stop());

  it('BullMQ: one line per job, control characters escaped, long errors cut', async () => {
    const queueName = `hg-cli-${randomUUID()}`;
    await failJobs({ host: '127.0.0.1', port: open.port }, queueName, UNTRUSTED_JOBS);
    expectEscaped(await inbox(['failed', '--redis', open.url, '--queue', queueName]));
  }, 15_000);

  it('BullMQ: a job whose data is not JSON, or null, does not hide the others', async () => {
    const queueName = `hg-cli-${randomUUID()}`;
    const ids = await failJobs({ host: '127.0.0.1', port: open.port }, queueName, [
      { data: null, error: 'not one of ours' },
      { data: { provider: 'stripe', name: 'invoice.paid', key: 'k3' }, error: 'damaged later' },
      { data: { provider: 'stripe', name: 'invoice.paid', key: 'k4' }, error: 'ledger offline' },
    ]);
    // Another tool (or a damaged write) left data BullMQ cannot parse.
    const raw = new Redis({ host: '127.0.0.1', port: open.port });
    await raw.hset(`bull:${queueName}:${ids[1]}`, 'data', 'not json {\u001b[2J');
    raw.disconnect();
    const { code, lines } = await inbox(['failed', '--redis', open.url, '--queue', queueName]);
    expect(code).toBe(0);
    expect(lines).toHaveLength(3);
    expect(lines).toContainEqual(
      expect.stringMatching(/^\S+ {2}\(not a hookguard job[^)]*\) - .* {2}not one of ours$/),
    );
    expect(lines).toContainEqual(
      expect.stringMatching(
        new RegExp(
          `^${ids[1]} {2}\\(not a hookguard job\\) - {2}- {2}\\? attempts {2}- {2}unreadable job \\(SyntaxError: `,
        ),
      ),
    );
    expect(lines.join('\n')).not.toContain('\u001b');
    expect(lines).toContainEqual(
      expect.stringMatching(/^\S+ {2}stripe invoice\.paid {2}k4 {2}1 attempts {2}\S+ {2}ledger offline$/),
    );
  }, 15_000);

  it.runIf(requireService('PostgreSQL', pgAvailable))(
    'pg-boss: one line per job, control characters escaped, long errors cut',
    async () => {
      const queueName = `hg_cli_${randomUUID().replaceAll('-', '_')}`;
      const boss = new PgBoss({ connectionString: DATABASE_URL, supervise: false, schedule: false });
      boss.on('error', () => undefined);
      await boss.start();
      try {
        await boss.createQueue(queueName, { name: queueName, retryLimit: 0 });
        for (const job of UNTRUSTED_JOBS) {
          const id = await boss.send(queueName, job.data);
          await boss.fail(queueName, id!, { message: job.error });
        }
        expectEscaped(await inbox(['failed', '--postgres', DATABASE_URL, '--queue', queueName]));
      } finally {
        await dropPgBossQueue(boss, queueName);
        await boss.stop({ graceful: false, wait: true });
      }
    },
    20_000,
  );
});

// Every inbox command against every way an engine can be unreachable: one line, exit 1, within the bound.
describe.concurrent('hookguard inbox: every command is bounded', () => {
  const verbs = [['failed'], ['retry', '--all'], ['retry', 'hg-some-id'], ['stats']];
  it.each(verbs.map((verb) => [verb.join(' '), verb] as const))(
    '%s: a closed port and a server that never answers, Redis and PostgreSQL',
    async (_name, verb) => {
      const closed = await freePort();
      const silent = await silentServer();
      try {
        const [refusedRedis, silentRedis, refusedPg, silentPg] = await Promise.all([
          inbox([...verb, '--redis', `redis://127.0.0.1:${closed}`]),
          inbox([...verb, '--redis', `redis://127.0.0.1:${silent.port}`]),
          inbox([...verb, '--postgres', `postgres://postgres@127.0.0.1:${closed}/db`]),
          inbox([...verb, '--postgres', `postgres://postgres@127.0.0.1:${silent.port}/db`]),
        ]);
        expectOneLine(
          refusedRedis,
          new RegExp(`^error: Redis at 127\\.0\\.0\\.1:${closed}: connection refused: `),
        );
        expectOneLine(
          silentRedis,
          new RegExp(`^error: Redis at 127\\.0\\.0\\.1:${silent.port}: no answer within 3 s`),
        );
        expectOneLine(
          refusedPg,
          new RegExp(`^error: PostgreSQL at 127\\.0\\.0\\.1:${closed}: connection refused: `),
        );
        expectOneLine(
          silentPg,
          new RegExp(`^error: PostgreSQL at 127\\.0\\.0\\.1:${silent.port}: no answer within 3 s`),
        );
      } finally {
        await silent.close();
      }
    },
    20_000,
  );
});

// A shared Redis (or database) holds other applications' queues; the default name may not be the inbox's.
describe('hookguard inbox: the queue names', () => {
  let own: PrivateRedis;
  beforeAll(async () => {
    own = await startPrivateRedis();
  });
  afterAll(() => own.stop());

  it('BullMQ: an empty queue names the other queues that hold jobs (escaped, at most 10) and --queue', async () => {
    const connection = { host: '127.0.0.1', port: own.port };
    await failJobs(connection, 'billing', [
      {
        data: { provider: 'stripe', name: 'invoice.paid', key: 'stripe:evt_billing' },
        error: 'ledger offline',
      },
    ]);
    for (const name of [
      'evil\u001b[2J\nrow',
      ...Array.from({ length: 11 }, (_, i) => `q${String(i).padStart(2, '0')}`),
    ]) {
      const queue = new Queue(name, { connection });
      await queue.add('waits', { provider: 'chatwoot' });
      await queue.close();
    }
    // A queue that exists but holds nothing is not worth naming.
    await new Queue('drained', { connection }).close();
    const shown = [
      'billing (1 job, 1 failed)',
      'evil\\u001b[2J\\nrow (1 job)',
      ...Array.from({ length: 8 }, (_, i) => `q0${i} (1 job)`),
    ];
    const hint = `queue hookguard holds no jobs, but other queues on this Redis (127.0.0.1:${own.port}) do: ${shown.join(', ')} and more; pass --queue <name>`;
    expect(await inbox(['failed', '--redis', own.url])).toMatchObject({
      code: 0,
      lines: ['no failed jobs in queue hookguard', hint],
    });
    expect(await inbox(['stats', '--redis', own.url])).toMatchObject({
      code: 0,
      lines: [
        'queue hookguard: 0 waiting, 0 active, 0 delayed, 0 failed, 0 completed; none waiting',
        'health: ok',
        hint,
      ],
    });
    expect(await inbox(['retry', 'hg-x', '--redis', own.url])).toMatchObject({
      code: 1,
      lines: ['hg-x is not a failed job of queue hookguard', hint],
    });
    // The named queue answers; a queue with jobs but none failed says only that.
    expect((await inbox(['failed', '--redis', own.url, '--queue', 'billing'])).lines).toEqual([
      expect.stringMatching(
        /^\S+ {2}stripe invoice\.paid {2}stripe:evt_billing {2}1 attempts {2}\S+ {2}ledger offline$/,
      ),
    ]);
    expect((await inbox(['failed', '--redis', own.url, '--queue', 'q00'])).lines).toEqual([
      'no failed jobs in queue q00',
    ]);
  }, 20_000);

  it.runIf(requireService('PostgreSQL', pgAvailable))(
    'pg-boss: an empty queue names the other queues of the database that hold jobs',
    async () => {
      const suffix = randomUUID().replaceAll('-', '_');
      // Named to sort first: the database holds other tests' queues too, and the list is bounded.
      const billing = `0hg_cli_billing_${suffix}`;
      const absent = `hg_cli_absent_${suffix}`;
      const boss = new PgBoss({ connectionString: DATABASE_URL, supervise: false, schedule: false });
      boss.on('error', () => undefined);
      await boss.start();
      try {
        await boss.createQueue(billing, { name: billing, retryLimit: 0 });
        const id = await boss.send(billing, {
          provider: 'stripe',
          name: 'invoice.paid',
          key: 'stripe:evt_pg',
        });
        await boss.fail(billing, id!, { message: 'ledger offline' });
        const { code, lines } = await inbox(['failed', '--postgres', DATABASE_URL, '--queue', absent]);
        expect(code).toBe(0);
        expect(lines).toEqual([
          `no failed jobs in queue ${absent}`,
          expect.stringMatching(
            new RegExp(
              `^queue ${absent} holds no jobs, but other queues on this database \\(127\\.0\\.0\\.1:5432\\) do: ${billing} \\(1 job, 1 failed\\)(, |; pass --queue <name>$)`,
            ),
          ),
        ]);
        expect((await inbox(['failed', '--postgres', DATABASE_URL, '--queue', billing])).lines).toEqual([
          expect.stringMatching(
            /^\S+ {2}stripe invoice\.paid {2}stripe:evt_pg {2}1 attempts {2}\S+ {2}ledger offline$/,
          ),
        ]);
      } finally {
        await dropPgBossQueue(boss, billing);
        await dropPgBossQueue(boss, absent);
        await boss.stop({ graceful: false, wait: true });
      }
    },
    20_000,
  );
});

describe('hookguard inbox stats', () => {
  let own: PrivateRedis;
  beforeAll(async () => {
    own = await startPrivateRedis();
  });
  afterAll(() => own.stop());
  const NOBODY =
    /^WARNING: the oldest waiting job has waited 2 min [5-9] s \(over 60 s\) and no job is running: nothing is taking jobs — is a worker running \(inbox\.worker\(…\)\)\?$/;
  const DEAD =
    'WARNING: 1 job failed (over 0), kept until retried: see why with hookguard inbox failed, run them again with retry';

  it('BullMQ: counts by state, the oldest waiting job, and a verdict: unhealthy (exit 1) when nothing takes jobs, when workers lag, when paused, when jobs are dead', async () => {
    const connection = { host: '127.0.0.1', port: own.port };
    const queueName = `hg-stats-${randomUUID()}`;
    await bullMQInStates(connection, queueName, 125_000);
    const args = ['stats', '--redis', own.url, '--queue', queueName];
    const idle = await inbox(args);
    expect(idle).toMatchObject({
      code: 1,
      lines: [
        expect.stringMatching(
          new RegExp(
            `^queue ${queueName}: 2 waiting, 0 active, 1 delayed, 1 failed, 1 completed; oldest waiting 2 min [5-9] s$`,
          ),
        ),
        'health: unhealthy (WAITING_TOO_LONG, DEAD_LETTERS)',
      ],
      warnings: [expect.stringMatching(NOBODY), DEAD],
    });
    // Each limit moves its own problem only; within both, the queue is healthy and the exit code 0.
    expect(await inbox([...args, '--warn-after', '300'])).toMatchObject({
      code: 1,
      lines: [expect.any(String), 'health: unhealthy (DEAD_LETTERS)'],
      warnings: [DEAD],
    });
    expect(await inbox([...args, '--max-failed', '1'])).toMatchObject({
      code: 1,
      lines: [expect.any(String), 'health: unhealthy (WAITING_TOO_LONG)'],
      warnings: [expect.stringMatching(NOBODY)],
    });
    expect(await inbox([...args, '--warn-after', '300', '--max-failed', '1'])).toEqual({
      code: 0,
      lines: [expect.stringMatching(/; oldest waiting 2 min [5-9] s$/), 'health: ok'],
      warnings: [],
      ms: expect.any(Number),
    });
    // A worker takes the oldest job and hangs on it: the other one waits while one runs.
    let release = () => {};
    const hanging = new Promise<void>((resolve) => (release = resolve));
    const worker = new Worker(queueName, () => hanging, { connection });
    try {
      const queue = new Queue(queueName, { connection });
      while ((await queue.getActiveCount()) === 0) await sleep(20);
      await queue.close();
      const busy = await inbox([...args, '--max-failed', '1']);
      expect(busy).toMatchObject({
        code: 1,
        lines: [
          expect.stringMatching(/: 1 waiting, 1 active, 1 delayed, .*; oldest waiting 1 min 3[5-9] s$/),
          'health: unhealthy (WAITING_TOO_LONG)',
        ],
        warnings: [
          expect.stringMatching(
            /^WARNING: the oldest waiting job has waited 1 min 3\d s \(over 60 s\) while 1 run: the workers do not keep up, or their handlers hang/,
          ),
        ],
      });
    } finally {
      release();
      await worker.close();
    }
    const queue = new Queue(queueName, { connection });
    await queue.add('waits', { provider: 'chatwoot' });
    const client = (await redisOf(queue)) as unknown as Redis;
    const [id] = await queue.getRanges(['wait'], 0, 0, true);
    await client.hset(queue.toKey(id!), { timestamp: String(Date.now() - 90_000) });
    await queue.pause();
    await queue.close();
    // Paused, the wait's cause is the pause: one problem, PAUSED, in the words the stall had.
    const paused = await inbox([...args, '--max-failed', '1']);
    expect(paused).toMatchObject({
      code: 1,
      lines: [expect.stringMatching(/; oldest waiting 1 min 3\d s; paused$/), 'health: unhealthy (PAUSED)'],
      warnings: [
        expect.stringMatching(
          /^WARNING: the oldest waiting job has waited 1 min 3\d s \(over 60 s\): the queue is paused; its jobs run once it is resumed$/,
        ),
      ],
    });
    // Still paused however young the jobs: nothing runs until it is resumed.
    expect(await inbox([...args, '--max-failed', '1', '--warn-after', '300'])).toMatchObject({
      code: 1,
      lines: [expect.any(String), 'health: unhealthy (PAUSED)'],
      warnings: ['WARNING: the queue is paused; its jobs run once it is resumed'],
    });
  }, 20_000);

  it.runIf(requireService('PostgreSQL', pgAvailable))(
    'pg-boss: counts by state from its job table and the oldest ready job, and the verdict',
    async () => {
      const queueName = `hg_cli_stats_${randomUUID().replaceAll('-', '_')}`;
      const boss = new PgBoss({ connectionString: DATABASE_URL, supervise: false, schedule: false });
      boss.on('error', () => undefined);
      await boss.start();
      try {
        await pgBossInStates(boss, queueName, 125_000);
        const result = await inbox(['stats', '--postgres', DATABASE_URL, '--queue', queueName]);
        expect(result).toMatchObject({
          code: 1,
          lines: [
            expect.stringMatching(
              new RegExp(
                `^queue ${queueName}: 2 waiting, 1 active, 1 delayed, 1 failed, 1 completed; oldest waiting 2 min [4-9] s$`,
              ),
            ),
            'health: unhealthy (WAITING_TOO_LONG, DEAD_LETTERS)',
          ],
          warnings: [
            expect.stringMatching(
              /^WARNING: the oldest waiting job has waited 2 min [4-9] s \(over 60 s\) while 1 run: /,
            ),
            DEAD,
          ],
        });
        expect(
          await inbox(['stats', '--postgres', DATABASE_URL, '--queue', queueName, '--warn-after', '0']),
        ).toMatchObject({
          warnings: [expect.stringMatching(/\(over 0 s\)/), DEAD],
        });
        expect(
          await inbox([
            'stats',
            '--postgres',
            DATABASE_URL,
            '--queue',
            queueName,
            '--warn-after',
            '600',
            '--max-failed',
            '1',
          ]),
        ).toMatchObject({ code: 0, lines: [expect.any(String), 'health: ok'], warnings: [] });
      } finally {
        await dropPgBossQueue(boss, queueName);
        await boss.stop({ graceful: false, wait: true });
      }
    },
    20_000,
  );
});
