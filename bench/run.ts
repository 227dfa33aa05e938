// `npm run bench`: every comparison in one run, on the built package (what users load), written to
// bench/RESULTS.md and bench/results.json with the machine at the top. `--smoke` runs tiny counts and
// writes to a private temporary directory instead, removed at the end (CI runs it so the benchmarks cannot
// rot, and two runs on one machine never share files).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { httpRows, type HttpRow } from './http.js';
import {
  chatwootRows,
  heapAfterFlood,
  heapPerEntry,
  PIPELINE,
  pipelineRows,
  storeRows,
  stripeRows,
  type Row,
} from './micro.js';

const smoke = process.argv.includes('--smoke');
const time = smoke ? 60 : 1500;
const outDir = smoke
  ? mkdtempSync(join(tmpdir(), 'hookguard-bench-'))
  : fileURLToPath(new URL('.', import.meta.url));

interface Target {
  target: string;
  value: string;
  met: boolean;
}

const machine = {
  cpu: cpus()[0]?.model ?? 'unknown',
  cores: cpus().length,
  memoryGiB: Math.round(totalmem() / 2 ** 30),
  node: process.version,
  date: new Date().toISOString(),
};
console.log(`${machine.cpu}, ${machine.cores} cores, Node ${machine.node}${smoke ? ' (smoke)' : ''}`);

const verifyRows: Row[] = [...(await chatwootRows(time)), ...(await stripeRows(time))];
const memoryRows = await storeRows(time, smoke ? 50_000 : 4_000_000);
const pipeline = await pipelineRows(time, smoke ? 2_000 : 50_000);
const bytesPerEntry = heapPerEntry(smoke ? 10_000 : 100_000);
const floodKeys = smoke ? 100_000 : 10_000_000;
const flood = heapAfterFlood(floodKeys);
const http: HttpRow[] = await httpRows(smoke ? 1 : 5, smoke ? 1 : 2);

const ops = (group: string, name: string) =>
  verifyRows.concat(memoryRows).find((r) => r.group === group && r.name === name)?.opsPerSecond ?? Number.NaN;
const ratio = (a: number, b: number) => Math.round((a / b) * 1000) / 1000;
const targets: Target[] = [];
for (const size of ['1 KB', '16 KB', '256 KB']) {
  const group = `verifyChatwootSignature, ${size}`;
  const ours = ops(group, 'hookguard verifyChatwootSignature');
  const raw = ops(group, 'raw limit: createHmac(ts + body) + timingSafeEqual');
  const octokit = ops(group, '@octokit/webhooks-methods verify (body-only HMAC, same work)');
  if (size !== '16 KB')
    targets.push({
      target: `verifyChatwootSignature ≥ 0.9 × raw limit, ${size}`,
      value: `${ratio(ours, raw)} ×`,
      met: ours >= 0.9 * raw,
    });
  targets.push({
    target: `verifyChatwootSignature faster than octokit verify, ${size}`,
    value: `${ratio(ours, octokit)} ×`,
    met: ours > octokit,
  });
}
for (const [size, want] of [
  ['1 KB', 1.3],
  ['256 KB', 2],
] as const) {
  const group = `verifyStripeEvent, ${size}`;
  const ours = ops(group, 'hookguard verifyStripeEvent (Buffer)');
  const sdk = ops(group, 'Stripe.webhooks.constructEvent (Buffer)');
  targets.push({
    target: `verifyStripeEvent ≥ ${want} × constructEvent(Buffer), ${size}`,
    value: `${ratio(ours, sdk)} ×`,
    met: ours >= want * sdk,
  });
}
for (const size of ['1 KB', '16 KB', '256 KB']) {
  const group = `verifyStripeEvent, ${size}`;
  const ours = ops(group, 'hookguard verifyStripeEvent (Buffer)');
  const limit = ops(group, 'raw limit: createHmac + timingSafeEqual + JSON.parse');
  targets.push({
    target: `verifyStripeEvent ≥ 0.9 × raw limit + UTF-8 decode + JSON.parse, ${size}`,
    value: `${ratio(ours, limit)} ×`,
    met: ours >= 0.9 * limit,
  });
}
const perRequestUs = (name: string) =>
  1e6 / (pipeline.find((r) => r.name === name)?.opsPerSecond ?? Number.NaN);
