#!/usr/bin/env node
// `npx hookguard send chatwoot|stripe <url> …`: signs a delivery the way the provider does and posts it,
// printing each answer and how long it took. Like the Stripe CLI's trigger, for Chatwoot too; meant for
// local testing. `npx hookguard inbox failed|retry|stats …`: the durable inbox, for its operator.
import { randomBytes, randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { BullMQInbox, BullMQInboxOptions, FailedInboxJob } from './inbox/bullmq.js';
import { otherBullMQQueues } from './inbox/bullmq-stats.js';
import { age, judgeInbox, type InboxHealthUp } from './inbox/inbox-health.js';
import { totalJobs, type InboxStats, type OtherQueues } from './inbox/inbox-stats.js';
import type { PgBossInbox, PgBossInboxOptions } from './inbox/pg-boss.js';
import { otherPgBossQueues } from './inbox/pg-boss-stats.js';
import { CHATWOOT_EVENT_NAMES, chatwootEvent } from './testing/chatwoot-event.js';
import { signChatwootPayload, signStripePayload, stripeEvent } from './testing/index.js';
import { STRIPE_OBJECTS } from './testing/stripe-objects.js';
import { oneLine } from './text/one-line.js';
import type { ChatwootEventName } from './types/chatwoot.js';
import { field, settleWithin } from './util/values.js';

const USAGE = `usage: hookguard send chatwoot|stripe <url> --secret <secret> [--event <name>] [--file payload.json] [--new-id] [--repeat N] [--timestamp <s>] [--timeout <s>] [--legacy]
       hookguard inbox failed|retry|stats [<job id>|--all] --redis <url>|--postgres <url> [--queue <name>] [--limit N] [--warn-after <s>] [--max-failed N]

  send         sign a delivery the way the provider does, post it, print each answer and how long it took
  --secret     the webhook signing secret (or HOOKGUARD_SECRET in the environment)
  --event      Chatwoot event name (default message_created) or Stripe event type (default
               checkout.session.completed; a type hookguard builds no full payload for is sent with a warning)
  --file       send this JSON file as the payload instead of a generated one
  --new-id     give the payload a fresh id (Stripe's evt_…, Chatwoot's message or conversation id), so a file
               sent before is a new event instead of a duplicate (receivers remember ids for 3 days)
  --repeat     send the same signed delivery N times (default 1), to watch deduplication
  --timestamp  sign with this unix time in seconds (default now), to try the receiver's time window
  --timeout    seconds to wait for each answer (default 10). An answer slower than the provider waits
               (Chatwoot: 5 s) gets a warning: the provider would have counted it as a failure
  --legacy     Chatwoot only: sign the body alone (scheme 'legacy-body')

  inbox        the durable inbox (createBullMQInbox / createPgBossInbox)
  failed       list the failed jobs (the dead letter): id, provider and event, dedup key, attempts, when, error
  retry        run a failed job again (its id, from failed), or --all of them
  stats        count the jobs waiting, active, delayed, failed and completed, and the oldest waiting job's age;
               then the verdict: "health: ok", or "health: unhealthy (CODES)" with a WARNING line for each
               problem (PAUSED, WAITING_TOO_LONG, DEAD_LETTERS) and exit code 1
  --redis      the Redis URL of a BullMQ inbox (or HOOKGUARD_REDIS_URL): redis://[user:password@]host[:port][/db],
               rediss://… for TLS
  --postgres   the PostgreSQL URL of a pg-boss inbox (or HOOKGUARD_DATABASE_URL)
  --queue      the queue name: the inbox's queueName option (default hookguard). When that queue holds no
               jobs, the other queues of the server (or database) that do are named
  --limit      failed: how many failed jobs to list (default 20)
  --all        retry: every job that is failed now
  --warn-after stats: unhealthy (WAITING_TOO_LONG) when the oldest waiting job has waited longer than this many
               seconds (default 60)
  --max-failed stats: unhealthy (DEAD_LETTERS) when more jobs than this are failed (default 0)
  An engine that does not connect within 3 s, or a command not done within 10 s, ends in one line saying
  why, and exit code 1. A mistake on the command line exits 2.`;

const OPTIONS = {
  secret: { type: 'string' },
  event: { type: 'string' },
  file: { type: 'string' },
  'new-id': { type: 'boolean', default: false },
  repeat: { type: 'string', default: '1' },
  timestamp: { type: 'string' },
  timeout: { type: 'string', default: '10' },
  legacy: { type: 'boolean', default: false },
  redis: { type: 'string' },
  postgres: { type: 'string' },
  queue: { type: 'string', default: 'hookguard' },
  limit: { type: 'string', default: '20' },
  'warn-after': { type: 'string', default: '60' },
  'max-failed': { type: 'string', default: '0' },
  all: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
  version: { type: 'boolean', short: 'v', default: false },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>['values'];

/**
 * Runs one command. Answers and errors go to `print` (stdout), warnings to `warn` (stderr); resolves with
 * the exit code: 0 done, 1 the command failed (or `inbox stats` found the queue unhealthy), 2 the command
 * line is wrong.
 */
export async function main(
  argv: string[],
  print: (line: string) => void = console.log,
  warn: (line: string) => void = console.error,
): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, options: OPTIONS });
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
  const [command, ...rest] = positionals;
  if (values.help || command === undefined) {
    print(USAGE);
    return values.help ? 0 : 2;
  }
  if (command === 'inbox') return inboxCommand(values, rest, print, warn);
  if (command === 'send') {
    const plan = planSend(values, rest, warn);
    if (typeof plan === 'string') {
      print(plan);
      return 2;
    }
    return deliver(plan, print, warn);
  }
  print(`error: unknown command ${cell(command, 40)} (send or inbox)\n${USAGE}`);
  return 2;
}

