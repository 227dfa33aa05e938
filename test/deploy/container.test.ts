// The container recipe (examples/deploy/kubernetes/), tested as plain processes where no cluster exists:
// two replicas behind a stand-in for a Kubernetes Service that routes by readiness with a propagation lag, a
// rolling update (a new replica first, ready, then SIGTERM to an old one) done 10 times while a
// Chatwoot-faithful sender delivers at a steady rate. On SIGTERM the old replica's readiness turns 503 at
// once, it keeps serving for SHUTDOWN_DELAY_MS (longer than the Service's lag), then drains and exits.
// Without that delay the Service goes on routing to a closed port for the lag, and each of those
// connections is a refused delivery: a hand-off.
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { startWorkers, type Worker } from '../helpers/cluster.js';
import { describeTally, dropRun, steadyLoad, tally } from '../helpers/deploy-load.js';
import { ServiceProxy } from '../helpers/service-proxy.js';
import { obliterate } from '../helpers/deploy-queue.js';
import { redisUp, requireService } from '../helpers/services.js';

const INSTANCE = fileURLToPath(new URL('../helpers/deploy-instance.ts', import.meta.url));
const SECRET = 'cw-deploy-container';
const available = await redisUp();
const runs: string[] = [];
afterAll(async () => {
  for (const run of runs) {
    await dropRun(run);
    await obliterate(`hg-deploy-${run}`);
  }
});

async function rollingUpdates(run: string, delayMs: number, restarts: number) {
  const env = { RUN: run, SECRET, SHUTDOWN_DELAY_MS: String(delayMs), HANDLER_MS: '150' };
  const [worker] = await startWorkers(1, { ...env, ROLE: 'worker' }, INSTANCE);
  const service = await ServiceProxy.create({ pollMs: 100, lagMs: 150 });
  const pods: Worker[] = await startWorkers(2, env, INSTANCE);
  for (const pod of pods) service.add(pod.port);
  for (const pod of pods) await service.untilReady(pod.port);
  const load = steadyLoad(`http://127.0.0.1:${service.port}`, ['/cw', '/cw/queued'], SECRET, 20);
  for (let i = 0; i < restarts; i++) {
    const [fresh] = await startWorkers(1, env, INSTANCE);
    service.add(fresh!.port);
    await service.untilReady(fresh!.port);
    const old = pods.shift()!;
    pods.push(fresh!);
    old.child.kill('SIGTERM');
    expect(await old.exited).toBe(0);
  }
  const reports = await load.stop();
  await service.close();
  for (const pod of [...pods, worker!]) {
    pod.child.kill('SIGTERM');
    await pod.exited;
  }
  return reports;
}

describe.runIf(requireService('Redis', available))('container recipe: readiness off, then drain', () => {
  it('10 rolling updates under steady load: 0 hand-offs, 0 lost, 0 doubles, inline and queued', async () => {
    const run = `container-${randomUUID()}`;
    runs.push(run);
    const [inline, queued] = await rollingUpdates(run, 600, 10);
    const tallies = [await tally(inline!, `hg-deploy:${run}:inline`, 0), await tally(queued!, `hg-deploy:${run}:queued`, 15_000)];
    console.log(describeTally('container x10 (SHUTDOWN_DELAY_MS 600, Service lag 150-250 ms)', inline!, tallies[0]!));
    console.log(describeTally('container x10 (SHUTDOWN_DELAY_MS 600, Service lag 150-250 ms)', queued!, tallies[1]!));
    expect(inline!.delivered.length).toBeGreaterThan(200);
    for (const t of tallies) expect(t).toEqual({ handOffs: 0, lost: 0, doubles: 0 });
  }, 120_000);

  it('without the delay, the Service still routes to the closed port for its lag: hand-offs', async () => {
    const run = `container-nodelay-${randomUUID()}`;
    runs.push(run);
    const [inline, queued] = await rollingUpdates(run, 0, 3);
    const handOffs = inline!.failed.length + queued!.failed.length;
    console.log(describeTally('container x3 without SHUTDOWN_DELAY_MS', inline!, await tally(inline!, `hg-deploy:${run}:inline`, 0)));
    expect(handOffs).toBeGreaterThan(0);
  }, 60_000);
});