const overheadUs = perRequestUs(PIPELINE.plain) - perRequestUs(PIPELINE.verify);
targets.push({
  target:
    'pipeline overhead over a bare verifyStripeEvent ≤ 3 µs per request (1 KB, memory store, no logger, no telemetry)',
  value: `${overheadUs.toFixed(2)} µs (${perRequestUs(PIPELINE.plain).toFixed(2)} vs ${perRequestUs(PIPELINE.verify).toFixed(2)} µs)`,
  met: overheadUs <= 3,
});
// Stated, not a target: what the telemetry option costs with the API alone and with an SDK recording.
const apiUs = perRequestUs(PIPELINE.api) - perRequestUs(PIPELINE.plain);
const sdkUs = perRequestUs(PIPELINE.sdk) - perRequestUs(PIPELINE.verifySdk) - overheadUs;
console.log(
  `telemetry option: +${apiUs.toFixed(2)} µs per request with the API alone, +${sdkUs.toFixed(2)} µs with an SDK recording`,
);
const storeOps = memoryRows.find((r) => r.name.startsWith('hookguard'))?.opsPerSecond ?? 0;
targets.push({
  target: 'memory store ≥ 2,000,000 claim+complete/s (unique keys, eviction running)',
  value: `${storeOps.toLocaleString('en-US')}/s`,
  met: storeOps >= 2_000_000,
});
targets.push({
  target: 'memory store ≤ 200 heap bytes per entry at 100 k entries',
  value: `${bytesPerEntry} B`,
  met: bytesPerEntry <= 200,
});
for (const framework of ['express', 'fastify', 'koa']) {
  const ours = http.find((r) => r.name === `${framework} hookguard`);
  const base = http.find((r) => r.name === `${framework} hand-written`);
  if (ours === undefined || base === undefined) continue;
  targets.push({
    target: `${framework} adapter ≥ 0.95 × hand-written route (req/s)`,
    value: `${ratio(ours.requestsPerSecond, base.requestsPerSecond)} ×`,
    met: ours.requestsPerSecond >= 0.95 * base.requestsPerSecond,
  });
}

const fmt = (n: number) => n.toLocaleString('en-US');
const lines: string[] = [
  '# Benchmark results',
  '',
  `${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB, Node ${machine.node}, ${machine.date.slice(0, 10)}.`,
  'Produced by `npm run bench` (all comparisons in the same run, against the built package).',
  '',
  '## Targets',
  '',
  '| target | measured | met |',
  '|---|---:|:---:|',
  ...targets.map((t) => `| ${t.target} | ${t.value} | ${t.met ? 'yes' : '**no**'} |`),
  '',
  '## Verification (ops/s, higher is better)',
  '',
  '| group | implementation | ops/s | vs |',
  '|---|---|---:|---|',
  ...verifyRows.map(
    (r) =>
      `| ${r.group} | ${r.name} | ${fmt(r.opsPerSecond)} | ${r.ratio === undefined ? 'baseline' : `${r.ratio} × ${r.baseline}`} |`,
  ),
  '',
  '## Pipeline (per request, 1 KB Stripe events, memory store, no logger)',
  '',
  '| implementation | requests/s | µs per request |',
  '|---|---:|---:|',
  ...pipeline.map((r) => `| ${r.name} | ${fmt(r.opsPerSecond)} | ${(1e6 / r.opsPerSecond).toFixed(2)} |`),
  '',
  `The \`telemetry\` option (\`hookguard/otel\`) adds ${apiUs.toFixed(2)} µs per request with the OpenTelemetry API alone and ${sdkUs.toFixed(2)} µs with an SDK recording its spans and metrics (each over its own loop's bare verify). Without the option, nothing is added: the target above.`,
  '',
  '## Memory store',
  '',
  '| measure | value |',
  '|---|---:|',
  ...memoryRows.map((r) => `| ${r.name} (per operation) | ${fmt(r.opsPerSecond)}/s |`),
  `| heap per completed entry at ${smoke ? '10 k' : '100 k'} entries | ${bytesPerEntry} B |`,
  `| heap after ${fmt(floodKeys)} distinct keys through the default store (cap 10 000) | ${flood.heapMB} MB (size ${fmt(flood.size)}) |`,
  '',
  '## HTTP end to end (loopback, 32 connections, unique 1 KB Stripe events, best of the rounds)',
  '',
  '| server | req/s | p99 ms | non-2xx | errors |',
  '|---|---:|---:|---:|---:|',
  ...http.map((r) => `| ${r.name} | ${fmt(r.requestsPerSecond)} | ${r.p99Ms} | ${r.non2xx} | ${r.errors} |`),
  '',
];
const markdown = lines.join('\n');
console.log(markdown);
writeFileSync(join(outDir, 'RESULTS.md'), markdown);
writeFileSync(
  join(outDir, 'results.json'),
  `${JSON.stringify({ machine, targets, verify: verifyRows, pipeline, memory: { rows: memoryRows, bytesPerEntry, flood }, http }, null, 2)}\n`,
);
if (smoke) {
  rmSync(outDir, { recursive: true, force: true });
  console.log('smoke run: results written to a private temporary directory and removed');
} else {
  console.log(`written to ${join(outDir, 'RESULTS.md')} and results.json`);
}
