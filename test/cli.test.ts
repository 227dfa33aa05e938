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
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chatwootWebhook, stripeWebhook } from '../src/adapters/express.js';
import { main } from '../src/cli.js';
import { freePort, startPrivateRedis, type PrivateRedis } from './helpers/private-engines.js';
import { listening, type Running } from './helpers/servers.js';
import { DATABASE_URL, postgresUp, requireService } from './helpers/services.js';

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

// `hookguard inbox` against engines of the test's own (a private redis-server with a password, closed
// ports, servers that accept and never answer): it uses the whole URL, and a failure is one line, fast.
const PASSWORD = 'pw';
const pgAvailable = await postgresUp();
let redis: PrivateRedis;
beforeAll(async () => {
  redis = await startPrivateRedis({ password: PASSWORD });
});
afterAll(() => redis.stop());

/** Runs the CLI in-process: its exit code, its lines, and how long it took. */
async function inbox(args: string[]): Promise<{ code: number; lines: string[]; ms: number }> {
  const lines: string[] = [];
  const started = performance.now();
  const code = await main(['inbox', ...args], (l) => void lines.push(l));
  return { code, lines, ms: performance.now() - started };
}

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
    expect(inDb3.lines).toEqual([
      expect.stringMatching(/^\S+ {2}stripe invoice\.paid {2}1 attempts {2}\S+ {2}ledger offline$/),
    ]);
    // Another database of the same server holds no such queue: `retry --all` there touches nothing.
    expect((await inbox(['failed', '--redis', redis.url, '--queue', queueName])).lines).toEqual([
      'no failed jobs',
    ]);
    expect(
      (await inbox(['retry', '--all', '--redis', `${redis.url}/0`, '--queue', queueName])).lines,
    ).toEqual(['0 failed jobs queued again']);
    const again = await inbox(['retry', '--all', '--redis', `${redis.url}/3`, '--queue', queueName]);
    expect(again).toMatchObject({ code: 0, lines: ['1 failed jobs queued again'] });
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
      /^\S+ {2}chatwoot message_created\\u001b\]0;pwned\\u0007 {2}1 attempts {2}\S+ {2}boom\\n\| fake row \|\\u001b\[31m$/,
    ),
  );
  expect(lines).toContainEqual(expect.stringMatching(/^\S+ {2}stripe invoice\.paid .* long x+…$/));
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
          `^${ids[1]} {2}\\(not a hookguard job\\) - {2}\\? attempts {2}- {2}unreadable job \\(SyntaxError: `,
        ),
      ),
    );
    expect(lines.join('\n')).not.toContain('\u001b');
    expect(lines).toContainEqual(
      expect.stringMatching(/^\S+ {2}stripe invoice\.paid {2}1 attempts {2}\S+ {2}ledger offline$/),
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
        await boss.deleteQueue(queueName).catch(() => undefined);
        await boss.stop({ graceful: false, wait: true });
      }
    },
    20_000,
  );
});
