#!/usr/bin/env node
// `npx hookguard send chatwoot|stripe <url> --secret <secret> [--event <name>] [--file payload.json]
// [--repeat N]`: signs a delivery the way the provider does and posts it, printing each answer. Like the
// Stripe CLI's trigger, for Chatwoot too; meant for local testing.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { BullMQInbox, BullMQInboxOptions, FailedInboxJob } from './inbox/bullmq.js';
import type { PgBossInbox, PgBossInboxOptions } from './inbox/pg-boss.js';
import { CHATWOOT_EVENT_NAMES, chatwootEvent } from './testing/chatwoot-event.js';
import { signChatwootPayload, signStripePayload, stripeEvent } from './testing/index.js';
import { oneLine } from './text/one-line.js';
import type { ChatwootEventName } from './types/chatwoot.js';
import { field, settleWithin } from './util/values.js';

const USAGE = `usage: hookguard send chatwoot|stripe <url> --secret <secret> [--event <name>] [--file payload.json] [--repeat N]
       hookguard inbox failed|retry [<job id>|--all] --redis <url>|--postgres <url> [--queue <name>] [--limit N]

  send     sign a delivery the way the provider does, post it and print each answer
  --secret   the webhook signing secret (or HOOKGUARD_SECRET in the environment)
  --event    Chatwoot event name (default message_created) or Stripe event type (default checkout.session.completed)
  --file     send this JSON file as the payload instead of a generated one
  --repeat   send the same signed delivery N times (default 1), to watch deduplication
  --legacy   Chatwoot only: sign the body alone (scheme 'legacy-body')

  inbox    the durable inbox's dead letter: list failed jobs, or run one (or all) again
  --redis    the Redis URL of a BullMQ inbox (or HOOKGUARD_REDIS_URL): redis://[user:password@]host[:port][/db],
             rediss://… for TLS
  --postgres the PostgreSQL URL of a pg-boss inbox (or HOOKGUARD_DATABASE_URL)
  --queue    the queue name (default hookguard)
  --limit    how many failed jobs to list (default 20)
  An engine that does not connect within 3 s, or a command not done within 10 s, ends in one line saying
  why, and exit code 1.`;

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

/** Connecting (TCP, TLS, login, database) gets this long; then the command says why, and exits 1. */
const CONNECT_TIMEOUT_MS = 3000;
/** No `hookguard inbox` command runs longer than this, whatever the server does (or does not) answer. */
const COMMAND_DEADLINE_MS = 10_000;

/** The inbox named on the command line: how to connect, and what may be said about it. */
type Target = {
  /** host:port, for messages: never the URL, which may hold a password. */
  where: string;
  /** The URL's password: masked in anything printed. */
  secret: string | undefined;
} & (
  | { engine: 'Redis'; tls: boolean; connection: BullMQInboxOptions['connection'] }
  | { engine: 'PostgreSQL'; connection: PgBossInboxOptions['connection'] }
);

type OpenInbox = BullMQInbox | PgBossInbox;

/** `hookguard inbox failed|retry`: an inbox's dead letter, by its own calls. */
async function inboxCommand(
  values: InboxValues,
  [verb, id]: string[],
  print: (line: string) => void,
): Promise<number> {
  // A flag on the command line wins over both variables of the environment.
  const flagged = values.postgres !== undefined || values.redis !== undefined;
  const postgres = flagged ? values.postgres : process.env.HOOKGUARD_DATABASE_URL;
  const redis = flagged ? values.redis : process.env.HOOKGUARD_REDIS_URL;
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
  const target = postgres !== undefined ? postgresTarget(postgres) : redisTarget(redis!);
  if (typeof target === 'string') {
    print(target);
    return 2;
  }
  const queueName = values.queue ?? 'hookguard';
  const opened: { inbox?: OpenInbox } = {};
  try {
    const { code, lines } = await bounded(
      (async () => {
        const inbox = await openInbox(target, queueName, opened);
        return runVerb(inbox, verb, id, values, queueName);
      })(),
      COMMAND_DEADLINE_MS,
      verb === 'retry'
        ? `stopped after ${COMMAND_DEADLINE_MS / 1000} s, not done: the jobs queued again so far stay queued; run it again for the rest`
        : `gave up after ${COMMAND_DEADLINE_MS / 1000} s: no answer`,
    );
    // Printed only once the whole command is done: a late answer cannot follow the deadline's line.
    for (const line of lines) print(line);
    return code;
  } catch (err) {
    print(`error: ${explain(target, err)}`);
    return 1;
  } finally {
    if (opened.inbox !== undefined) await settleWithin(opened.inbox.close(), 1000);
  }
}

