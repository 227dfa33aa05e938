// A/B of two builds in one process, interleaved round by round so machine drift hits both alike: the
// Node verifiers and the pipeline. Used to check that the web platform (#platform) did not slow Node down:
//   git worktree add /tmp/before 827c853 && (cd /tmp/before && npm ci && npx tsup)
//   npm run build && OLD_DIST=/tmp/before/dist node bench/platform-ab.mjs
// Results and method in bench/README.md ("Web platform A/B").
import { createHmac } from 'node:crypto';
import { pathToFileURL } from 'node:url';

if (!process.env.OLD_DIST) throw new Error('Set OLD_DIST to the dist/ folder of the build to compare with.');
const oldLib = await import(pathToFileURL(`${process.env.OLD_DIST}/index.js`).href);
const newLib = await import(new URL('../dist/index.js', import.meta.url).href);
const secret = 'cw-secret';
const whsec = 'whsec_test';
function chatwoot(size) {
  const body = Buffer.from(JSON.stringify({ event: 'message_created', id: 1, content: 'x'.repeat(size) }));
  const ts = String(Math.floor(Date.now() / 1000));
  const sig = createHmac('sha256', secret).update(`${ts}.`).update(body).digest('hex');
  return { body, headers: { 'x-chatwoot-signature': `sha256=${sig}`, 'x-chatwoot-timestamp': ts } };
}
function stripe(size) {
  const body = Buffer.from(
    JSON.stringify({
      id: 'evt_' + Math.random().toString(36).slice(2),
      object: 'event',
      type: 'invoice.paid',
      data: { object: { id: 'in_1', pad: 'x'.repeat(size) } },
    }),
  );
  const ts = Math.floor(Date.now() / 1000);
  const sig = createHmac('sha256', whsec).update(`${ts}.`).update(body).digest('hex');
  return { body, headers: { 'stripe-signature': `t=${ts},v1=${sig}` } };
}
const c1 = chatwoot(1000),
  c16 = chatwoot(16000),
  s1 = stripe(1000);
function opsPerSec(fn, ms = 300) {
  let n = 0;
  const end = performance.now() + ms;
  while (performance.now() < end) {
    for (let i = 0; i < 200; i++) fn();
    n += 200;
  }
  return n / (ms / 1000);
}
async function asyncOps(fn, ms = 300) {
  let n = 0;
  const end = performance.now() + ms;
  while (performance.now() < end) {
    for (let i = 0; i < 100; i++) await fn();
    n += 100;
  }
  return n / (ms / 1000);
}
const cases = {
  'verifyChatwootSignature 1 KB': (lib) => () => lib.verifyChatwootSignature(c1.body, c1.headers, { secret }),
  'verifyChatwootSignature 16 KB': (lib) => () =>
    lib.verifyChatwootSignature(c16.body, c16.headers, { secret }),
  'verifyStripeEvent 1 KB': (lib) => () => lib.verifyStripeEvent(s1.body, s1.headers, { secret: whsec }),
};
/** Which build goes first alternates by round, so neither always runs on a warmer (or hotter) machine. */
const order = (round) =>
  round % 2
    ? [
        ['new', newLib],
        ['old', oldLib],
      ]
    : [
        ['old', oldLib],
        ['new', newLib],
      ];
const results = {};
for (let round = 0; round < 15; round++) {
  for (const [name, make] of Object.entries(cases)) {
    for (const [which, lib] of order(round)) {
      (results[`${name}|${which}`] ??= []).push(opsPerSec(make(lib)));
    }
  }
  for (const [which, lib] of order(round)) {
    // Every request a new event id, so each one is verified, keyed, claimed, run, completed.
    let i = 0;
    const handle = lib.createStripeHandler({ secret: whsec, logger: false, onEvent() {} });
    const bodies = Array.from({ length: 50000 }, () => stripe(1000));
    (results[`pipeline (createStripeHandler) 1 KB|${which}`] ??= []).push(
      await asyncOps(() => {
        const d = bodies[i++ % bodies.length];
        return handle({ method: 'POST', headers: d.headers, body: d.body });
      }),
    );
  }
}
const median = (xs) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log('| case | before (ops/s, median of 15) | after | after ÷ before |\n|---|---:|---:|---:|');
for (const name of [...Object.keys(cases), 'pipeline (createStripeHandler) 1 KB']) {
  const o = median(results[`${name}|old`]),
    n = median(results[`${name}|new`]);
  console.log(
    `| ${name} | ${Math.round(o).toLocaleString('en')} | ${Math.round(n).toLocaleString('en')} | ${(n / o).toFixed(3)} |`,
  );
}
