import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { expect } from 'vitest';
import { isWebhookError, type WebhookErrorCode } from '../../src/index.js';

/** A fixture file's exact text. */
export function fixture(name: string): string {
  return readFileSync(new URL(`../fixtures/${name}`, import.meta.url), 'utf8');
}

/** Independent HMAC-SHA256 hex, written out here rather than taken from src/, so tests check the library. */
export function hmacHex(secret: string, data: string | Uint8Array): string {
  return createHmac('sha256', secret).update(data).digest('hex');
}

/** Runs `fn` and returns the WebhookError it throws; fails the test if it returns or throws anything else. */
export function webhookErrorOf(fn: () => unknown): {
  code: WebhookErrorCode;
  status: number;
  message: string;
} {
  let thrown: unknown;
  try {
    fn();
  } catch (err) {
    thrown = err;
  }
  expect(isWebhookError(thrown), `expected a WebhookError, got ${String(thrown)}`).toBe(true);
  return thrown as { code: WebhookErrorCode; status: number; message: string };
}

export function expectCode(fn: () => unknown, code: WebhookErrorCode): string {
  const err = webhookErrorOf(fn);
  expect(err.code).toBe(code);
  return err.message;
}
