#!/usr/bin/env node
// `npx hookguard send chatwoot|stripe <url> --secret <secret> [--event <name>] [--file payload.json]
// [--repeat N]`: signs a delivery the way the provider does and posts it, printing each answer. Like the
// Stripe CLI's trigger, for Chatwoot too; meant for local testing.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { CHATWOOT_EVENT_NAMES, chatwootEvent } from './testing/chatwoot-event.js';
import { signChatwootPayload, signStripePayload, stripeEvent } from './testing/index.js';
import type { ChatwootEventName } from './types/chatwoot.js';

const USAGE = `usage: hookguard send chatwoot|stripe <url> --secret <secret> [--event <name>] [--file payload.json] [--repeat N]
       hookguard inbox failed|retry [<job id>|--all] --redis <url>|--postgres <url> [--queue <name>] [--limit N]

  send     sign a delivery the way the provider does, post it and print each answer
  --secret   the webhook signing secret (or HOOKGUARD_SECRET in the environment)
  --event    Chatwoot event name (default message_created) or Stripe event type (default checkout.session.completed)
  --file     send this JSON file as the payload instead of a generated one
  --repeat   send the same signed delivery N times (default 1), to watch deduplication
  --legacy   Chatwoot only: sign the body alone (scheme 'legacy-body')

  inbox    the durable inbox's dead letter: list failed jobs, or run one (or all) again
  --redis    the Redis URL of a BullMQ inbox (or HOOKGUARD_REDIS_URL)
  --postgres the PostgreSQL URL of a pg-boss inbox (or HOOKGUARD_DATABASE_URL)
  --queue    the queue name (default hookguard)
  --limit    how many failed jobs to list (default 20)`;

export async function main(argv: string[], print: (line: string) => void = console.log): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        secret: { type: 'string' },
        event: { type: 'string' },
        file: { type: 'string' },
        repeat: { type: 'string', default: '1' },
        legacy: { type: 'boolean', default: false },
        redis: { type: 'string' },
        postgres: { type: 'string' },
        queue: { type: 'string', default: 'hookguard' },
        limit: { type: 'string', default: '20' },
        all: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
        version: { type: 'boolean', short: 'v', default: false },
      },
    });
  } catch (err) {
    // One line for what was wrong, then the usage.
    print(`error: ${(err as Error).message.split('. ')[0]!.replace(/\.$/, '')}\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.version) {
    print(version());
    return 0;
  }
  if (positionals[0] === 'inbox' && !values.help) return inboxCommand(values, positionals.slice(1), print);
  const [command, provider, url] = positionals;
  const secret = values.secret ?? process.env.HOOKGUARD_SECRET;
  const repeat = Number(values.repeat);
  if (
    values.help ||
    command !== 'send' ||
    (provider !== 'chatwoot' && provider !== 'stripe') ||
    url === undefined
  ) {
    print(USAGE);
    return values.help ? 0 : 2;
  }
  if (secret === undefined || secret === '') {
    print(`a secret is required (--secret or HOOKGUARD_SECRET)\n${USAGE}`);
    return 2;
  }
  if (!Number.isInteger(repeat) || repeat < 1) {
    print('--repeat must be a positive integer');
    return 2;
  }
  const payload = payloadOf(provider, values.file, values.event);
  if (typeof payload === 'string' && payload.startsWith('error: ')) {
    print(payload);
    return 2;
  }
  const signed =
    provider === 'chatwoot'
      ? signChatwootPayload(payload, secret, values.legacy ? { scheme: 'legacy-body' } : {})
      : signStripePayload(payload, secret);
  let failures = 0;
  for (let i = 1; i <= repeat; i++) {
    try {
      const response = await fetch(url, { method: 'POST', body: signed.body, headers: signed.headers });
      const body = await response.text();
      print(`${i}/${repeat} ${response.status} ${body}`);
      if (!response.ok) failures++;
    } catch (err) {
      print(`${i}/${repeat} error: ${unreachable(url, err)}`);
      failures++;
    }
  }
  return failures === 0 ? 0 : 1;
}

interface InboxValues {
  redis?: string | undefined;
  postgres?: string | undefined;
  queue?: string | undefined;
  limit?: string | undefined;
  all?: boolean | undefined;
}

/** `hookguard inbox failed|retry`: an inbox's dead letter, by its own calls. */
async function inboxCommand(
  values: InboxValues,
  [verb, id]: string[],
  print: (line: string) => void,
): Promise<number> {
  const postgres = values.postgres ?? process.env.HOOKGUARD_DATABASE_URL;
  const redis = values.redis ?? process.env.HOOKGUARD_REDIS_URL;
  const missing = postgres === undefined && redis === undefined;
  if (
    missing ||
    (verb !== 'failed' && verb !== 'retry') ||
    (verb === 'retry' && id === undefined && values.all !== true)
  ) {
    print(
      missing
        ? `the inbox's engine is required (--redis redis://host:6379 for BullMQ, --postgres postgres://… for pg-boss)\n${USAGE}`
        : USAGE,
    );
    return 2;
  }
  const queueName = values.queue ?? 'hookguard';
  const inbox = await openInbox(redis, postgres, queueName);
  try {
    if (verb === 'failed') {
      const jobs = await inbox.failed(Math.max(1, Number(values.limit ?? 20) || 20));
      if (jobs.length === 0) print('no failed jobs');
      for (const job of jobs) {
        print(
          `${job.id}  ${job.provider} ${job.event ?? '-'}  ${job.attempts} attempts  ${job.failedAt ?? '-'}  ${job.error.slice(0, 120)}`,
        );
      }
      return 0;
    }
    if (values.all === true) {
      print(`${await inbox.retryAll()} failed jobs queued again`);
      return 0;
    }
    const retried = await inbox.retry(id!);
    print(retried ? `${id} queued again` : `${id} is not a failed job of queue ${queueName}`);
    return retried ? 0 : 1;
  } finally {
    await inbox.close();
  }
}