/** The verb's work: the lines to print and the exit code. */
async function runVerb(
  inbox: OpenInbox,
  verb: string,
  id: string | undefined,
  values: InboxValues,
  queueName: string,
): Promise<{ code: number; lines: string[] }> {
  if (verb === 'failed') {
    const jobs = await listFailed(inbox, Math.max(1, Number(values.limit ?? 20) || 20));
    return { code: 0, lines: jobs.length === 0 ? ['no failed jobs'] : jobs.map(jobLine) };
  }
  if (values.all === true) return { code: 0, lines: [`${await inbox.retryAll()} failed jobs queued again`] };
  const retried = await inbox.retry(id!);
  const line = retried
    ? `${cell(id, 100)} queued again`
    : `${cell(id, 100)} is not a failed job of queue ${cell(queueName, 100)}`;
  return { code: retried ? 0 : 1, lines: [line] };
}

/** BullMQ's connection from the whole URL: user, password, database (`/3`), TLS (`rediss:`), bounded. */
function redisTarget(text: string): Target | string {
  const url = urlOf(text);
  const db = /^(?:\/(\d+))?\/?$/.exec(url?.pathname ?? '');
  const username = decoded(url?.username);
  const password = decoded(url?.password);
  if (
    url === undefined ||
    (url.protocol !== 'redis:' && url.protocol !== 'rediss:') ||
    db === null ||
    username === null ||
    password === null
  ) {
    return 'error: --redis takes a URL like redis://:password@host:6379/0 (rediss:// for TLS; /0 is the database number).';
  }
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1') || '127.0.0.1';
  const port = Number(url.port || 6379);
  const tls = url.protocol === 'rediss:';
  return {
    engine: 'Redis',
    where: `${url.hostname || host}:${port}`,
    secret: password,
    tls,
    connection: {
      host,
      port,
      db: Number(db[1] ?? 0),
      ...(username === undefined ? {} : { username }),
      ...(password === undefined ? {} : { password }),
      // Node sends the host name for SNI and checks the server's certificate against it.
      ...(tls ? { tls: {} } : {}),
      connectTimeout: CONNECT_TIMEOUT_MS,
      commandTimeout: CONNECT_TIMEOUT_MS,
      // One attempt: a server that refuses now is reported now, not retried in silence forever.
      retryStrategy: () => null,
      maxRetriesPerRequest: 0,
      enableOfflineQueue: false,
    },
  };
}

/** pg-boss's connection: the URL as given (pg reads all of it), with a bounded connect. */
function postgresTarget(text: string): Target {
  const url = urlOf(text);
  // pg-boss hands these to pg.Pool, whose connectionTimeoutMillis its own types do not list.
  const connection: PgBossInboxOptions['connection'] & { connectionTimeoutMillis: number } = {
    connectionString: text,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    // A one-shot command: no maintenance or cron timers of its own.
    supervise: false,
    schedule: false,
  };
  return {
    engine: 'PostgreSQL',
    where: url === undefined ? '(--postgres)' : `${url.hostname || 'localhost'}:${url.port || 5432}`,
    secret: decoded(url?.password) ?? undefined,
    connection,
  };
}

function urlOf(text: string): URL | undefined {
  try {
    return new URL(text);
  } catch {
    return undefined;
  }
}

/** A URL's user or password, decoded; undefined when empty, null when its %-escapes are broken. */
function decoded(part: string | undefined): string | undefined | null {
  if (part === undefined || part === '') return undefined;
  try {
    return decodeURIComponent(part);
  } catch {
    return null;
  }
}

