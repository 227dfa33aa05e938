// End-to-end HTTP benchmark on loopback: autocannon (this process) against the servers of
// bench/http-servers.ts (a second process). Every request is a fresh 1 KB Stripe event with a unique id,
// so the dedup work is real.
import autocannon from 'autocannon';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { testing } from './built.js';
import { bodyOfSize, HTTP_SECRET } from './micro.js';

export interface HttpRow {
  name: string;
  requestsPerSecond: number;
  p99Ms: number;
  non2xx: number;
  errors: number;
}

/**
 * Runs each server `rounds` times, alternating hookguard and its hand-written baseline, and keeps each
 * server's best round (the load generator shares the machine's two cores, so single rounds are noisy).
 */
export async function httpRows(durationSeconds: number, rounds = 2): Promise<HttpRow[]> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', fileURLToPath(new URL('./http-servers.ts', import.meta.url))],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  try {
    const ports = await new Promise<Record<string, number>>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        if (out.includes('\n')) resolve(JSON.parse(out) as Record<string, number>);
      });
      child.once('exit', (code) => reject(new Error(`bench servers exited with ${code}`)));
    });
    const template = bodyOfSize(1024, 'evt_TEMPLATE_ID_0000000000');
    let n = 0;
    const best = new Map<string, HttpRow>();
    const schedule = Array.from({ length: rounds }, () => Object.entries(ports)).flat();
    for (const [name, port] of schedule) {
      // Signed ahead of the run, so the load generator (sharing the machine's two cores) spends its time
      // sending, not hashing; every request still carries a new event id.
      const pool = Array.from({ length: durationSeconds * 25_000 }, () => {
        const id = `evt_${(n++).toString(36).padStart(22, '0')}`;
        return testing.signStripePayload(template.replace('evt_TEMPLATE_ID_0000000000', id), HTTP_SECRET);
      });
      let next = 0;
      const result = await autocannon({
        url: `http://127.0.0.1:${port}/stripe`,
        connections: 32,
        duration: durationSeconds,
        requests: [
          {
            method: 'POST',
            setupRequest: (request) => {
              const signed = pool[next++ % pool.length]!;
              return { ...request, body: signed.body, headers: { ...request.headers, ...signed.headers } };
            },
          },
        ],
      });
      const row: HttpRow = {
        name,
        requestsPerSecond: Math.round(result.requests.average),
        p99Ms: result.latency.p99,
        non2xx: result.non2xx,
        errors: result.errors,
      };
      const previous = best.get(name);
      if (previous === undefined || row.requestsPerSecond > previous.requestsPerSecond) best.set(name, row);
    }
    return [...best.values()];
  } finally {
    child.kill();
  }
}