/** The payload to send, or a one-line `error: …` saying what to fix. */
function payloadOf(provider: 'chatwoot' | 'stripe', file: string | undefined, event: string | undefined) {
  if (file !== undefined) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      return `error: cannot read --file ${file} (${typeof code === 'string' ? code : 'unreadable'}): give the path of a JSON payload.`;
    }
    try {
      JSON.parse(text);
    } catch {
      return `error: --file ${file} is not JSON; webhook payloads are JSON objects.`;
    }
    return text;
  }
  if (provider === 'chatwoot') {
    const name = event ?? 'message_created';
    if (!CHATWOOT_EVENT_NAMES.includes(name as ChatwootEventName)) {
      return `error: unknown Chatwoot event "${name.slice(0, 60)}"; use one of: ${CHATWOOT_EVENT_NAMES.join(', ')}.`;
    }
    return chatwootEvent(name as ChatwootEventName);
  }
  const type = event ?? 'checkout.session.completed';
  if (!/^[a-z0-9_]+(\.[a-z0-9_]+)+$/.test(type)) {
    return `error: "${type.slice(0, 60)}" is not a Stripe event type (like checkout.session.completed or invoice.paid).`;
  }
  return stripeEvent(type as 'checkout.session.completed');
}

/** Why a POST got no answer, in a line that names the address and the likely fix. */
function unreachable(url: string, err: unknown): string {
  const cause = (err as { cause?: { code?: unknown; address?: unknown; port?: unknown } }).cause;
  const code = typeof cause?.code === 'string' ? cause.code : undefined;
  let where: string;
  try {
    where = new URL(url).host;
  } catch {
    return `"${url}" is not a URL (like http://localhost:3000/webhooks/chatwoot).`;
  }
  if (code === 'ECONNREFUSED')
    return `connection refused by ${where} (ECONNREFUSED): is the server running on that port?`;
  if (code === 'ENOTFOUND') return `cannot resolve ${where} (ENOTFOUND): check the host name.`;
  const reason = code ?? (cause as { message?: unknown } | undefined)?.message;
  return `${typeof reason === 'string' ? reason : err instanceof Error ? err.message : String(err)} while posting to ${where}.`;
}

/** The package's version, from the package.json next to the built file (or the sources). */
function version(): string {
  for (const candidate of ['../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(candidate, import.meta.url), 'utf8')) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === 'hookguard' && typeof pkg.version === 'string') return pkg.version;
    } catch {
      // not there: try the next
    }
  }
  return 'unknown';
}

/** The engine named on the command line; each is imported only when asked for. */
async function openInbox(redis: string | undefined, postgres: string | undefined, queueName: string) {
  if (postgres !== undefined) {
    const { createPgBossInbox } = await import('./inbox/pg-boss.js');
    return createPgBossInbox({ connection: postgres, queueName });
  }
  const { createBullMQInbox } = await import('./inbox/bullmq.js');
  const parsed = new URL(redis!);
  return createBullMQInbox({
    connection: { host: parsed.hostname, port: Number(parsed.port || 6379), maxRetriesPerRequest: 1 },
    queueName,
  });
}

if (process.argv[1] !== undefined && /(?:^|[\\/])(?:cli\.[cm]?[jt]s|hookguard)$/.test(process.argv[1])) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      console.error(`hookguard: ${err instanceof Error ? err.message : String(err)}`);
      process.exitCode = 1;
    },
  );
}
