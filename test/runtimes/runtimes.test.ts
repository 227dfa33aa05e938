// hookguard from its packed tarball in the runtimes webhooks are deployed to: Node, Bun and Deno (which
// have node:crypto) and, on the Web Crypto path with no Node built-in at all, Cloudflare's workerd (through
// miniflare, without nodejs_compat) and Vercel's edge-runtime. Each runs the same cases (cases.mjs) on the
// same fixtures, signed here: Chatwoot by hookguard/testing, Stripe by the official stripe package.
import { execFileSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { build } from 'esbuild';
import type { EdgeRuntime as EdgeRuntimeClass } from 'edge-runtime';
import type { Miniflare as MiniflareClass } from 'miniflare';
import Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chatwootEvent, signChatwootPayload, stripeEvent } from '../../src/testing/index.js';

const repo = resolve(import.meta.dirname, '../..');
const require = createRequire(import.meta.url);
let project = '';

const CW = 'cw-runtime-secret';
const CW_OLD = 'cw-runtime-old-secret';
const WH = 'whsec_runtime';
const WH_OLD = 'whsec_runtime_old';

function fixtures(): object {
  const nowMs = Date.now();
  const now = Math.floor(nowMs / 1000);
  const stripe = new Stripe('sk_test_unused');
  const stripeSigned = (event: object, secret: string, timestamp = now) => {
    const body = JSON.stringify(event);
    const header = stripe.webhooks.generateTestHeaderString({ payload: body, secret, timestamp });
    return { body, headers: { 'content-type': 'application/json', 'stripe-signature': header } };
  };
  const message = chatwootEvent('message_created');
  const valid = signChatwootPayload(message, CW, { timestamp: now });
  const paid = stripeEvent('invoice.paid');
  const stripeValid = stripeSigned(paid, WH);
  return {
    nowMs,
    chatwoot: {
      secret: CW,
      oldSecret: CW_OLD,
      valid,
      tampered: { ...valid, body: valid.body.replace('"content":"', '"content":"x') },
      stale: signChatwootPayload(message, CW, { timestamp: now - 3600 }),
      rotated: signChatwootPayload(message, CW_OLD, { timestamp: now }),
      forged: signChatwootPayload(chatwootEvent('message_created'), 'forger', { timestamp: now }),
      oversized: signChatwootPayload(chatwootEvent('message_created', { content: 'x'.repeat(5000) }), CW, {
        timestamp: now,
      }),
      updated: signChatwootPayload(chatwootEvent('conversation_updated'), CW, { timestamp: now }),
    },
    stripe: {
      secret: WH,
      oldSecret: WH_OLD,
      valid: stripeValid,
      tampered: { ...stripeValid, body: stripeValid.body.replace('"invoice.paid"', '"invoice.voided"') },
      stale: stripeSigned(paid, WH, now - 3600),
      rotated: stripeSigned(paid, WH_OLD),
    },
  };
}

const RUNNER = `import * as hookguard from 'hookguard';
import * as fetchAdapter from 'hookguard/fetch';
import * as kit from 'hookguard/chatwoot';
import * as api from '@opentelemetry/api';
import { openTelemetry } from 'hookguard/otel';
import { runCases } from './cases.mjs';
import fx from './fixtures.json' with { type: 'json' };
console.log(JSON.stringify(await runCases(hookguard, fetchAdapter, fx, kit, { api, openTelemetry })));
`;

beforeAll(() => {
  project = mkdtempSync(join(tmpdir(), 'hookguard-runtimes-'));
  const packed = execFileSync('npm', ['pack', '--silent', '--pack-destination', project], {
    cwd: repo,
    encoding: 'utf8',
  });
  mkdirSync(join(project, 'node_modules'));
  execFileSync('tar', [
    '-xzf',
    join(project, packed.trim().split('\n').pop()!),
    '-C',
    join(project, 'node_modules'),
  ]);
  renameSync(join(project, 'node_modules/package'), join(project, 'node_modules/hookguard'));
  // The OpenTelemetry API, as an application that turns telemetry on installs it.
  cpSync(join(repo, 'node_modules/@opentelemetry/api'), join(project, 'node_modules/@opentelemetry/api'), {
    recursive: true,
  });
  writeFileSync(
    join(project, 'package.json'),
    JSON.stringify({ name: 'runtimes', private: true, type: 'module' }),
  );
  writeFileSync(join(project, 'fixtures.json'), JSON.stringify(fixtures()));
  writeFileSync(join(project, 'cases.mjs'), readFileSync(join(import.meta.dirname, 'cases.mjs')));
  writeFileSync(join(project, 'runner.mjs'), RUNNER);
}, 300_000); // a build and installs: minutes on a busy machine

afterAll(() => {
  if (project) rmSync(project, { recursive: true, force: true });
});

