import { P, syncOnly, andThen, type Maybe } from '../platform/index.js';
import type { HeaderSource } from '../types/common.js';
import { field, idOf } from '../util/values.js';
import { boundedKey } from './bounded-key.js';

/**
 * The dedup key of a Chatwoot delivery, built from the signed body only.
 *
 * - `message_created` keys on the message (`chatwoot:{account}:message_created:{message id}`, id from `id`
 *   or a relay's `message.id`): Chatwoot sometimes emits one message twice with two delivery ids
 *   (chatwoot/chatwoot#11901), and those must collapse.
 * - `conversation_created` keys on the conversation with its account (conversation ids are per account),
 *   or, when no account is sent, on `inbox_id` + `id` (inbox ids are global).
 * - Every other event (`message_updated`, `conversation_updated`, ... legitimately repeat) keys on a
 *   fingerprint of its content: a retry re-sends the same body, a new update has a new body.
 *
 * `X-Chatwoot-Delivery` is not covered by the signature, so it never makes a key: a captured request
 * replayed with any delivery id gets the same key. `headers` is accepted for compatibility and unused.
 * `undefined` only when the payload is not an object.
 *
 * @example
 * ```ts
 * import { chatwootDedupKey } from 'hookguard';
 * chatwootDedupKey({ event: 'message_created', id: 42, account: { id: 1 } }); // 'chatwoot:1:message_created:42'
 * ```
 */
export function chatwootDedupKey(payload: unknown, _headers?: HeaderSource): string | undefined {
  return syncOnly(chatwootKey(payload), 'chatwootDedupKey', 'the pipeline (hookguard/fetch)');
}

/** {@link chatwootDedupKey} on every runtime: a promise where hashing is asynchronous (Web Crypto). */
export function chatwootKey(payload: unknown): Maybe<string | undefined> {
  if (typeof payload !== 'object' || payload === null) return undefined;
  const event = field(payload, 'event');
  if (event === 'message_created') {
    const messageId = idOf(field(payload, 'id')) ?? idOf(field(field(payload, 'message'), 'id'));
    if (messageId !== undefined) {
      // Message ids are global database ids, so an unknown account still gives a sound key.
      const account = accountOf(payload) ?? '_';
      return boundedKey('chatwoot', [account, 'message_created', messageId]);
    }
  } else if (event === 'conversation_created') {
    const key = conversationKey(payload);
    if (key !== undefined) return key;
  }
  return contentKey(payload, event);
}

/** Conversation ids are per-account display numbers: with the account, or with the (global) inbox id. */
function conversationKey(payload: object): Maybe<string> | undefined {
  const conversationId = idOf(field(payload, 'id'));
  if (conversationId === undefined) return undefined;
  const account = accountOf(payload);
  if (account !== undefined) return boundedKey('chatwoot', [account, 'conversation_created', conversationId]);
  const inbox = idOf(field(payload, 'inbox_id'));
  return inbox === undefined
    ? undefined
    : boundedKey('chatwoot', ['inbox', inbox, 'conversation_created', conversationId]);
}

/**
 * A fingerprint of the whole payload. JSON.stringify of a parsed body is deterministic, so a retry or a
 * replay of the same bytes gives the same key.
 */
function contentKey(payload: object, event: unknown): Maybe<string> | undefined {
  let text: string;
  try {
    text = JSON.stringify(payload);
  } catch {
    return undefined; // not from a JSON body (a cycle, a BigInt): nothing stable to key on
  }
  const name = typeof event === 'string' ? event : '_';
  return andThen(P.sha256Base64url(text), (digest) =>
    boundedKey('chatwoot', [accountOf(payload) ?? '_', name, `content-${digest}`]),
  );
}

/**
 * The account of a Chatwoot payload. Message events carry `account`; conversation payloads have none at the
 * top level in many versions (chatwoot/chatwoot#11753), so fall back to `messages[0].account_id`.
 */
function accountOf(payload: unknown): string | number | undefined {
  const message = field(payload, 'message');
  const messages = field(payload, 'messages') ?? field(field(payload, 'conversation'), 'messages');
  const firstMessage = Array.isArray(messages) ? (messages[0] as unknown) : undefined;
  return (
    idOf(field(field(payload, 'account'), 'id')) ??
    idOf(field(payload, 'account_id')) ??
    idOf(field(field(message, 'account'), 'id')) ??
    idOf(field(message, 'account_id')) ??
    idOf(field(firstMessage, 'account_id'))
  );
}
