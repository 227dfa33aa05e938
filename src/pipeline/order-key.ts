import { field, idOf } from '../util/values.js';

// The ordering keys of the durable inbox: events with one key run one at a time, in the order the web side
// accepted them. Built from the signed body only, like the dedup keys.

/** Longest ordering key kept; longer ones (a user's function) are refused, as no provider sends them. */
const MAX_ORDER_KEY_LENGTH = 500;

/**
 * The conversation of a Chatwoot event: `chatwoot:inbox:{inbox id}:conversation:{id}`. A conversation's
 * `id` is a per-account display number, and conversation payloads often carry no account, but every
 * payload of a conversation names its inbox (a global id, and an inbox belongs to one account): message
 * events in `conversation.inbox_id` (or `inbox.id`), conversation events in `inbox_id`. Events of no
 * conversation (contacts, inboxes) have none.
 */
export function chatwootOrderKey(event: unknown): string | undefined {
  const name = field(event, 'event');
  const conversation =
    typeof name === 'string' && name.startsWith('conversation_') ? event : field(event, 'conversation');
  const id = idOf(field(conversation, 'id'));
  if (id === undefined) return undefined;
  const inbox = idOf(field(conversation, 'inbox_id')) ?? idOf(field(field(event, 'inbox'), 'id'));
  if (inbox !== undefined) return `chatwoot:inbox:${inbox}:conversation:${id}`;
  const account = idOf(field(field(event, 'account'), 'id'));
  return account === undefined ? undefined : `chatwoot:account:${account}:conversation:${id}`;
}

/** The object a Stripe event is about (`data.object.id`): a subscription's events share one key. */
export function stripeOrderKey(event: unknown): string | undefined {
  const id = idOf(field(field(field(event, 'data'), 'object'), 'id'));
  return id === undefined ? undefined : `stripe:${id}`;
}

/**
 * The ordering key the options give: the user's function (`false`: none), else the provider's default.
 * Throws what the user's function throws.
 */
export function resolveOrderKey<E>(
  own: false | ((event: E) => string | undefined) | undefined,
  fallback: (event: E) => string | undefined,
): (event: E) => string | undefined {
  if (own === false) return () => undefined;
  const pick = own ?? fallback;
  return (event) => {
    const key: unknown = pick(event);
    if (key === undefined) return undefined;
    if (typeof key !== 'string' || key === '' || key.length > MAX_ORDER_KEY_LENGTH) {
      throw new TypeError(
        `orderKey must return a non-empty string of at most ${MAX_ORDER_KEY_LENGTH} characters, or undefined.`,
      );
    }
    return key;
  };
}