type SendProvider = 'chatwoot' | 'stripe';

/** What `send` posts, decided before anything goes out. */
interface SendPlan {
  provider: SendProvider;
  url: string;
  body: string;
  headers: Record<string, string>;
  repeat: number;
  timeoutMs: number;
}

/** The delivery to post, or a one-line `error: …` (and the usage where the shape of the line is wrong). */
function planSend(values: Values, [provider, url, extra]: string[], warn: (line: string) => void) {
  if (provider !== 'chatwoot' && provider !== 'stripe') {
    return provider === undefined
      ? `error: send needs a provider and a URL\n${USAGE}`
      : `error: unknown provider ${cell(provider, 40)} (chatwoot or stripe)\n${USAGE}`;
  }
  if (url === undefined)
    return `error: send needs the URL to post to (like http://localhost:3000/webhooks/${provider})`;
  if (extra !== undefined) return `error: unexpected argument ${cell(extra, 60)} after the URL\n${USAGE}`;
  const secret = values.secret ?? process.env.HOOKGUARD_SECRET;
  if (secret === undefined || secret === '')
    return `error: a secret is required (--secret or HOOKGUARD_SECRET)\n${USAGE}`;
  const checked = [
    urlProblem(url),
    integerProblem('--repeat', values.repeat),
    secondsProblem('--timeout', values.timeout, false),
    timestampProblem(values.timestamp, values.legacy),
  ].find((problem) => problem !== undefined);
  if (checked !== undefined) return checked;
  if (values.file !== undefined && values.event !== undefined) {
    warn('warning: --event is ignored: the payload and its event come from --file');
  }
  let payload = payloadOf(provider, values.file, values.event, warn);
  if (typeof payload === 'string' && payload.startsWith('error: ')) return payload;
  if (values['new-id']) {
    payload = withNewId(provider, payload);
    if (typeof payload === 'string') return payload;
  }
  const timestamp = values.timestamp === undefined ? {} : { timestamp: Number(values.timestamp) };
  const signed =
    provider === 'chatwoot'
      ? signChatwootPayload(payload, secret, values.legacy ? { scheme: 'legacy-body' } : timestamp)
      : signStripePayload(payload, secret, timestamp);
  return {
    provider,
    url,
    ...signed,
    repeat: Number(values.repeat),
    timeoutMs: Number(values.timeout) * 1000,
  } satisfies SendPlan;
}

/** Why `url` cannot be posted to, or undefined. A URL without its scheme would reach fetch as "localhost:". */
function urlProblem(url: string): string | undefined {
  const parsed = urlOf(url);
  if (parsed !== undefined && (parsed.protocol === 'http:' || parsed.protocol === 'https:')) return undefined;
  const shown = cell(url, 100);
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(url)
    ? `error: ${shown} is not an http:// or https:// URL`
    : `error: ${shown} needs http:// or https:// in front (like http://${shown.replace(/^\/+/, '')})`;
}

