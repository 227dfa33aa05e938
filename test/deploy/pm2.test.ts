// The PM2 recipe (examples/deploy/pm2/ecosystem.config.cjs), with PM2 from npm in a private PM2_HOME: its
// settings run the deploy test instance in cluster mode, 2 instances, and `pm2 reload` replaces them 10 times
// while a Chatwoot-faithful sender delivers at a steady rate. PM2's own process keeps the port open; each
// old instance drains (stopGracefully) after its successor said ready. Without the drain (Node's default:
// exit at once on the signal) every reload cuts the requests in flight: hand-offs.
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { startWorkers } from '../helpers/cluster.js';
import { describeTally, dropRun, steadyLoad, tallyRun } from '../helpers/deploy-load.js';
import { obliterate } from '../helpers/deploy-queue.js';
import { freePort } from '../helpers/private-engines.js';
import { redisUp, requireService } from '../helpers/services.js';

const require = createRequire(import.meta.url);
const PM2 = require.resolve('pm2/bin/pm2');
const INSTANCE = fileURLToPath(new URL('../helpers/deploy-instance.ts', import.meta.url));
const RECIPE = fileURLToPath(new URL('../../examples/deploy/pm2/ecosystem.config.cjs', import.meta.url));
const SECRET = 'cw-deploy-pm2';
const available = await redisUp();
const home = mkdtempSync(join(tmpdir(), 'hg-pm2-'));
const runs: string[] = [];

const pm2 = (...args: string[]) =>
  promisify(execFile)(process.execPath, [PM2, ...args], {
    env: { ...process.env, PM2_HOME: home },
    timeout: 60_000,
  });

afterAll(async () => {
  await pm2('kill').catch(() => undefined);
  rmSync(home, { recursive: true, force: true });
  for (const run of runs) {
    await dropRun(run);
    await obliterate(`hg-deploy-${run}`);
  }
});

async function untilReady(port: number): Promise<void> {
  for (let i = 0; i < 300; i++) {
    const ok = await fetch(`http://127.0.0.1:${port}/ready`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error('the PM2 app never answered /ready');
}

/** Starts the recipe's app with the test instance as its script; returns its name and port. */
async function startRecipe(run: string, drain: boolean): Promise<{ name: string; port: number }> {
  const recipe = (require(RECIPE) as { apps: Record<string, unknown>[] }).apps[0]!;
  const port = await freePort();
  const name = `hg-${run}`;
  const env = { PORT: String(port), RUN: run, SECRET, HANDLER_MS: '150', DRAIN: drain ? 'on' : 'off' };
  const config = join(home, `${run}.json`);
  writeFileSync(config, JSON.stringify({ apps: [{ ...recipe, name, script: INSTANCE, env }] }));
  await pm2('start', config);
  await untilReady(port);
  return { name, port };
}

async function underLoad(run: string, drain: boolean, times: number) {
  const [worker] = await startWorkers(1, { RUN: run, SECRET, ROLE: 'worker' }, INSTANCE);
  const { name, port } = await startRecipe(run, drain);
  const load = steadyLoad(`http://127.0.0.1:${port}`, ['/cw', '/cw/queued'], SECRET, 20);
  const started = performance.now();
  for (let i = 0; i < times; i++) {
    await pm2('reload', name);
    await untilReady(port);
  }
  const ms = performance.now() - started;
  const results = await tallyRun(run, await load.stop());
  await pm2('delete', name);
  worker!.child.kill('SIGTERM');
  await worker!.exited;
  return { results, ms };
}

describe.runIf(requireService('Redis', available))('PM2 recipe: cluster mode, pm2 reload', () => {
  it('10 reloads under steady load: 0 hand-offs, 0 lost, 0 doubles, inline and queued', async () => {
    const run = `pm2-${randomUUID()}`;
    runs.push(run);
    const { results, ms } = await underLoad(run, true, 10);
    const label = `pm2 reload x10 (2 instances, ${Math.round(ms / 10)} ms a reload)`;
    for (const r of results) console.log(describeTally(label, r.report, r.tally));
    expect(results[0]!.report.delivered.length).toBeGreaterThan(200);
    for (const r of results) expect(r.tally).toEqual({ handOffs: 0, lost: 0, doubles: 0 });
  }, 180_000);

  it('without the graceful stop, each reload cuts the requests in flight: hand-offs', async () => {
    const run = `pm2-nodrain-${randomUUID()}`;
    runs.push(run);
    const { results } = await underLoad(run, false, 1);
    const [inline, queued] = results;
    console.log(describeTally('pm2 reload x1 without the drain', inline!.report, inline!.tally));
    expect(inline!.report.failed.length + queued!.report.failed.length).toBeGreaterThan(0);
  }, 120_000);
});
