// The nginx recipe (examples/deploy/nginx/): two instances behind nginx, restarted one at a time by the
// recipe's rolling-restart.sh, through the recipe's own nginx.conf (only its three ports replaced) run as a
// private nginx. A Chatwoot-faithful sender delivers at a steady rate through nginx while the script
// restarts the instances; then one of the two is killed with SIGKILL to count what a crash costs.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { chmod, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { startWorkers, type Worker } from '../helpers/cluster.js';
import { describeTally, dropRun, steadyLoad, tallyRun, type Tally } from '../helpers/deploy-load.js';
import { obliterate } from '../helpers/deploy-queue.js';
import { redisUp, requireService } from '../helpers/services.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const RECIPE = join(ROOT, 'examples/deploy/nginx');
const INSTANCE = join(ROOT, 'test/helpers/deploy-instance.ts');
const SECRET = 'cw-deploy-nginx';
const ROUTES = ['/cw', '/cw/queued'];
const EVERY_MS = 20; // per route: 100 deliveries a second in all, about 50 to each instance
const HANDLER_MS = 150;

/** nginx on PATH, else Debian's /usr/sbin/nginx (not on a non-root PATH); undefined when neither runs. */
function findNginx(): string | undefined {
  return ['nginx', '/usr/sbin/nginx'].find((bin) => spawnSync(bin, ['-v']).status === 0);
}

/** As requireService: a loud skip locally, a failure in CI (scripts/ensure-services.sh installs it there). */
function requireNginx(bin: string | undefined): boolean {
  if (bin !== undefined) return true;
  const message = 'nginx is not installed (neither `nginx` on PATH nor /usr/sbin/nginx runs)';
  if (process.env.CI) {
    throw new Error(`${message}: CI must have it (scripts/ensure-services.sh installs Debian's nginx-light)`);
  }
  console.warn(`SKIPPED nginx recipe tests: ${message}. Install it: apt-get install nginx-light`);
  return false;
}

const FOUND = findNginx();
const NGINX = FOUND ?? 'nginx';
const available = await redisUp();
const runs: string[] = [];
/** What a test leaves running, undone after it even when it failed (last started, first stopped). */
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});
afterAll(async () => {
  for (const run of runs) {
    await dropRun(run);
    await obliterate(`hg-deploy-${run}`);
  }
});

/**
 * Free ports below Linux's ephemeral range (32768-60999): an instance's port is free while it restarts,
 * and one in that range can meanwhile become the source port of any process's outgoing connection
 * (nginx's own, to the other instance), so that the restart fails with EADDRINUSE.
 */
async function freePorts(count: number): Promise<number[]> {
  const ports: number[] = [];
  while (ports.length < count) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    const server = createServer();
    const free = await new Promise<boolean>((resolve) => {
      server.once('error', () => resolve(false));
      server.listen(port, () => resolve(true));
    });
    if (free) await new Promise((resolve) => server.close(resolve));
    if (free && !ports.includes(port)) ports.push(port);
  }
  return ports;
}

/**
 * A temp dir holding nginx's prefix (the rendered nginx.conf, its pid file, access log and temp dirs) and
 * the instances' pid files; readable by nginx's workers, which run as nobody when the test runs as root.
 */
async function setUp(ports: { front: number; a: number; b: number }, edit = (conf: string) => conf) {
  const dir = await mkdtemp(join(tmpdir(), 'hg-nginx-'));
  await chmod(dir, 0o755);
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  let conf = await readFile(join(RECIPE, 'nginx.conf'), 'utf8');
  const swaps: [string, string][] = [
    ['listen 8080;', `listen 127.0.0.1:${ports.front};`],
    ['server 127.0.0.1:3001 ', `server 127.0.0.1:${ports.a} `],
    ['server 127.0.0.1:3002 ', `server 127.0.0.1:${ports.b} `],
  ];
  for (const [from, to] of swaps) {
    const found = conf.split(from).length - 1;
    if (found !== 1)
      throw new Error(`examples/deploy/nginx/nginx.conf: expected "${from}" once, found ${found}`);
    conf = conf.replace(from, to);
  }
  await writeFile(join(dir, 'nginx.conf'), edit(conf));
  return dir;
}