function integerProblem(flag: string, text: string | undefined): string | undefined {
  return text !== undefined && /^\d{1,9}$/.test(text) && Number(text) >= 1
    ? undefined
    : `error: ${flag} must be a positive integer`;
}

function secondsProblem(flag: string, text: string | undefined, zero: boolean): string | undefined {
  const seconds = text === undefined || !/^\d+(\.\d+)?$/.test(text) ? Number.NaN : Number(text);
  return seconds > 0 || (zero && seconds === 0)
    ? undefined
    : `error: ${flag} takes a number of seconds${zero ? '' : ' above 0'}, like 10`;
}

/** Unix seconds from now on stay under 1e11 until the year 5138; a millisecond time is above it since 1973. */
function timestampProblem(text: string | undefined, legacy: boolean): string | undefined {
  if (text === undefined) return undefined;
  if (legacy) return "error: --timestamp does nothing with --legacy: the 'legacy-body' scheme signs no time";
  if (!/^\d{1,15}$/.test(text)) {
    return `error: --timestamp takes a unix time in seconds (digits only), like ${Math.floor(Date.now() / 1000)}`;
  }
  const seconds = Number(text);
  return seconds >= 1e11
    ? `error: --timestamp ${text} looks like milliseconds: pass seconds (${Math.floor(seconds / 1000)})`
    : undefined;
}

/**
 * The payload with a fresh id, so that a receiver's dedup sees a new event: Stripe's `id` (and a thin
 * event's `snapshot_event`, its key), Chatwoot's `id` and a relay's `message.id` (message and conversation
 * events key on them, the others on their content, which the new id changes too).
 */
function withNewId(provider: SendProvider, payload: string | object): object | string {
  let event: unknown = payload;
  if (typeof payload === 'string') {
    try {
      event = JSON.parse(payload) as unknown;
    } catch {
      event = undefined;
    }
  }
  if (typeof event !== 'object' || event === null || Array.isArray(event)) {
    return 'error: --new-id needs a JSON object as the payload';
  }
  const fresh = { ...(event as Record<string, unknown>) };
  if (provider === 'stripe') {
    fresh.id = stripeId();
    if (typeof fresh.snapshot_event === 'string') fresh.snapshot_event = stripeId();
    return fresh;
  }
  // Chatwoot's ids are integers (database ids); a relay's wrapper keeps the message's in `message.id`.
  const id = randomInt(1_000_000_000, 2_000_000_000);
  const message = field(fresh, 'message');
  const relayed = typeof message === 'object' && message !== null && 'id' in message;
  if (relayed) fresh.message = { ...message, id };
  if (!relayed || 'id' in fresh) fresh.id = id;
  return fresh;
}

/** `evt_` and 24 letters and digits, as Stripe's event ids look. */
const stripeId = () => `evt_${randomBytes(18).toString('base64url').replace(/[-_]/g, '0')}`;

/**
 * How long each provider waits for an answer, and what a slower one costs there: the line `send` warns
 * with. Chatwoot's is its WEBHOOK_TIMEOUT default (a per-read timeout: a receiver silent that long fails).
 * Stripe states no figure; 5 s is ours, a bound that a handler doing its work inline is likely to pass.
 */
const PROVIDER_WAIT: Record<SendProvider, { ms: number; late: string }> = {
  chatwoot: {
    ms: 5000,
    late: "past Chatwoot's 5 s (its WEBHOOK_TIMEOUT default): Chatwoot would count a failure and, for a message, hand a pending agent-bot conversation to a human or mark an API-inbox message failed",
  },
  stripe: {
    ms: 5000,
    late: 'over 5 s: Stripe states no timeout, but counts one as a failed delivery and sends the event again (for up to 3 days)',
  },
};
const INBOX_FIX =
  'answer at once and run the handler in a worker: the durable inbox (hookguard/bullmq or hookguard/pg-boss)';

