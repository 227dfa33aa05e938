// A deploy's SIGTERM with requests in flight, in a real process: every request that arrived is answered
// 200 and processed once, and the process exits 0 soon after the last answer. Without the graceful stop
// Node's default SIGTERM ends the process at once and every one of them is cut off: for Chatwoot, a
// conversation handed to a human each.
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'node:http';
import { describe, expect, it } from 'vitest';
import { chatwootEvent, signChatwootPayload } from '../../src/testing/index.js';
import { startWorkers } from '../helpers/cluster.js';

const SCRIPT = fileURLToPath(new URL('../helpers/graceful-server.ts', import.meta.url));
const SECRET = 'cw-graceful';

/** One POST on its own connection; resolves with the status, or the error code when it was cut off. */
function post(port: number, body: string, headers: Record<string, string>, agent: Agent | false) {
  return new Promise<number | string>((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: '/cw', method: 'POST', headers, agent });
    req.on('response', (res) => {
      res.resume().on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', (err: Error & { code?: string }) => resolve(err.code ?? err.message));
    req.end(body);
  });
}

describe('stopGracefully', () => {
  it.each([
    ['express', 'one connection each', false],
    ['express', 'keep-alive connections', true],
    ['koa', 'keep-alive connections', true],
    // Fastify's own close() would answer 503 to what arrives on kept-alive connections meanwhile.
    ['fastify', 'keep-alive connections', true],
  ] as const)(
    'SIGTERM to %s with 100 requests inside their handlers (%s): all answered 200, then exit 0',
    async (framework, _, keepAlive) => {
      const agent = keepAlive ? new Agent({ keepAlive: true, maxSockets: 100 }) : false;
      const env = { SECRET, EXPECT: '100', HANDLER_MS: '400', FRAMEWORK: framework };
      const [web] = await startWorkers(1, env, SCRIPT);
      const lines: string[] = [];
      web!.child.stdout!.on('data', (chunk: Buffer) => lines.push(...chunk.toString().split('\n')));
      const answers = Array.from({ length: 100 }, () => {
        const signed = signChatwootPayload(chatwootEvent('message_created'), SECRET);
        return post(web!.port, signed.body, signed.headers, agent);
      });
      for (let i = 0; i < 400 && !lines.includes('ALL-IN'); i++) await new Promise((r) => setTimeout(r, 25));
      expect(lines).toContain('ALL-IN');
      const t0 = performance.now();
      web!.child.kill('SIGTERM');
      const statuses = await Promise.all(answers);
      const exit = await web!.exited;
      const stopMs = performance.now() - t0;
      if (agent) agent.destroy();
      console.log(
        `graceful stop, ${framework} (${_}): 100 requests in flight, SIGTERM to exit ${Math.round(stopMs)} ms`,
      );
      expect(statuses).toEqual(Array.from({ length: 100 }, () => 200));
      expect(exit).toBe(0);
      if (framework === 'fastify') expect(lines).toContain('FASTIFY-CLOSED');
      expect(stopMs).toBeLessThan(5000);
    },
    60_000,
  );
});