/** Runs nginx in the foreground on `dir`/nginx.conf; resolves once GET /ready passes through it. */
async function startNginx(dir: string, front: number): Promise<void> {
  const child = spawn(NGINX, ['-p', `${dir}/`, '-c', join(dir, 'nginx.conf'), '-g', 'daemon off;'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => void (stderr = (stderr + chunk.toString()).slice(-4000)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  cleanups.push(() => stop(child, exited));
  const deadline = performance.now() + 10_000;
  for (;;) {
    const ok = await fetch(`http://127.0.0.1:${front}/ready`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return;
    if (child.exitCode !== null || performance.now() > deadline) {
      throw new Error(`nginx did not start or pass GET /ready through (exit ${child.exitCode}): ${stderr}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function stop(child: ChildProcess, exited: Promise<unknown>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM'); // nginx: fast shutdown, its workers with it; an instance: graceful stop
  const late = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(late);
}

/** The recipe's rolling-restart.sh on the test's instances; returns the pid each restart started. */
async function rollingRestart(dir: string, ports: number[], env: Record<string, string>): Promise<string[]> {
  const script = spawn('bash', [join(RECIPE, 'rolling-restart.sh')], {
    cwd: ROOT,
    env: {
      ...process.env,
      ...env,
      PORTS: ports.join(' '),
      RUN_DIR: dir,
      NGINX_CONF: join(dir, 'nginx.conf'),
      NGINX_PID: join(dir, 'nginx.pid'),
      START: `${process.execPath} --import tsx ${INSTANCE}`,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  script.stdout.on('data', (chunk: Buffer) => void (stdout += chunk.toString()));
  script.stderr.on('data', (chunk: Buffer) => void (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => script.once('exit', resolve));
  cleanups.push(() => stop(script, exited));
  const code = await exited;
  if (code !== 0) throw new Error(`rolling-restart.sh exited with ${code}: ${stderr}`);
  return [...stdout.matchAll(/restarted \(pid (\d+)\)/g)].map((m) => m[1]!);
}

/** Ends every instance whose pid file is in `dir` (the test is over: no drain needed). */
async function killPidFiles(dir: string): Promise<void> {
  for (const file of (await readdir(dir)).filter((f) => f.endsWith('.pid') && f !== 'nginx.pid')) {
    try {
      process.kill(Number(await readFile(join(dir, file), 'utf8')), 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

interface LogLine {
  /** When nginx ended the request, ms since the epoch. */
  end: number;
  start: number;
  status: number;
  /** Every instance nginx tried for this request, in order (`$upstream_addr`). */
  upstreams: string[];
  uri: string;
}

/** The recipe's access log (log_format hookguard), the webhook routes only. */
async function accessLog(dir: string): Promise<LogLine[]> {
  const text = await readFile(join(dir, 'access.log'), 'utf8').catch(() => '');
  return text
    .split('\n')
    .map((line) => /^(\S+) (\S+) (\d+) upstream=(.*) upstream_status=.* (\S+)$/.exec(line))
    .filter((m): m is RegExpExecArray => m !== null && m[5]!.startsWith('/cw'))
    .map((m) => ({
      end: Number(m[1]) * 1000,
      start: (Number(m[1]) - Number(m[2])) * 1000,
      status: Number(m[3]),
      upstreams: m[4]!.split(/, | : /),
      uri: m[5]!,
    }));
}

/** A fresh run: its Redis keys and queue dropped after the file, its ROLE=worker stopped after the test. */
async function newRun(name: string) {
  const run = `nginx-${name}-${randomUUID()}`;
  runs.push(run);
  const env = { RUN: run, SECRET, HANDLER_MS: String(HANDLER_MS) };
  const [worker] = await startWorkers(1, { ...env, ROLE: 'worker' }, INSTANCE);
  cleanups.push(() => stop(worker!.child, worker!.exited));
  return { run, env };
}

/** Inline claims left leased in the dedup store: handlers that were running when their instance died. */
async function leasesLeft(run: string): Promise<number> {
  const redis = new Redis({ host: '127.0.0.1', port: 6379 });
  try {
    const keys = await redis.keys(`hg-deploy:${run}:dedup:*`);
    const values = keys.length > 0 ? await redis.mget(...keys) : [];
    return values.filter((v) => v?.startsWith('L:')).length;
  } finally {
    redis.disconnect();
  }
}

/**
 * Two instances behind nginx (`edit` changes the recipe's conf), steady load, then one instance killed with
 * SIGKILL; the load goes on for a while on the survivor.
 */
async function killOne(name: string, edit?: (conf: string) => string) {
  const { run, env } = await newRun(name);
  const [front, a, b] = (await freePorts(3)) as [number, number, number];
  const dir = await setUp({ front, a, b }, edit);
  const instances = new Map<string, Worker>();
  for (const port of [a, b]) {
    const [instance] = await startWorkers(1, { ...env, PORT: String(port) }, INSTANCE);
    cleanups.push(() => stop(instance!.child, instance!.exited));
    instances.set(`127.0.0.1:${port}`, instance!);
  }
  await startNginx(dir, front);
  const load = steadyLoad(`http://127.0.0.1:${front}`, ROUTES, SECRET, EVERY_MS);
  await new Promise((resolve) => setTimeout(resolve, 2000));
  // Round robin over two routes sent in step tends to put every inline request on the same instance: kill
  // the one that ran most of the last ones, so that the crash meets handlers running.
  const recent = (await accessLog(dir)).filter((l) => l.uri === '/cw').slice(-20);
  const share = (addr: string) => recent.filter((l) => l.upstreams[0] === addr).length;
  const victim = [...instances.keys()].sort((x, y) => share(y) - share(x))[0]!;
  const killedAt = Date.now();
  instances.get(victim)!.child.kill('SIGKILL');
  await instances.get(victim)!.exited;
  const exitedAt = Date.now();
  await new Promise((resolve) => setTimeout(resolve, 1500));
  const reports = await load.stop();
  const toVictim = (await accessLog(dir)).filter((l) => l.upstreams[0] === victim);
  const before = toVictim.filter((l) => l.end > killedAt - 1000 && l.end < killedAt);
  const meanSeconds = before.reduce((sum, l) => sum + l.end - l.start, 0) / before.length / 1000;
  return {
    results: await tallyRun(run, reports),
    leases: await leasesLeft(run),
    /** Little's law from nginx's log: requests a second to the victim x the mean time one spent there. */
    expected: before.length * meanSeconds,
    /** Requests nginx had placed on the victim and not seen answered when it was killed (ms rounding). */
    held: toVictim.filter((l) => l.start <= exitedAt + 1 && l.end >= killedAt - 1),
    /** Requests nginx tried on the dead instance (refused), then placed on the other. */
    replaced: toVictim.filter((l) => l.start > exitedAt + 1 && l.upstreams.length > 1).length,
    /** What nginx answered 502 itself, having tried only the killed instance: requests cut off. */
    cut: toVictim.filter((l) => l.status === 502 && l.upstreams.length === 1).length,
  };
}

function describeKill(label: string, k: Awaited<ReturnType<typeof killOne>>): string {
  return (
    `${label}: the killed instance held ${k.held.length} requests (${k.held.filter((l) => l.uri === '/cw').length} ` +
    `inline, ${k.leases} with a handler running; rate x time there predicts ${k.expected.toFixed(1)}), ` +
    `nginx answered ${k.cut} of them 502, placed ${k.replaced} refused after the kill on the other instance`
  );
}

const handOffs = (results: { tally: Tally }[]) => results.reduce((n, r) => n + r.tally.handOffs, 0);

describe.runIf(requireService('Redis', available) && requireNginx(FOUND))('nginx recipe', () => {
  it('10 instance restarts by rolling-restart.sh under steady load: 0 hand-offs, 0 lost, 0 doubles', async () => {
    const { run, env } = await newRun('rolling');
    const [front, a, b] = (await freePorts(3)) as [number, number, number];
    const dir = await setUp({ front, a, b });
    cleanups.push(() => killPidFiles(dir));
    await rollingRestart(dir, [a, b], env); // the first deploy: nginx not running yet, starts both
    await startNginx(dir, front);
    const load = steadyLoad(`http://127.0.0.1:${front}`, ROUTES, SECRET, EVERY_MS);
    const started = performance.now();
    const pids: string[] = [];
    // 5 deploys, each restarting A then B: 10 instance restarts.
    for (let round = 0; round < 5; round++) pids.push(...(await rollingRestart(dir, [a, b], env)));
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    const reports = await load.stop();
    const lines = await accessLog(dir);
    const results = await tallyRun(run, reports);
    const label = `nginx rolling restart x${pids.length} (${seconds} s)`;
    for (const r of results) console.log(describeTally(label, r.report, r.tally));
    console.log(
      `${label}: nginx logged ${lines.length} webhook requests; answers other than 200: ` +
        `${lines.filter((l) => l.status !== 200).length}; tried on a second instance: ` +
        `${lines.filter((l) => l.upstreams.length > 1).length}`,
    );
    // nginx never met a stopped instance: each was out of its rotation before it stopped, back after ready.
    expect(lines.filter((l) => l.upstreams.length > 1 || l.status !== 200)).toEqual([]);
    expect(new Set(pids).size).toBe(10); // ten instances started under load, each stopping its predecessor
    expect(results[0]!.report.delivered.length).toBeGreaterThan(200);
    for (const r of results) expect(r.tally).toEqual({ handOffs: 0, lost: 0, doubles: 0 });
  }, 120_000);

  // The floor of a crash: what the killed instance held when it died. Requests it had read and was running
  // (inline: HANDLER_MS each), and connections in its accept queue with the request already written. nginx
  // has sent those POSTs and cannot know whether they took effect, so it does not send them again (nginx.conf,
  // proxy_next_upstream); Chatwoot retries no request cut off: each is a hand-off. By Little's law that is
  // about the rate to that instance times the time a request spends there: at 50 inline requests a second to
  // it (round robin tends to put every inline one on the same instance), 50 x 0.155 s, about 8; a queued
  // request spends milliseconds there. What arrives after the kill meets a refused connect, which nginx places
  // on the other instance: no hand-off. No proxy setting lowers this floor (what a process holds dies with
  // it); the inbox does, by holding each request for milliseconds instead of the handler's time.
  it('SIGKILL of one of two: the hand-offs are the requests the dead instance held, nothing more', async () => {
    const k = await killOne('sigkill');
    for (const r of k.results) console.log(describeTally('nginx, SIGKILL of one of two', r.report, r.tally));
    console.log(describeKill('nginx, SIGKILL of one of two', k));
    const [inline] = k.results;
    expect(handOffs(k.results)).toBeGreaterThan(0);
    // Each hand-off is a request nginx had already sent to the dead instance, none a refused connect...
    expect(handOffs(k.results)).toBe(k.cut);
    expect(k.cut).toBeLessThanOrEqual(k.held.length);
    expect(k.replaced).toBeGreaterThan(0);
    // ...and every handler that was running there is one.
    expect(inline!.tally.handOffs).toBeGreaterThanOrEqual(k.leases);
    for (const r of k.results) expect([r.tally.lost, r.tally.doubles]).toEqual([0, 0]);
  }, 60_000);

  // Why nginx.conf leaves `non_idempotent` out: with it nginx re-sends the requests cut off by the crash to
  // the other instance. A queued route writes them to the inbox, which dedupes on the event: all fine. An
  // inline route finds the dead instance's claim (leased for 60 s) and answers 200 "in flight" (a 409 would
  // be a hand-off), and nobody runs the event: the hand-offs become silent losses.
  it('with proxy_next_upstream non_idempotent, the same crash loses the inline events it held', async () => {
    const directive = 'proxy_next_upstream error timeout;';
    const k = await killOne('non-idempotent', (conf) => {
      if (!conf.includes(directive)) throw new Error(`nginx.conf no longer has "${directive}"`);
      return conf.replace(directive, 'proxy_next_upstream error timeout non_idempotent;');
    });
    const label = 'nginx + non_idempotent, SIGKILL of one of two';
    for (const r of k.results) console.log(describeTally(label, r.report, r.tally));
    console.log(describeKill(label, k));
    const [inline, queued] = k.results;
    expect(handOffs(k.results)).toBe(0);
    expect(k.cut).toBe(0);
    expect(inline!.tally.lost).toBeGreaterThan(0);
    expect(inline!.tally.lost).toBeLessThanOrEqual(k.leases);
    expect(queued!.tally).toEqual({ handOffs: 0, lost: 0, doubles: 0 });
    expect(inline!.tally.doubles).toBe(0);
  }, 60_000);
});