/** What every runtime must answer; only the synchronous verifier differs (Web Crypto refuses it). */
function expected(syncCrypto: boolean) {
  return {
    chatwootValid: 'ok:0',
    chatwootTampered: 'SIGNATURE_MISMATCH',
    chatwootStale: 'TIMESTAMP_OUT_OF_TOLERANCE',
    chatwootRotated: 'ok:1',
    chatwootWrongSecret: 'SIGNATURE_MISMATCH',
    stripeValid: 'ok',
    stripeTampered: 'SIGNATURE_MISMATCH',
    stripeStale: 'TIMESTAMP_OUT_OF_TOLERANCE',
    stripeRotated: 'ok',
    syncVerifier: syncCrypto ? 'ok:0' : 'threw TypeError',
    exchange: [
      '200 {"ok":true}',
      '200 {"ok":true,"duplicate":true}',
      '401 {"error":{"code":"SIGNATURE_MISMATCH"}}',
      '413 {"error":{"code":"BODY_TOO_LARGE"}}',
      '200 {"ok":true}',
      '200 {"ok":true,"duplicate":true}',
    ],
    ran: ['message_created /cw', 'conversation_updated /cw'],
    stripeExchange: [
      '200 {"ok":true}',
      '200 {"ok":true,"duplicate":true}',
      '401 {"error":{"code":"SIGNATURE_MISMATCH"}}',
    ],
    // hookguard/chatwoot: typing on, the reply (once: the second delivery is a duplicate), typing off.
    bot: {
      answers: ['200 {"ok":true}', '200 {"ok":true,"duplicate":true}'],
      calls: [
        'POST toggle_typing_status on',
        'POST messages hello from the bot',
        'POST toggle_typing_status off',
      ],
    },
    // hookguard/otel: the steps of a delivery, then its request span; a forged one fails its verify step.
    telemetry: {
      answers: ['200 {"ok":true}', '401 {"error":{"code":"SIGNATURE_MISMATCH"}}'],
      ended: [
        'hookguard.verify',
        'hookguard.claim',
        'hookguard.handler',
        'hookguard.webhook chatwoot processed',
        'hookguard.verify SIGNATURE_MISMATCH',
        'hookguard.webhook chatwoot rejected',
      ],
    },
  };
}

function run(command: string, args: string[]): unknown {
  const out = execFileSync(command, args, {
    cwd: project,
    encoding: 'utf8',
    env: { ...process.env, NO_COLOR: '1' },
  });
  return JSON.parse(out.trim().split('\n').pop()!);
}

/** Bundles `entry` for a Web Crypto runtime, resolving hookguard under its export conditions. */
async function bundle(
  conditions: string[],
  entry: string,
  format: 'esm' | 'iife',
  define: Record<string, string> = {},
): Promise<{ code: string; inputs: string[] }> {
  writeFileSync(join(project, 'entry.mjs'), entry);
  const result = await build({
    entryPoints: [join(project, 'entry.mjs')],
    absWorkingDir: project,
    bundle: true,
    write: false,
    format,
    platform: 'neutral',
    mainFields: ['module', 'main'],
    conditions,
    define,
    metafile: true,
    logLevel: 'silent',
  });
  return { code: result.outputFiles[0]!.text, inputs: Object.keys(result.metafile.inputs) };
}

const WORKER_ENTRY = `import * as hookguard from 'hookguard';
import * as fetchAdapter from 'hookguard/fetch';
import * as kit from 'hookguard/chatwoot';
import * as api from '@opentelemetry/api';
import { openTelemetry } from 'hookguard/otel';
import { runCases } from './cases.mjs';
import fx from './fixtures.json';
const otel = { api, openTelemetry };
`;

/** Posts each delivery to `dispatch` in turn and returns "status body" per answer. */
async function exchange(
  dispatch: (url: string, init: RequestInit) => Promise<{ status: number; text(): Promise<string> }>,
  url: string,
  deliveries: { body: string; headers: Record<string, string> }[],
): Promise<string[]> {
  const answers: string[] = [];
  for (const d of deliveries) {
    const res = await dispatch(url, { method: 'POST', headers: d.headers, body: d.body });
    answers.push(`${res.status} ${await res.text()}`);
  }
  return answers;
}

type Delivery = { body: string; headers: Record<string, string> };
const fx = () =>
  JSON.parse(readFileSync(join(project, 'fixtures.json'), 'utf8')) as {
    chatwoot: Record<'valid' | 'forged', Delivery>;
    stripe: Record<'valid' | 'tampered', Delivery>;
  };
const ONCE = [
  '200 {"ok":true}',
  '200 {"ok":true,"duplicate":true}',
  '401 {"error":{"code":"SIGNATURE_MISMATCH"}}',
];

