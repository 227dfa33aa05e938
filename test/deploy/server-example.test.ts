// examples/deploy/server.ts run as its comment says (`npx tsx examples/deploy/server.ts`): it answers a
// signed Chatwoot delivery, says ready while Redis answers, and on SIGTERM answers its readiness probe 503
// `stopping` while it keeps serving for SHUTDOWN_DELAY_MS, then drains and exits 0.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { chatwootEvent, signChatwootPayload } from '../../src/testing/index.js';
import { freePort } from '../helpers/private-engines.js';
import { redisUp, requireService } from '../helpers/services.js';

const SERVER = fileURLToPath(new URL('../../examples/deploy/server.ts', import.meta.url));
const available = await redisUp();

describe.runIf(requireService('Redis', available))('examples/deploy/server.ts', () => {
  it('answers a delivery, is ready, and stops gracefully on SIGTERM (exit 0)', async () => {
    const port = await freePort();
    const child = spawn(process.execPath, ['--import', 'tsx', SERVER], {
      env: { ...process.env, PORT: String(port), CW_HMAC_SECRET: 'cw-example', SHUTDOWN_DELAY_MS: '300' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => void (out += chunk.toString()));
    for (let i = 0; i < 400 && !out.includes('readiness GET /ready'); i++) {
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    const base = `http://127.0.0.1:${port}`;
    const signed = signChatwootPayload(chatwootEvent('message_created'), 'cw-example');
    const delivered = await fetch(`${base}/cw`, {
      method: 'POST',
      body: signed.body,
      headers: signed.headers,
    });
    expect(delivered.status).toBe(200);
    expect((await fetch(`${base}/ready`)).status).toBe(200);
    child.kill('SIGTERM');
    await new Promise((resolve) => setTimeout(resolve, 100));
    // Within SHUTDOWN_DELAY_MS: still serving, but no longer ready.
    const stopping = await fetch(`${base}/ready`);
    expect(stopping.status).toBe(503);
    expect(await stopping.json()).toEqual({ ok: false, stopping: true });
    expect(await exited).toBe(0);
    expect(out).toContain('answered');
  });
});
