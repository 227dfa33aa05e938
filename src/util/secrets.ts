import { WebhookError } from '../errors/webhook-error.js';

// The same notion of "blank" as stripe-node's isBlankWebhookSecret, so both refuse the same secrets.
const BLANK = /^[ \t\r\n\f\v]*$/;

/** The usable secrets, in order, each with its index in the configured list. */
export interface UsableSecret {
  readonly value: string;
  readonly index: number;
}

/** True when `secret` (one or a list) holds at least one non-blank string. */
export function hasUsableSecret(secret: unknown): boolean {
  const list: readonly unknown[] = Array.isArray(secret) ? secret : [secret];
  return list.some((value) => typeof value === 'string' && !BLANK.test(value));
}

/**
 * Normalises `secret: string | string[]` into the non-blank secrets. Throws MISSING_SECRET when none is
 * usable: verification never silently passes without a secret (the seed code did).
 */
export function usableSecrets(secret: unknown, provider: string): UsableSecret[] {
  // One secret is the common case, verified on every request by the standalone verifiers.
  if (typeof secret === 'string' && !BLANK.test(secret)) return [{ value: secret, index: 0 }];
  const list: readonly unknown[] = Array.isArray(secret) ? secret : [secret];
  const usable: UsableSecret[] = [];
  list.forEach((value, index) => {
    if (typeof value === 'string' && !BLANK.test(value)) usable.push({ value, index });
  });
  if (usable.length === 0) {
    throw new WebhookError(
      'MISSING_SECRET',
      `No usable ${provider} webhook secret is configured (got ${describeSecretOption(secret)}). ` +
        'Set it from the provider settings; requests are refused until then.',
    );
  }
  return usable;
}

function describeSecretOption(secret: unknown): string {
  if (secret === undefined) return 'undefined';
  if (secret === null) return 'null';
  if (typeof secret === 'string') return 'a blank string';
  if (Array.isArray(secret)) return `a list of ${secret.length} without a non-blank string`;
  return `a ${typeof secret}`;
}

/** A hint for mismatch messages: stray whitespace in a secret is a classic copy-paste fault. */
export function whitespaceHint(secrets: readonly UsableSecret[]): string {
  const padded = secrets.filter((s) => s.value !== s.value.trim()).map((s) => `#${s.index + 1}`);
  return padded.length === 0
    ? ''
    : ` Secret ${padded.join(', ')} has leading or trailing whitespace: that is usually a copy-paste mistake.`;
}

/**
 * What a configured Stripe secret looks like when it is not an endpoint signing secret: an API key
 * (`sk_`, `rk_`, `pk_`) pasted by mistake, or something without the `whsec_` prefix. Names the secret by its
 * position only, never by its value.
 */
export function stripeSecretHint(secrets: readonly UsableSecret[]): string {
  const hints: string[] = [];
  for (const { value, index } of secrets) {
    const trimmed = value.trim();
    const which = secrets.length === 1 ? 'The secret' : `Secret #${index + 1}`;
    const kind = /^(sk|rk|pk)_(live|test)_/.exec(trimmed);
    if (kind !== null) {
      const name =
        kind[1] === 'pk'
          ? 'a publishable key'
          : kind[1] === 'rk'
            ? 'a restricted API key'
            : 'a secret API key';
      hints.push(
        ` ${which} is ${name} (${kind[1]}_${kind[2]}_…), not the endpoint's signing secret: use the whsec_… secret from the webhook endpoint's page in the Dashboard (or the one \`stripe listen\` prints).`,
      );
    } else if (!trimmed.startsWith('whsec_')) {
      hints.push(
        ` ${which} does not start with whsec_, as every Stripe endpoint signing secret does: copy it from the webhook endpoint's page in the Dashboard (or from \`stripe listen\`).`,
      );
    }
  }
  return hints.join('');
}
