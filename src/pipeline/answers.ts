import { WEBHOOK_ERROR_STATUS } from '../errors/webhook-error.js';
import { DEFAULTS } from './defaults.js';
import type { Provider, WebhookOutcome, WebhookResponse, WebhookResponseCode } from './types.js';

/**
 * How a request ended, before it becomes an HTTP answer: one of the successful ends, or the code of the
 * refusal or failure.
 */
export type Verdict =
  | 'processed'
  | 'accepted'
  | 'ignored'
  | 'duplicate'
  /** Written to the durable inbox, which acknowledged it: a worker will process it. */
  | 'queued'
  /** The client's body could not be read (it went away mid-body, or its framing was refused): its fault. */
  | 'unreadable'
  | WebhookResponseCode;

const SUCCESSES: ReadonlySet<Verdict> = new Set([
  'processed',
  'accepted',
  'ignored',
  'duplicate',
  'queued',
  'unreadable',
]);

/** One row of the status table. */
interface AnswerRule {
  readonly result: WebhookOutcome['result'];
  readonly status: number;
  /** The JSON body; error rows name their code. */
  readonly body: Readonly<Record<string, unknown>>;
  /** `Retry-After` in seconds: a number, or `'lease'` for the handler's lease rounded up. */
  readonly retryAfter?: number | 'lease';
  readonly allow?: string;
  /** Answer with `Connection: close`: the adapter ends the socket once the answer is flushed. */
  readonly close?: true;
  /** The code reported to `onOutcome` and named in the body, when it is not the verdict itself. */
  readonly code?: WebhookResponseCode;
}

/** A row of the table, resolved for one handler: the answer to send, built once and shared. */
export interface Answer {
  readonly verdict: Verdict;
  readonly result: WebhookOutcome['result'];
  readonly status: number;
  /** The code reported to `onOutcome` (error rows only). */
  readonly code: WebhookResponseCode | undefined;
  readonly response: WebhookResponse;
}

const errorRule = (code: WebhookResponseCode, status: number): AnswerRule => ({
  result: code === 'IN_FLIGHT' ? 'in-flight' : status >= 500 ? 'failed' : 'rejected',
  status,
  body: { error: { code } },
});

/**
 * The answer to every verdict where both providers are treated alike. Refusal codes answer the status
 * their {@link WebhookError} carries.
 */
const COMMON_RULES: Readonly<Record<Verdict, AnswerRule>> = {
  processed: { result: 'processed', status: 200, body: { ok: true } },
  // A handler still running at ackAfterMs: counted as processed when it ends (see the pipeline).
  accepted: { result: 'processed', status: 202, body: { ok: true, accepted: true } },
  ignored: { result: 'ignored', status: 200, body: { ok: true, ignored: true } },
  duplicate: { result: 'duplicate', status: 200, body: { ok: true, duplicate: true } },
  queued: { result: 'queued', status: 200, body: { ok: true, queued: true } },
  // Nobody may be left to read it, but the outcome is the sender's fault: a rejection, not a failure.
  unreadable: {
    result: 'rejected',
    status: 400,
    body: { error: { code: 'RAW_BODY_UNAVAILABLE' } },
    code: 'RAW_BODY_UNAVAILABLE',
  },
  METHOD_NOT_ALLOWED: { ...errorRule('METHOD_NOT_ALLOWED', 405), allow: 'POST' },
  IN_FLIGHT: { ...errorRule('IN_FLIGHT', 409), retryAfter: 'lease' },
  ...(Object.fromEntries(
    Object.entries(WEBHOOK_ERROR_STATUS).map(([code, status]) => [
      code,
      errorRule(code as WebhookResponseCode, status),
    ]),
  ) as Record<keyof typeof WEBHOOK_ERROR_STATUS, AnswerRule>),
  STORE_UNAVAILABLE: {
    ...errorRule('STORE_UNAVAILABLE', 503),
    retryAfter: DEFAULTS.storeRetryAfterSeconds,
  },
  // The rest of the body may still be on its way (or trickling in): do not keep the socket for it.
  BODY_TOO_LARGE: { ...errorRule('BODY_TOO_LARGE', 413), close: true },
  READ_TIMEOUT: { ...errorRule('READ_TIMEOUT', 408), close: true },
  INBOX_UNAVAILABLE: {
    ...errorRule('INBOX_UNAVAILABLE', 503),
    retryAfter: DEFAULTS.storeRetryAfterSeconds,
  },
};