/** The engine, imported only when asked for, and connected (else this throws the client's reason). */
async function openInbox(target: Target, queueName: string, opened: { inbox?: OpenInbox }) {
  if (target.engine === 'PostgreSQL') {
    const { createPgBossInbox } = await import('./inbox/pg-boss.js');
    // pg-boss connects on the first call, which then fails with the reason.
    return (opened.inbox = createPgBossInbox({ connection: target.connection, queueName, logger: false }));
  }
  const { createBullMQInbox } = await import('./inbox/bullmq.js');
  const inbox = (opened.inbox = createBullMQInbox({
    connection: target.connection,
    queueName,
    logger: false,
  }));
  const errors: unknown[] = [];
  inbox.queue.on('error', (err) => void errors.push(err));
  // ioredis times out the connect and its ready check, but then waits for a silent server to close the
  // socket; the half second lets the client's own reason (TLS, a refused login) arrive first.
  await bounded(
    inbox.queue.waitUntilReady(),
    CONNECT_TIMEOUT_MS + 500,
    `no answer within ${CONNECT_TIMEOUT_MS / 1000} s: is it a Redis server, and not frozen?`,
  );
  // ioredis reports a refused SELECT (no such database, an ACL without it) only as an error event and
  // goes on in database 0, where `retry --all` would run another application's jobs.
  if (errors[0] !== undefined) throw errors[0];
  return inbox;
}

/**
 * The failed jobs, as the engine lists them. BullMQ's listing parses every job's data and fails as a whole
 * on one that is not JSON (written by another tool, or damaged): the jobs are then read one by one, each
 * shown as far as it can be, so one bad job does not hide the others.
 */
async function listFailed(inbox: OpenInbox, limit: number): Promise<FailedInboxJob[]> {
  try {
    return await inbox.failed(limit);
  } catch (err) {
    // A connection's error is the answer; these three are the engine tripping over a job's data.
    const aboutData = err instanceof SyntaxError || err instanceof TypeError || err instanceof RangeError;
    if (!aboutData || !('queue' in inbox)) throw err;
    return readBullMQFailed(inbox, limit);
  }
}

async function readBullMQFailed({ queue }: BullMQInbox, limit: number): Promise<FailedInboxJob[]> {
  const ids = await queue.getRanges(['failed'], 0, limit - 1, false);
  return Promise.all(
    ids.map(async (id) => {
      try {
        const job = await queue.getJob(id);
        return failedJob(id, job?.data, job?.attemptsMade, job?.failedReason, job?.finishedOn);
      } catch (err) {
        return failedJob(id, undefined, undefined, `unreadable job (${String(err)})`, undefined);
      }
    }),
  );
}

/** A failed job from whatever its engine stored, never throwing. */
function failedJob(
  id: unknown,
  data: unknown,
  attempts: unknown,
  error: unknown,
  finished: unknown,
): FailedInboxJob {
  const text = (value: unknown) =>
    value === undefined || value === null ? undefined : typeof value === 'string' ? value : safeJson(value);
  const date = typeof finished === 'number' ? new Date(finished) : null;
  return {
    id: String(id),
    provider: text(field(data, 'provider')) ?? '(not a hookguard job)',
    event: text(field(data, 'name')),
    key: text(field(data, 'key')),
    attempts: typeof attempts === 'number' ? attempts : Number.NaN,
    error: typeof error === 'string' ? error : 'failed',
    failedAt: date === null || Number.isNaN(date.getTime()) ? undefined : date.toISOString(),
  };
}

/**
 * One line per job. The error (a handler's message, which can quote a customer), the event name and the
 * id come from outside: each is escaped and bounded, so none can forge a row or drive the terminal.
 */
function jobLine(job: FailedInboxJob): string {
  const attempts = typeof job.attempts === 'number' && Number.isFinite(job.attempts) ? job.attempts : '?';
  return [
    cell(job.id, 100),
    `${cell(job.provider, 40)} ${cell(job.event, 80)}`,
    `${attempts} attempts`,
    cell(job.failedAt, 30),
    cell(job.error, 200),
  ].join('  ');
}

