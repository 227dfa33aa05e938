// Fastify misuse from JavaScript: each mistake is refused at registration with the call that works.
import Fastify from 'fastify';
import { describe, expect, it, vi } from 'vitest';
import * as fastifyAdapter from '../../src/adapters/fastify.js';

const SECRET = 'cw-fastify-misuse';
type Factory = (options: unknown) => unknown;

describe('hookguard/fastify misuse', () => {
  it.each(['chatwootWebhook', 'stripeWebhook'] as const)(
    "%s passed to app.register itself (Fastify's usual form) is refused with the right call",
    async (name) => {
      const errors = vi.spyOn(console, 'error').mockImplementation(() => {});
      const app = Fastify();
      const factory = fastifyAdapter[name] as unknown as Parameters<typeof app.register>[0];
      await expect(app.register(factory, { path: '/cw', secret: SECRET } as never)).rejects.toThrow(
        new RegExp(
          `${name} is a factory, not the plugin: .*app\\.register\\(${name}\\(\\{ path: '/webhooks'`,
        ),
      );
      // Nothing was built from the app taken as options (that would log "No … secret is set").
      expect(errors).not.toHaveBeenCalled();
      errors.mockRestore();
      await app.close();
    },
  );

  it.each([
    [{ path: 'cw' }, /needs a path starting with "\/" \(got "cw"\)/],
    [{}, /needs a path starting with "\/" \(got none\)/],
    [{ path: 42 }, /needs a path starting with "\/" \(got 42\)/],
  ])('refuses %j at once, before any router internals', (route, message) => {
    const factory = fastifyAdapter.chatwootWebhook as unknown as Factory;
    expect(() => factory({ ...route, secret: SECRET })).toThrow(message);
  });

  it('still registers the right call', async () => {
    const app = Fastify();
    await app.register(
      fastifyAdapter.chatwootWebhook({ path: '/cw', secret: SECRET, logger: false, onEvent() {} }),
    );
    const answer = await app.inject({
      method: 'POST',
      url: '/cw',
      payload: '{}',
      headers: { 'content-type': 'application/json' },
    });
    expect(answer.statusCode).toBe(401);
    await app.close();
  });
});
