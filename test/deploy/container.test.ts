// The container recipe (examples/deploy/kubernetes/), tested as plain processes where no cluster exists:
// two replicas behind a stand-in for a Kubernetes Service that routes by readiness with a propagation lag, a
// rolling update (a new replica first, ready, then SIGTERM to an old one) done 10 times while a
// Chatwoot-faithful sender delivers at a steady rate. The old replica is stopped the way the recipe's
// deployment.yaml says: a preStop wait while the Service removes the terminating pod (with its lag), then
// SIGTERM and the drain; or, without preStop, SHUTDOWN_DELAY_MS: on SIGTERM its readiness turns 503 at once
// and it keeps serving that long before it drains. Without either the Service goes on routing to a closed
// port for its lag, and each of those connections is a refused delivery: a hand-off.
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { startWorkers, type Worker } from '../helpers/cluster.js';
import {
  describeTally,
  dropRun,
  steadyLoad,
  tallyRun,
  type RouteReport,
  type Tally,
} from '../helpers/deploy-load.js';
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

/** How the kubelet stops an old pod: its preStop wait, the server's own SHUTDOWN_DELAY_MS, or neither. */
type Stopping = 'preStop' | 'shutdownDelay' | 'neither';
const WAIT_MS = 600; // the Service's lag is 150-250 ms here (poll 100 ms + propagation 150 ms)

async function rollingUpdates(run: string, stopping: Stopping, restarts: number) {
  const delay = stopping === 'shutdownDelay' ? WAIT_MS : 0;
  const env = { RUN: run, SECRET, SHUTDOWN_DELAY_MS: String(delay), HANDLER_MS: '150' };
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
    if (stopping === 'preStop') {
      service.terminating(old.port);
      await new Promise((resolve) => setTimeout(resolve, WAIT_MS));
    }
    old.child.kill('SIGTERM');
    expect(await old.exited).toBe(0);
  }
  const results = await tallyRun(run, await load.stop());
  await service.close();
  for (const pod of [...pods, worker!]) {
    pod.child.kill('SIGTERM');
    await pod.exited;
  }
  return results;
}

function check(label: string, results: { report: RouteReport; tally: Tally }[]) {
  for (const r of results) console.log(describeTally(label, r.report, r.tally));
  expect(results[0]!.report.delivered.length).toBeGreaterThan(100);
  for (const r of results) expect(r.tally).toEqual({ handOffs: 0, lost: 0, doubles: 0 });
}

describe.runIf(requireService('Redis', available))('container recipe: readiness off, then drain', () => {
  it('10 rolling updates with a preStop wait under steady load: 0 hand-offs, 0 lost, 0 doubles, inline and queued', async () => {
    const run = `container-${randomUUID()}`;
    runs.push(run);
    check(`container x10 (preStop ${WAIT_MS} ms)`, await rollingUpdates(run, 'preStop', 10));
  }, 120_000);

  it('3 rolling updates with SHUTDOWN_DELAY_MS instead of preStop: the same', async () => {
    const run = `container-delay-${randomUUID()}`;
    runs.push(run);
    check(`container x3 (SHUTDOWN_DELAY_MS ${WAIT_MS})`, await rollingUpdates(run, 'shutdownDelay', 3));
  }, 90_000);

  it('with neither, the Service still routes to the closed port for its lag: hand-offs', async () => {
    const run = `container-neither-${randomUUID()}`;
    runs.push(run);
    const [inline, queued] = await rollingUpdates(run, 'neither', 2);
    console.log(describeTally('container x2 with neither', inline!.report, inline!.tally));
    expect(inline!.report.failed.length + queued!.report.failed.length).toBeGreaterThan(0);
  }, 60_000);
});
