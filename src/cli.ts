#!/usr/bin/env node
// `npx hookguard send chatwoot|stripe <url> --secret <secret> [--event <name>] [--file payload.json]
// [--repeat N]`: signs a delivery the way the provider does and posts it, printing each answer. Like the
// Stripe CLI's trigger, for Chatwoot too; meant for local testing.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { chatwootEvent, signChatwootPayload, signStripePayload, stripeEvent } from './testing/index.js';
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
      },
    });
  } catch (err) {
    print(`${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
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
  const payload: string | object =
    values.file !== undefined
      ? readFileSync(values.file, 'utf8')
      : provider === 'chatwoot'
        ? chatwootEvent((values.event ?? 'message_created') as ChatwootEventName)
        : stripeEvent((values.event ?? 'checkout.session.completed') as 'checkout.session.completed');
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
      print(`${i}/${repeat} error: ${(err as Error).message}`);
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
