import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import type * as core from '../../src/index.js';
import {
  isWebhookError,
  WebhookError,
  WEBHOOK_ERROR_STATUS,
  type WebhookErrorCode,
} from '../../src/index.js';

describe('WebhookError', () => {
  it.each(Object.entries(WEBHOOK_ERROR_STATUS) as [WebhookErrorCode, number][])(
    '%s answers %i',
    (code, status) => {
      const err = new WebhookError(code, 'why');
      expect(err.code).toBe(code);
      expect(err.status).toBe(status);
      expect(err.name).toBe('WebhookError');
      expect(err).toBeInstanceOf(Error);
    },
  );

  it('maps codes to the contract statuses', () => {
    expect(WEBHOOK_ERROR_STATUS).toEqual({
      MISSING_SECRET: 500,
      MISSING_SIGNATURE: 401,
      MALFORMED_SIGNATURE: 401,
      MISSING_TIMESTAMP: 401,
      TIMESTAMP_OUT_OF_TOLERANCE: 401,
      SIGNATURE_MISMATCH: 401,
      BODY_TOO_LARGE: 413,
      READ_TIMEOUT: 408,
      INVALID_JSON: 400,
      INVALID_PAYLOAD: 400,
      RAW_BODY_UNAVAILABLE: 500,
      STORE_UNAVAILABLE: 503,
      INBOX_UNAVAILABLE: 503,
      HANDLER_FAILED: 500,
    });
  });

  it('keeps a cause when given one', () => {
    const cause = new Error('redis down');
    expect(new WebhookError('STORE_UNAVAILABLE', 'x', { cause }).cause).toBe(cause);
    expect('cause' in new WebhookError('STORE_UNAVAILABLE', 'x')).toBe(false);
  });

  it('isWebhookError checks the brand, not instanceof', () => {
    expect(isWebhookError(new WebhookError('INVALID_JSON', 'x'))).toBe(true);
    const lookalike = Object.assign(new Error('x'), {
      code: 'INVALID_JSON',
      status: 400,
      name: 'WebhookError',
    });
    expect(isWebhookError(lookalike)).toBe(false);
    for (const value of [null, undefined, 'WebhookError', 42, {}]) expect(isWebhookError(value)).toBe(false);
  });

  it('recognises an error from the built CJS copy loaded beside this ESM copy', async () => {
    const require = createRequire(import.meta.url);
    let cjs: typeof core;
    try {
      cjs = require('../../dist/index.cjs') as typeof core;
    } catch {
      console.warn('skipped: dist/index.cjs is not built (run `npm run build`); CI builds before testing');
      if (process.env.CI) throw new Error('dist/index.cjs must be built before the tests in CI');
      return;
    }
    const fromCjs = new cjs.WebhookError('INVALID_JSON', 'x');
    expect(fromCjs).not.toBeInstanceOf(WebhookError);
    expect(isWebhookError(fromCjs)).toBe(true);
    expect(cjs.isWebhookError(new WebhookError('INVALID_JSON', 'x'))).toBe(true);
  });
});