/** Posts the delivery `repeat` times, one line per answer with its latency; a slow answer gets a warning. */
async function deliver(plan: SendPlan, print: (line: string) => void, warn: (line: string) => void) {
  const wait = PROVIDER_WAIT[plan.provider];
  let failures = 0;
  let slowest = 0;
  for (let i = 1; i <= plan.repeat; i++) {
    const started = performance.now();
    try {
      // Neither provider follows a redirect: a 3xx is shown as the answer it is.
      const response = await fetch(plan.url, {
        method: 'POST',
        body: plan.body,
        headers: plan.headers,
        redirect: 'manual',
        signal: AbortSignal.timeout(plan.timeoutMs),
      });
      // The time to the answer's headers: what a provider's read timeout sees.
      const took = performance.now() - started;
      slowest = Math.max(slowest, took);
      const body = await response.text();
      print(`${i}/${plan.repeat} ${response.status} in ${duration(took)} ${cell(body, 300)}`);
      if (response.status < 200 || response.status > 299) failures++;
    } catch (err) {
      print(`${i}/${plan.repeat} error: ${unreachable(plan, err)}`);
      failures++;
    }
  }
  if (slowest > wait.ms) warn(`warning: an answer took ${duration(slowest)}, ${wait.late}; ${INBOX_FIX}.`);
  return failures === 0 ? 0 : 1;
}

/** `12 ms`, `8.6 s`, `12 s`. */
function duration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  return ms < 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 1000)} s`;
}

/** Connecting (TCP, TLS, login, database) gets this long; then the command says why, and exits 1. */
const CONNECT_TIMEOUT_MS = 3000;
/** No `hookguard inbox` command runs longer than this, whatever the server does (or does not) answer. */
const COMMAND_DEADLINE_MS = 10_000;
/** Other queues named when the asked-for one is empty. */
const OTHER_QUEUES_SHOWN = 10;

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

/** What an inbox verb prints: its lines, its warnings, and the exit code. */
interface Outcome {
  code: number;
  lines: string[];
  warnings: string[];
}

const VERBS = ['failed', 'retry', 'stats'];

/** Why the inbox command line cannot run, or undefined. */
function inboxProblem(values: Values, verb: string | undefined, id: string | undefined, missing: boolean) {
  if (verb === undefined || !VERBS.includes(verb)) {
    const what = verb === undefined ? 'inbox needs a command' : `unknown inbox command ${cell(verb, 40)}`;
    return `error: ${what} (failed, retry or stats)\n${USAGE}`;
  }
  if (verb === 'retry' && id === undefined && !values.all) {
    return 'error: retry needs the id of a failed job (from hookguard inbox failed), or --all';
  }
  if (missing) {
    return `error: the inbox's engine is required (--redis redis://host:6379 for BullMQ, --postgres postgres://… for pg-boss)\n${USAGE}`;
  }
  return [
    integerProblem('--limit', values.limit),
    secondsProblem('--warn-after', values['warn-after'], true),
    /^\d{1,9}$/.test(values['max-failed'])
      ? undefined
      : 'error: --max-failed takes a number of jobs, 0 or more',
  ].find((problem) => problem !== undefined);
}

/** `hookguard inbox failed|retry|stats`: an inbox's dead letter and counts, by its own calls. */
async function inboxCommand(
  values: Values,
  [verb, id]: string[],
  print: (line: string) => void,
  warn: (line: string) => void,
): Promise<number> {
  // A flag on the command line wins over both variables of the environment.
  const flagged = values.postgres !== undefined || values.redis !== undefined;
  const postgres = flagged ? values.postgres : process.env.HOOKGUARD_DATABASE_URL;
  const redis = flagged ? values.redis : process.env.HOOKGUARD_REDIS_URL;
  const problem =
    values.postgres !== undefined && values.redis !== undefined
      ? 'error: --redis and --postgres name two inboxes: give the one this command is for'
      : inboxProblem(values, verb, id, postgres === undefined && redis === undefined);
  const target = problem ?? (postgres !== undefined ? postgresTarget(postgres) : redisTarget(redis!));
  if (typeof target === 'string') {
    print(target);
    return 2;
  }
  const opened: { inbox?: OpenInbox } = {};
  try {
    const { code, lines, warnings } = await bounded(
      (async () => runVerb(await openInbox(target, values.queue, opened), verb!, id, values, target))(),
      COMMAND_DEADLINE_MS,
      verb === 'retry'
        ? `stopped after ${COMMAND_DEADLINE_MS / 1000} s, not done: the jobs queued again so far stay queued; run it again for the rest`
        : `gave up after ${COMMAND_DEADLINE_MS / 1000} s: no answer`,
    );
    // Printed only once the whole command is done: a late answer cannot follow the deadline's line.
    for (const line of lines) print(line);
    for (const line of warnings) warn(line);
    return code;
  } catch (err) {
    print(`error: ${explain(target, err)}`);
    return 1;
  } finally {
    if (opened.inbox !== undefined) await settleWithin(opened.inbox.close(), 1000);
  }
}