// The characters oneLine would flatten to a space (C0, DEL, C1, U+2028/2029) and the bidi controls that
// reorder what a terminal shows, written as escapes instead: the operator sees a forged row for what it is.
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
const SHORT_ESCAPES: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/** Any value as one printable, bounded cell: `-` when absent. */
function cell(value: unknown, max: number): string {
  const text = value === undefined || value === null || value === '' ? '-' : String(value);
  // Only the head can be shown: escaping it alone keeps a huge value cheap.
  const escaped = text
    .slice(0, max + 1)
    .replace(UNPRINTABLE, (c) => SHORT_ESCAPES[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return oneLine(escaped, max) || '-';
}

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/** Rejects with `message` when `work` takes longer than `ms` (the work itself goes on, unheard). */
async function bounded<T>(work: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new TimedOut(message)), ms);
  });
  try {
    return await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
  }
}

class TimedOut extends Error {}

/**
 * Plain words for what clients report, looked up in the error's code and message: the operator reads
 * what to fix; the client's own words follow in parentheses.
 */
const REASONS: readonly [RegExp, (target: Target) => string][] = [
  [/ECONNREFUSED/, () => 'connection refused: is the server running on that port?'],
  [/ENOTFOUND|EAI_AGAIN/, () => 'cannot resolve the host name'],
  [/WRONGPASS|28P01/, () => 'wrong user or password'],
  [/NOAUTH/, () => 'the server wants a password: put it in the URL (redis://:password@host:port)'],
  [/DB index|'select' command/i, () => 'cannot use that database (the /number in the URL)'],
  [/3D000/, () => 'no such database'],
  [/ERR_SSL|SSL routines|certificate|\bTLS\b/i, () => 'the TLS handshake failed'],
  [
    /ETIMEDOUT|timeout|timed out/i,
    (target) =>
      target.engine === 'Redis' && target.tls
        ? `no TLS handshake within ${CONNECT_TIMEOUT_MS / 1000} s: rediss:// wants a TLS port (redis:// for a plain one)`
        : `no answer within ${CONNECT_TIMEOUT_MS / 1000} s`,
  ],
];

/** One line: the engine, where, what went wrong in plain words, and the client's own words. */
function explain(target: Target, err: unknown): string {
  const at = `${target.engine} at ${target.where}`;
  if (err instanceof TimedOut) return `${at}: ${err.message}`;
  const code = typeof field(err, 'code') === 'string' ? (field(err, 'code') as string) : '';
  const message = err instanceof Error ? err.message : String(err);
  if (code === 'ERR_MODULE_NOT_FOUND') {
    const pkg = target.engine === 'Redis' ? 'bullmq' : 'pg-boss';
    return `the ${target.engine} inbox needs the ${pkg} package: npm install ${pkg}`;
  }
  // Our own words never hold the password; a client's might (a URL in its message): those are masked.
  const words = message === '' || message.includes(code) ? message || code : `${code}: ${message}`;
  const detail = cell(masked(words, target.secret), 200);
  const reason = REASONS.find(([pattern]) => pattern.test(`${code} ${message}`));
  return reason === undefined ? `${at}: ${detail}` : `${at}: ${reason[1](target)} (${detail})`;
}

/**
 * The text with the URL's password (as given, and %-encoded) replaced by `***` wherever it stands as a
 * token of its own (as in a URL or a quote), so that a short password does not blot out ordinary words.
 */
function masked(text: string, secret: string | undefined): string {
  if (secret === undefined || secret === '') return text;
  let out = text;
  for (const form of new Set([secret, encodeURIComponent(secret)])) {
    const literal = form.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    out = out.replace(new RegExp(`(?<![A-Za-z0-9])${literal}(?![A-Za-z0-9])`, 'g'), '***');
  }
  return out;
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

if (process.argv[1] !== undefined && /(?:^|[\\/])(?:cli\.[cm]?[jt]s|hookguard)$/.test(process.argv[1])) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
      // A client that does not let go (a half-open socket, a pool's timer) must not keep the process
      // alive once the answer is printed.
      setTimeout(() => process.exit(), 1000).unref();
    },
    (err: unknown) => {
      console.error(`hookguard: ${err instanceof Error ? err.message : String(err)}`);
      process.exitCode = 1;
    },
  );
}