describe('the README examples for Web Crypto runtimes, from the packed tarball', () => {
  it('examples/cloudflare-worker.ts in workerd (no nodejs_compat), secrets from env bindings', async () => {
    writeFileSync(join(project, 'worker.ts'), readFileSync(join(repo, 'examples/cloudflare-worker.ts')));
    const { code } = await bundle(
      ['workerd', 'worker', 'browser'],
      "export { default } from './worker.ts';",
      'esm',
    );
    const { Miniflare } = require('miniflare') as { Miniflare: typeof MiniflareClass };
    const mf = new Miniflare({
      modules: true,
      script: code,
      compatibilityDate: '2024-09-23',
      bindings: { CW_HMAC_SECRET: CW, STRIPE_WEBHOOK_SECRET: WH },
    });
    try {
      const { chatwoot, stripe } = fx();
      const dispatch = (url: string, init: RequestInit) => mf.dispatchFetch(url, init as never);
      expect(
        await exchange(dispatch, 'http://worker.test/cw', [chatwoot.valid, chatwoot.valid, chatwoot.forged]),
      ).toEqual(ONCE);
      expect(
        await exchange(dispatch, 'http://worker.test/webhook/payments', [
          stripe.valid,
          stripe.valid,
          stripe.tampered,
        ]),
      ).toEqual(ONCE);
    } finally {
      await mf.dispose();
    }
  }, 60_000);

  it('the Next.js Edge route (examples/recipes/nextjs/app/api/webhooks/edge/route.ts) in edge-runtime', async () => {
    writeFileSync(
      join(project, 'edge-route.ts'),
      readFileSync(join(repo, 'examples/recipes/nextjs/app/api/webhooks/edge/route.ts')),
    );
    // Next.js inlines process.env.* into Edge bundles at build time; the define does the same.
    const { code } = await bundle(
      ['edge-light', 'worker', 'browser'],
      "import { POST, runtime } from './edge-route.ts';\naddEventListener('fetch', (e) => e.respondWith(runtime === 'edge' ? POST(e.request) : new Response('not edge', { status: 500 })));\n",
      'iife',
      { 'process.env.STRIPE_WEBHOOK_SECRET': JSON.stringify(WH) },
    );
    const { EdgeRuntime } = require('edge-runtime') as { EdgeRuntime: typeof EdgeRuntimeClass };
    const runtime = new EdgeRuntime({ initialCode: code });
    const { stripe } = fx();
    const dispatch = (url: string, init: RequestInit) => runtime.dispatchFetch(url, init);
    expect(
      await exchange(dispatch, 'http://edge.test/api/webhooks/edge', [
        stripe.valid,
        stripe.valid,
        stripe.tampered,
      ]),
    ).toEqual(ONCE);
  }, 60_000);
});

describe('hookguard from the packed tarball, per runtime', () => {
  it('Node (the baseline)', () => {
    expect(run(process.execPath, ['runner.mjs'])).toEqual(expected(true));
  });

  it('Bun', () => {
    const bun = join(repo, 'node_modules/@oven/bun-linux-x64/bin/bun');
    expect(execFileSync(bun, ['--version'], { encoding: 'utf8' })).toMatch(/^1\./);
    expect(run(bun, ['runner.mjs'])).toEqual(expected(true));
  });

  it('Deno', () => {
    const deno = [
      join(repo, 'node_modules/@deno/linux-x64-glibc/deno'),
      join(repo, 'node_modules/deno/deno'),
    ].find((path) => existsSync(path))!;
    expect(execFileSync(deno, ['--version'], { encoding: 'utf8' })).toMatch(/^deno 2\./);
    expect(run(deno, ['run', '--allow-read', '--allow-env', 'runner.mjs'])).toEqual(expected(true));
  });

  it('workerd (Cloudflare Workers, through miniflare, without nodejs_compat)', async () => {
    const { code, inputs } = await bundle(
      ['workerd', 'worker', 'browser'],
      `${WORKER_ENTRY}export default { async fetch() { return Response.json(await runCases(hookguard, fetchAdapter, fx, kit, otel)); } };`,
      'esm',
    );
    expect(inputs.some((input) => input.endsWith('dist/platform-web.js'))).toBe(true);
    expect(inputs.some((input) => input.endsWith('dist/platform-node.js'))).toBe(false);
    const { Miniflare } = require('miniflare') as { Miniflare: typeof MiniflareClass };
    const mf = new Miniflare({ modules: true, script: code, compatibilityDate: '2024-09-23' });
    try {
      const res = await mf.dispatchFetch('http://worker.test/');
      expect(await res.json()).toEqual(expected(false));
    } finally {
      await mf.dispose();
    }
  }, 60_000);

  it("edge-runtime (Vercel's Edge runtime)", async () => {
    const { code, inputs } = await bundle(
      ['edge-light', 'worker', 'browser'],
      `${WORKER_ENTRY}addEventListener('fetch', (e) => e.respondWith(runCases(hookguard, fetchAdapter, fx, kit, otel).then((r) => new Response(JSON.stringify(r)))));`,
      'iife',
    );
    expect(inputs.some((input) => input.endsWith('dist/platform-web.js'))).toBe(true);
    const { EdgeRuntime } = require('edge-runtime') as { EdgeRuntime: typeof EdgeRuntimeClass };
    const runtime = new EdgeRuntime({ initialCode: code });
    const res = await runtime.dispatchFetch('http://edge.test/');
    await res.waitUntil();
    expect(JSON.parse(await res.text())).toEqual(expected(false));
  }, 60_000);
});