/** The verb's work. Where it found nothing, and the queue holds nothing, the queues that do are named. */
async function runVerb(
  inbox: OpenInbox,
  verb: string,
  id: string | undefined,
  values: Values,
  target: Target,
): Promise<Outcome> {
  const queue = cell(values.queue, 100);
  const empty = async (outcome: Outcome, stats?: InboxStats): Promise<Outcome> => {
    if (totalJobs(stats ?? (await inbox.stats())) > 0) return outcome;
    return {
      ...outcome,
      lines: [...outcome.lines, elsewhere(values.queue, await otherQueues(inbox, values.queue), target)],
    };
  };
  if (verb === 'stats') {
    const stats = await inbox.stats();
    const health = judgeInbox(stats, {
      maxOldestWaitingMs: Number(values['warn-after']) * 1000,
      maxFailed: Number(values['max-failed']),
    });
    // An unhealthy queue is a failed check (exit 1), as a refused delivery is for `send`: a cron job or a
    // monitor acts on the code; the verdict line says which problems, each WARNING what to do about it.
    const outcome = {
      code: health.ok ? 0 : 1,
      lines: [statsLine(stats), verdictLine(health)],
      warnings: health.problems.map(({ message }) => `WARNING: ${message}`),
    };
    return empty(outcome, stats);
  }
  if (verb === 'failed') {
    const jobs = await listFailed(inbox, Number(values.limit));
    if (jobs.length > 0) return { code: 0, lines: jobs.map(jobLine), warnings: [] };
    return empty({ code: 0, lines: [`no failed jobs in queue ${queue}`], warnings: [] });
  }
  if (values.all) {
    const retried = await inbox.retryAll();
    const outcome = {
      code: 0,
      lines: [`${count(retried, 'failed job')} of queue ${queue} queued again`],
      warnings: [],
    };
    return retried === 0 ? empty(outcome) : outcome;
  }
  if (await inbox.retry(id!)) return { code: 0, lines: [`${cell(id, 100)} queued again`], warnings: [] };
  return empty({ code: 1, lines: [`${cell(id, 100)} is not a failed job of queue ${queue}`], warnings: [] });
}

/** The other queues of the same server (BullMQ) or schema (pg-boss) that hold jobs. */
function otherQueues(inbox: OpenInbox, queueName: string): Promise<OtherQueues> {
  // The CLI's pg-boss runs in pg-boss's default schema (a URL cannot name another).
  return 'queue' in inbox
    ? otherBullMQQueues(inbox.queue, OTHER_QUEUES_SHOWN)
    : otherPgBossQueues(inbox.boss, 'pgboss', queueName, OTHER_QUEUES_SHOWN);
}

/** One line: the asked-for queue is empty, and which queues hold jobs instead (names escaped, list bounded). */
function elsewhere(queueName: string, others: OtherQueues, target: Target): string {
  const where =
    target.engine === 'Redis' ? `this Redis (${target.where})` : `this database (${target.where})`;
  const queue = cell(queueName, 100);
  if (others.queues.length === 0) {
    return `queue ${queue} holds no jobs, nor does any other queue on ${where}: is this the inbox's ${target.engine === 'Redis' ? 'server and database number' : 'database'}?`;
  }
  const named = others.queues.map(
    ({ name, jobs, failed }) =>
      `${cell(name, 60)} (${count(jobs, 'job')}${failed > 0 ? `, ${failed} failed` : ''})`,
  );
  return `queue ${queue} holds no jobs, but other queues on ${where} do: ${named.join(', ')}${others.more ? ' and more' : ''}; pass --queue <name>`;
}

/** `queue hookguard: 3 waiting, 0 active, 1 delayed, 2 failed, 120 completed; oldest waiting 4 min 12 s`. */
function statsLine(stats: InboxStats): string {
  const counts = (['waiting', 'active', 'delayed', 'failed', 'completed'] as const)
    .map((state) => `${stats[state]} ${state}`)
    .join(', ');
  const oldest =
    stats.oldestWaitingMs === undefined ? 'none waiting' : `oldest waiting ${age(stats.oldestWaitingMs)}`;
  return `queue ${cell(stats.queueName, 100)}: ${counts}; ${oldest}${stats.paused ? '; paused' : ''}`;
}

