import type { HeaderSource } from '../types/common.js';
import { readDeliveryId } from '../util/delivery-id.js';
import { field, idOf } from '../util/values.js';
import { boundedKey } from './bounded-key.js';

/**
 * The dedup key of a Chatwoot delivery.
 *
 * - `message_created` keys on the message (`chatwoot:{account}:message_created:{message id}`, id from `id`
 *   or a relay's `message.id`): Chatwoot sometimes emits one message twice with two delivery ids
 *   (chatwoot/chatwoot#11901), and those must collapse.
 * - `conversation_created` keys on the conversation with its account (conversation ids are per account).
 * - Events that legitimately repeat (`message_updated`, `conversation_updated`, ...) key on
 *   `X-Chatwoot-Delivery`, which Chatwoot reuses for retries of one delivery.
 * - `undefined` when nothing identifies the delivery: process it, do not dedupe.
 *
 * @example
 * ```ts
 * import { chatwootDedupKey } from 'hookguard';
 * chatwootDedupKey({ event: 'message_created', id: 42, account: { id: 1 } }); // 'chatwoot:1:message_created:42'
 * ```
 */
export function chatwootDedupKey(payload: unknown, headers?: HeaderSource): string | undefined {
  const event = field(payload, 'event');
  if (event === 'message_created') {
    const messageId = idOf(field(payload, 'id')) ?? idOf(field(field(payload, 'message'), 'id'));
    if (messageId !== undefined) {
      // Message ids are global database ids, so an unknown account still gives a sound key.
      const account = accountOf(payload) ?? '_';
      return boundedKey('chatwoot', [account, 'message_created', messageId]);
    }
  } else if (event === 'conversation_created') {
    const conversationId = idOf(field(payload, 'id'));
    const account = accountOf(payload);
    // Conversation ids are per-account display numbers: without the account the key would be ambiguous.
    if (conversationId !== undefined && account !== undefined) {
      return boundedKey('chatwoot', [account, 'conversation_created', conversationId]);
    }
  }
  const delivery = readDeliveryId(headers);
  return delivery === undefined ? undefined : boundedKey('chatwoot', ['delivery', delivery]);
}

/**
 * The account of a Chatwoot payload. Message events carry `account`; conversation payloads have none at the
 * top level (chatwoot/chatwoot#11753), so fall back to `messages[0].account_id`.
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