/**
 * Where a provider's delivery rules need another answer than {@link COMMON_RULES}: one row per verdict,
 * read by the pipeline, never an `if` in the flow. A row exists where the provider's sender would drop,
 * or hand to a human, what the common answer asks it to retry.
 */
const PROVIDER_RULES: Readonly<Record<Provider, Partial<Record<Verdict, AnswerRule>>>> = {
  // Stripe retries every non-2xx with backoff for days: the common answers are right for it.
  stripe: {},
  // Chatwoot retries an agent-bot delivery on 429 and 500 only; any other answer hands a pending
  // conversation to a human (or marks an API-inbox message failed), even when the event is processed.
  chatwoot: {
    // Another delivery of this event is being processed and will answer for it (or fail with a 500,
    // which Chatwoot retries): this copy must not look like a failure.
    IN_FLIGHT: { result: 'in-flight', status: 200, body: { ok: true, inFlight: true } },
    // Our transient fault: 500 is retried, 503 would be dropped.
    STORE_UNAVAILABLE: errorRule('STORE_UNAVAILABLE', 500),
    INBOX_UNAVAILABLE: errorRule('INBOX_UNAVAILABLE', 500),
  },
};

/** How long a provider's sender waits for an answer, where the provider says, and what it does after. */
export interface AnswerDeadline {
  /** The sender gives up on a receiver silent this long. */
  readonly senderWaitsMs: number;
  /** An inline handler running this long is warned about: the answer is about to come too late. */
  readonly warnAfterMs: number;
  /** What the sender does with an answer that came too late, for the warning. */
  readonly thenWhat: string;
}

/** Each provider's {@link AnswerDeadline}; undefined where the provider publishes none. */
export const ANSWER_DEADLINES: Readonly<Record<Provider, AnswerDeadline | undefined>> = {
  // Stripe counts a timeout as a failure but publishes no figure for it.
  stripe: undefined,
  // WEBHOOK_TIMEOUT, 5 s by default, per read; a delivery that times out is not retried, and a pending
  // agent-bot conversation is handed to a human.
  chatwoot: {
    senderWaitsMs: 5000,
    warnAfterMs: 4000,
    thenWhat: 'a delivery that times out is not retried, and a pending bot conversation goes to a human',
  },
};

/** The status table of one provider: the common rows with the provider's own rows over them. */
function rulesFor(provider: Provider): Readonly<Record<Verdict, AnswerRule>> {
  return { ...COMMON_RULES, ...PROVIDER_RULES[provider] };
}

/** Builds every answer of one handler once; requests then share them (they are frozen). */
export function buildAnswers(provider: Provider, leaseMs: number): Readonly<Record<Verdict, Answer>> {
  const rules = rulesFor(provider);
  const answers = {} as Record<Verdict, Answer>;
  for (const verdict of Object.keys(rules) as Verdict[]) {
    const rule = rules[verdict];
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (rule.allow !== undefined) headers.allow = rule.allow;
    if (rule.close === true) headers.connection = 'close';
    if (rule.retryAfter !== undefined) {
      const seconds = rule.retryAfter === 'lease' ? Math.max(1, Math.ceil(leaseMs / 1000)) : rule.retryAfter;
      headers['retry-after'] = String(seconds);
    }
    // Every verdict but the four successful ends is a code, reported even where the answer is a 2xx.
    const code = rule.code ?? (SUCCESSES.has(verdict) ? undefined : (verdict as WebhookResponseCode));
    answers[verdict] = Object.freeze({
      verdict,
      result: rule.result,
      status: rule.status,
      code,
      response: Object.freeze({
        status: rule.status,
        headers: Object.freeze(headers),
        body: JSON.stringify(rule.body),
      }),
    });
  }
  return Object.freeze(answers);
}