/** `health: ok`, or `health: unhealthy (WAITING_TOO_LONG, DEAD_LETTERS)`: the codes a script greps for. */
function verdictLine(health: InboxHealthUp): string {
  return health.ok
    ? 'health: ok'
    : `health: unhealthy (${health.problems.map(({ code }) => code).join(', ')})`;
}

/** `1 job`, `3 jobs`. */
const count = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;

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
 * One line per job: id, provider and event, dedup key (what the job is about: `stripe:evt_…`,
 * `chatwoot:1:message_created:42`), attempts, when, error. The error (a handler's message, which can quote
 * a customer), the event name, the key and the id come from outside: each is escaped and bounded, so none
 * can forge a row or drive the terminal.
 */
function jobLine(job: FailedInboxJob): string {
  const attempts = typeof job.attempts === 'number' && Number.isFinite(job.attempts) ? job.attempts : '?';
  return [
    cell(job.id, 100),
    `${cell(job.provider, 40)} ${cell(job.event, 80)}`,
    cell(job.key, 120),
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
function payloadOf(
  provider: SendProvider,
  file: string | undefined,
  event: string | undefined,
  warn: (line: string) => void,
): string | object {
  if (file !== undefined) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      return `error: cannot read --file ${cell(file, 200)} (${typeof code === 'string' ? code : 'unreadable'}): give the path of a JSON payload.`;
    }
    try {
      JSON.parse(text);
    } catch {
      return `error: --file ${cell(file, 200)} is not JSON; webhook payloads are JSON objects.`;
    }
    return text;
  }
  if (provider === 'chatwoot') {
    // Chatwoot sends a short, closed list of events, and chatwootEvent builds every one: any other name
    // is a mistake.
    const name = event ?? 'message_created';
    if (!CHATWOOT_EVENT_NAMES.includes(name as ChatwootEventName)) {
      return `error: unknown Chatwoot event "${cell(name, 60)}"; use one of: ${CHATWOOT_EVENT_NAMES.join(', ')}.`;
    }
    return chatwootEvent(name as ChatwootEventName);
  }
  const type = event ?? 'checkout.session.completed';
  if (!/^[a-z0-9_]+(\.[a-z0-9_]+)+$/.test(type)) {
    return `error: "${cell(type, 60)}" is not a Stripe event type (like checkout.session.completed or invoice.paid).`;
  }
  const warning = stripeTypeWarning(type);
  if (warning !== undefined) warn(warning);
  return stripeEvent(type as 'checkout.session.completed');
}

/**
 * Stripe has hundreds of event types and adds new ones, so a type is never refused (a list here would go
 * stale); but one whose object stripeEvent builds no full `data.object` for is said so, which also
 * catches a misspelt object (`invoce.paid`).
 */
function stripeTypeWarning(type: string): string | undefined {
  const object = type.slice(0, type.lastIndexOf('.'));
  if (Object.hasOwn(STRIPE_OBJECTS, object)) return undefined;
  const known = Object.keys(STRIPE_OBJECTS).join(', ');
  return `warning: sending "${cell(type, 60)}" with a data.object that holds only its id and object: hookguard builds full objects for ${known} events. Check the spelling, or pass --file with a payload of your own.`;
}

/** Why a POST got no answer, in a line that names the address and the likely fix. */
function unreachable(plan: SendPlan, err: unknown): string {
  const cause = (err as { cause?: { code?: unknown; address?: unknown; port?: unknown } }).cause;
  const code = typeof cause?.code === 'string' ? cause.code : undefined;
  const where = cell(urlOf(plan.url)?.host, 100);
  if (field(err, 'name') === 'TimeoutError') {
    const wait = PROVIDER_WAIT[plan.provider];
    const late = plan.timeoutMs >= wait.ms ? `; that is ${wait.late}; ${INBOX_FIX}` : '';
    return `no answer from ${where} within ${duration(plan.timeoutMs)} (--timeout): the server is stuck, or its handler is slow${late}.`;
  }
  if (code === 'ECONNREFUSED')
    return `connection refused by ${where} (ECONNREFUSED): is the server running on that port?`;
  if (code === 'ENOTFOUND') return `cannot resolve ${where} (ENOTFOUND): check the host name.`;
  const reason = code ?? (cause as { message?: unknown } | undefined)?.message;
  return `${cell(typeof reason === 'string' ? reason : err instanceof Error ? err.message : String(err), 200)} while posting to ${where}.`;
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
