import { field, idOf } from '../util/values.js';

import type { InboxJob } from '../pipeline/enqueue-stage.js';

// The default ordering keys of the durable inbox (`ordered: true`): events with one key run one at a time,
// in the order the web side accepted them. Built from the signed body only, like the dedup keys. They live
// with the engines, not in the core: only an ordered inbox needs them.

/**
 * The conversation of a Chatwoot event: `chatwoot:inbox:{inbox id}:conversation:{id}`. A conversation's
 * `id` is a per-account display number, and conversation payloads often carry no account, but every
 * payload of a conversation names its inbox (a global id, and an inbox belongs to one account): message
 * events in `conversation.inbox_id` (or `inbox.id`), conversation events in `inbox_id`. Events of no
 * conversation (contacts, inboxes) have none.
 */
export function chatwootOrderKey(event: unknown): string | undefined {
  const conversation = chatwootConversationOf(event);
  const id = idOf(field(conversation, 'id'));
  if (id === undefined) return undefined;
  const inbox = idOf(field(conversation, 'inbox_id')) ?? idOf(field(field(event, 'inbox'), 'id'));
  if (inbox !== undefined) return `chatwoot:inbox:${inbox}:conversation:${id}`;
  const account = idOf(field(field(event, 'account'), 'id'));
  return account === undefined ? undefined : `chatwoot:account:${account}:conversation:${id}`;
}

/** The conversation data of a Chatwoot event: conversation events are it, message events carry it. */
export function chatwootConversationOf(event: unknown): unknown {
  const name = field(event, 'event');
  return typeof name === 'string' && name.startsWith('conversation_') ? event : field(event, 'conversation');
}

/** The object a Stripe event is about (`data.object.id`): a subscription's events share one key. */
export function stripeOrderKey(event: unknown): string | undefined {
  const id = idOf(field(field(field(event, 'data'), 'object'), 'id'));
  return id === undefined ? undefined : `stripe:${id}`;
}

/**
 * The ordering key a job runs under: the endpoint's own (`orderKey` on the web side's options, computed
 * there; `null` when it turned ordering off or gave none for the event), else the provider's default.
 */
export function orderKeyOf(job: InboxJob): string | undefined {
  const own: unknown = job.orderKey;
  if (own === null) return undefined;
  if (typeof own === 'string' && own !== '' && own.length <= 500) return own;
  if (own !== undefined) {
    // Refused (the write fails, the provider retries) rather than queued out of order.
    throw new TypeError('orderKey must return a string of 1 to 500 characters, or undefined.');
  }
  return job.provider === 'chatwoot' ? chatwootOrderKey(job.event) : stripeOrderKey(job.event);
}
