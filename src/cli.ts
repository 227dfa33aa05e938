#!/usr/bin/env node
// `npx hookguard send chatwoot|stripe <url> --secret <secret> [--event <name>] [--file payload.json]
// [--repeat N]`: signs a delivery the way the provider does and posts it, printing each answer. Like the
// Stripe CLI's trigger, for Chatwoot too; meant for local testing.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { chatwootEvent, signChatwootPayload, signStripePayload, stripeEvent } from './testing/index.js';
import type { ChatwootEventName } from './types/chatwoot.js';

const USAGE = `usage: hookguard send chatwoot|stripe <url> --secret <secret> [--event <name>] [--file payload.json] [--repeat N]

  --secret   the webhook signing secret (or HOOKGUARD_SECRET in the environment)
  --event    Chatwoot event name (default message_created) or Stripe event type (default checkout.session.completed)
  --file     send this JSON file as the payload instead of a generated one
  --repeat   send the same signed delivery N times (default 1), to watch deduplication
  --legacy   Chatwoot only: sign the body alone (scheme 'legacy-body')`;

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
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (err) {
    print(`${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
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
