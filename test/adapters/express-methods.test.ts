// What the README promises about methods on Express: with `app.post` Express itself answers other methods
// (its 404 HTML page) and hookguard never sees them; with `app.all` they reach the adapter and get 405.
import type { AddressInfo } from 'node:net';
import express5 from 'express';
import express4 from 'express4';
import { describe, expect, it } from 'vitest';
import { chatwootWebhook } from '../../src/adapters/express.js';

async function getAnswer(
  app: ReturnType<typeof express5>,
): Promise<{ status: number; type: string; allow: string | null; body: string }> {
  const server = app.listen(0, '127.0.0.1');
  await new Promise<void>((resolve) => server.once('listening', resolve));
  try {
    const { port } = server.address() as AddressInfo;
    const res = await fetch(`http://127.0.0.1:${port}/cw`);
    return {
      status: res.status,
      type: res.headers.get('content-type') ?? '',
      allow: res.headers.get('allow'),
      body: await res.text(),
    };
  } finally {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

describe.each([
  ['express 4', () => express4()],
  ['express 5', () => express5()],
])('%s: GET on a webhook route', (_name, create) => {
  const webhook = () => chatwootWebhook({ secret: 'k', logger: false, onEvent() {} });

  it('mounted with app.post: Express answers 404 with its own HTML page', async () => {
    const app = create();
    app.post('/cw', webhook());
    const answer = await getAnswer(app);
    expect(answer.status).toBe(404);
    expect(answer.type).toMatch(/^text\/html/);
    expect(answer.body).toContain('Cannot GET /cw');
  });

  it('mounted with app.all: the adapter answers 405 with Allow: POST', async () => {
    const app = create();
    app.all('/cw', webhook());
    const answer = await getAnswer(app);
    expect(answer).toMatchObject({ status: 405, allow: 'POST' });
    expect(JSON.parse(answer.body)).toEqual({ error: { code: 'METHOD_NOT_ALLOWED' } });
  });
});
