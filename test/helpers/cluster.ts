import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const WORKER_SECRET = 'whsec_multi_process';
export const INBOX_SECRET = 'whsec_inbox_processes';
const WORKER = fileURLToPath(new URL('./store-worker.ts', import.meta.url));

export interface Worker {
  port: number;
  child: ChildProcess;
  exited: Promise<number | null>;
}

/** Starts `count` worker processes (TypeScript through tsx) and waits for each to print its port. */
export async function startWorkers(
  count: number,
  env: Record<string, string>,
  script = WORKER,
): Promise<Worker[]> {
  return Promise.all(
    Array.from({ length: count }, () => {
      const child = spawn(process.execPath, ['--import', 'tsx', script], {
        env: { ...process.env, ...env },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      return new Promise<Worker>((resolve, reject) => {
        let out = '';
        const timer = setTimeout(() => reject(new Error('worker did not start within 20 s')), 20_000);
        child.stdout.on('data', (chunk: Buffer) => {
          out += chunk.toString();
          const match = /READY (\d+)/.exec(out);
          if (match) {
            clearTimeout(timer);
            resolve({ port: Number(match[1]), child, exited });
          }
        });
        child.once('exit', (code) => reject(new Error(`worker exited with ${code} before it was ready`)));
      });
    }),
  );
}

export async function stopWorkers(workers: Worker[]): Promise<void> {
  await Promise.all(
    workers.map(async (w) => {
      if (w.child.exitCode === null) w.child.kill('SIGTERM');
      await w.exited;
    }),
  );
}

export interface Delivery {
  body: string;
  headers: Record<string, string>;
}

/**
 * Sends every delivery like a provider: `concurrency` at a time, each to the next server in turn, and
 * retries every 409, 5xx and network error (on another server) until it gets a 2xx.
 */
export async function deliverAll(
  deliveries: Delivery[],
  ports: number[],
  concurrency: number,
): Promise<{ statuses: Map<number, number>; retries: number }> {
  const statuses = new Map<number, number>();
  let retries = 0;
  let next = 0;
  let turn = 0;
  const count = (status: number) => statuses.set(status, (statuses.get(status) ?? 0) + 1);
  async function lane(): Promise<void> {
    for (;;) {
      const index = next++;
      const delivery = deliveries[index];
      if (delivery === undefined) return;
      for (let attempt = 0; ; attempt++) {
        if (attempt > 200) throw new Error(`delivery ${index} never succeeded`);
        const port = ports[turn++ % ports.length]!;
        let status: number;
        try {
          const response = await fetch(`http://127.0.0.1:${port}/stripe`, {
            method: 'POST',
            body: delivery.body,
            headers: delivery.headers,
          });
          await response.arrayBuffer();
          status = response.status;
        } catch {
          status = 0; // connection refused or reset
        }
        count(status);
        if (status >= 200 && status < 300) break;
        retries++;
        await new Promise((resolve) => setTimeout(resolve, 20 + Math.random() * 30));
      }
    }
  }
  await Promise.all(Array.from({ length: concurrency }, lane));
  return { statuses, retries };
}
