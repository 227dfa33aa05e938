// Private engines for the destructive tests: a redis-server or a PostgreSQL cluster of the test's own, on a
// free port, that the test may kill, freeze (SIGSTOP) and restart. The machine's shared servers are never
// touched. PostgreSQL refuses to run as root, so initdb and pg_ctl run as the `postgres` user then.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sleep } from './http.js';

export const freePort = () =>
  new Promise<number>((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });

/** Resolves once something accepts TCP connections on the port (at most `ms`). */
export async function waitForPort(port: number, ms = 10_000): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = createConnection({ port, host: '127.0.0.1' });
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    await sleep(50);
  }
  throw new Error(`nothing listens on 127.0.0.1:${port} after ${ms} ms`);
}

export interface PrivateRedis {
  port: number;
  url: string;
  /** The running server (replaced by restart). */
  readonly child: ChildProcess;
  kill(signal?: NodeJS.Signals): void;
  /** Starts the server again on the same port and data directory. */
  restart(): Promise<void>;
  /** Kills it for good and removes its directory. */
  stop(): Promise<void>;
}

/** A redis-server with AOF (every write fsynced unless `appendfsync` says otherwise). */
export async function startPrivateRedis(
  options: {
    password?: string;
    appendonly?: boolean;
    appendfsync?: string;
    /** Redis's own snapshot schedule when true; else none (`--save ""`). */
    snapshots?: boolean;
    port?: number;
  } = {},
): Promise<PrivateRedis> {
  const port = options.port ?? (await freePort());
  const dir = mkdtempSync(join(tmpdir(), 'hookguard-redis-'));
  const args = [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--dir',
    dir,
    ...(options.snapshots === true ? [] : ['--save', '']),
    '--appendonly',
    options.appendonly === false ? 'no' : 'yes',
    '--appendfsync',
    options.appendfsync ?? 'always',
    ...(options.password === undefined ? [] : ['--requirepass', options.password]),
  ];
  const launch = async () => {
    const child = spawn('redis-server', args, { stdio: 'ignore' });
    await waitForPort(port);
    return child;
  };
  let child = await launch();
  const exited = (c: ChildProcess) =>
    c.exitCode !== null || c.signalCode !== null
      ? Promise.resolve()
      : new Promise<void>((resolve) => c.once('exit', () => resolve()));
  const auth = options.password === undefined ? '' : `:${encodeURIComponent(options.password)}@`;
  return {
    port,
    url: `redis://${auth}127.0.0.1:${port}`,
    get child() {
      return child;
    },
    kill(signal = 'SIGKILL') {
      child.kill(signal);
    },
    async restart() {
      child.kill('SIGKILL');
      await exited(child);
      child = await launch();
    },
    async stop() {
      child.kill('SIGCONT');
      child.kill('SIGKILL');
      await exited(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface PrivatePostgres {
  port: number;
  /** postgres://postgres@127.0.0.1:<port>/postgres */
  url: string;
  /** `pg_ctl stop -m immediate`: a crash as far as clients can tell. */
  crash(): Promise<void>;
  start(): Promise<void>;
  /** The postmaster's pid (for SIGSTOP / SIGCONT). */
  pid(): number;
  stop(): Promise<void>;
}

const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;

function pgCommand(args: string[]): void {
  const [command, rest] = asRoot ? ['runuser', ['-u', 'postgres', '--', ...args]] : [args[0]!, args.slice(1)];
  const result = spawnSync(command, rest, { encoding: 'utf8', timeout: 60_000 });
  if (result.status !== 0) {
    throw new Error(
      `${args.slice(0, 2).join(' ')} failed: ${(result.stderr || result.stdout).slice(0, 400)}`,
    );
  }
}

/** A PostgreSQL cluster of the test's own (initdb in a temp directory, trust auth), started. */
export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  const port = await freePort();
  const root = mkdtempSync(join(tmpdir(), 'hookguard-pg-'));
  chmodSync(root, 0o777);
  const data = join(root, 'data');
  if (asRoot) spawnSync('chown', ['postgres', root]);
  pgCommand(['initdb', '-D', data, '-U', 'postgres', '-A', 'trust', '--no-sync', '-E', 'UTF8']);
  const options = `-p ${port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=${root} -c fsync=on`;
  const start = async () => {
    pgCommand(['pg_ctl', '-D', data, '-o', options, '-l', join(root, 'log'), '-w', 'start']);
    await waitForPort(port);
  };
  await start();
  return {
    port,
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    async crash() {
      pgCommand(['pg_ctl', '-D', data, '-m', 'immediate', 'stop']);
    },
    start,
    pid() {
      return Number(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
    },
    async stop() {
      try {
        pgCommand(['pg_ctl', '-D', data, '-m', 'immediate', 'stop']);
      } catch {
        // already stopped
      }
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/**
 * Collects what escapes as an uncaught exception or unhandled rejection while an engine is down (a client
 * that throws outside its promises), until `cleanups` runs; the test expects the list to stay empty.
 */
export function uncaughtDuring(cleanups: (() => unknown)[]): unknown[] {
  const uncaught: unknown[] = [];
  const onUncaught = (err: unknown) => void uncaught.push(err);
  process.on('uncaughtException', onUncaught);
  process.on('unhandledRejection', onUncaught);
  cleanups.push(() => {
    process.off('uncaughtException', onUncaught);
    process.off('unhandledRejection', onUncaught);
  });
  return uncaught;
}
