import { randomInt } from 'node:crypto';
import type {
  ChatwootConversation,
  ChatwootEvent,
  ChatwootEventName,
  ChatwootRef,
  ChatwootSender,
} from '../types/chatwoot.js';
import { deepMerge, type DeepPartial } from './deep-merge.js';

// Ids start at a random offset so payloads from separate test runs (and processes) do not collide
// in a shared dedup store, and count up so two calls in one run never share a message id.
let nextId = randomInt(1_000_000, 900_000_000);
const newId = (): number => nextId++;

const ACCOUNT: ChatwootRef = { id: 1, name: 'Test Account' };
const INBOX: ChatwootRef = { id: 1, name: 'Test Inbox' };
const CONTACT: ChatwootSender = {
  id: 1,
  name: 'Test Contact',
  email: 'contact@example.com',
  type: 'contact',
};

function conversation(accountId: number): ChatwootConversation {
  const id = newId() % 100_000;
  const createdAt = Math.floor(Date.now() / 1000);
  return {
    id,
    inbox_id: 1,
    status: 'open',
    channel: 'Channel::Api',
    can_reply: true,
    additional_attributes: {},
    custom_attributes: {},
    contact_inbox: { contact_id: 1, inbox_id: 1, source_id: 'test-source' },
    meta: { sender: CONTACT, assignee: null, team: null, hmac_verified: false },
    messages: [
      {
        id: newId(),
        content: 'Hello',
        account_id: accountId,
        inbox_id: 1,
        conversation_id: id,
        message_type: 0,
        created_at: createdAt,
        private: false,
        content_type: 'text',
        sender_type: 'Contact',
        sender_id: 1,
      },
    ],
    labels: [],
    unread_count: 1,
    timestamp: createdAt,
    created_at: createdAt,
    agent_last_seen_at: 0,
    contact_last_seen_at: 0,
  };
}

/** `inbox_created` / `inbox_updated`: the inbox's own fields. */
function inbox(name: 'inbox_created' | 'inbox_updated', accountId: number): Record<string, unknown> {
  return {
    event: name,
    id: newId(),
    name: 'Support',
    account_id: accountId,
    channel_id: newId(),
    channel_type: 'Channel::Api',
    greeting_enabled: false,
    enable_auto_assignment: true,
    working_hours_enabled: false,
    timezone: 'UTC',
    created_at: new Date().toISOString(),
    updated_at: new Date().toISOString(),
    ...(name === 'inbox_updated'
      ? { changed_attributes: [{ name: { previous_value: 'Help', current_value: 'Support' } }] }
      : {}),
  };
}

function defaults(name: ChatwootEventName): Record<string, unknown> {
  const accountId = ACCOUNT.id ?? 1;
  switch (name) {
    case 'message_created':
    case 'message_updated':
      return {
        event: name,
        id: newId(),
        content: 'Hello, I need help with my order',
        content_type: 'text',
        content_attributes: {},
        message_type: 'incoming',
        private: false,
        created_at: new Date().toISOString(),
        source_id: null,
        additional_attributes: {},
        sender: CONTACT,
        conversation: conversation(accountId),
        account: ACCOUNT,
        inbox: INBOX,
      };
    case 'conversation_created':
    case 'conversation_opened':
    case 'conversation_resolved':
      return {
        event: name,
        ...conversation(accountId),
        ...(name === 'conversation_resolved' ? { status: 'resolved' } : {}),
      };
    case 'conversation_updated':
    case 'conversation_status_changed':
      return {
        event: name,
        ...conversation(accountId),
        changed_attributes: [{ status: { previous_value: 'pending', current_value: 'open' } }],
      };
    case 'conversation_typing_on':
    case 'conversation_typing_off':
      return { event: name, conversation: conversation(accountId), user: CONTACT, is_private: false };
    case 'contact_created':
    case 'contact_updated':
      return {
        event: name,
        ...CONTACT,
        id: newId(),
        account: ACCOUNT,
        additional_attributes: {},
        custom_attributes: {},
        ...(name === 'contact_updated'
          ? { changed_attributes: [{ name: { previous_value: 'Old Name', current_value: CONTACT.name } }] }
          : {}),
      };
    case 'inbox_created':
    case 'inbox_updated':
      return inbox(name, accountId);
    case 'webwidget_triggered':
      return {
        event: name,
        id: newId(),
        contact: CONTACT,
        inbox: INBOX,
        account: ACCOUNT,
        current_conversation: null,
        source_id: 'test-source',
        event_info: {
          initiated_at: { timestamp: new Date().toString() },
          referer: 'https://example.com/pricing',
          widget_language: null,
          browser_language: 'en',
          browser: { browser_name: 'Chrome', platform_name: 'macOS' },
        },
      };
  }
}

/**
 * A realistic Chatwoot payload for `name` (fresh ids on every call), with `overrides` deep-merged in
 * (objects merged, arrays and scalars replaced).
 *
 * @example
 * ```ts
 * import { chatwootEvent } from 'hookguard/testing';
 * const reply = chatwootEvent('message_created', { message_type: 'outgoing', content: 'Hi!' });
 * ```
 */
export function chatwootEvent<N extends ChatwootEventName>(
  name: N,
  overrides?: DeepPartial<ChatwootEvent<N>>,
): ChatwootEvent<N> {
  if (!CHATWOOT_EVENT_NAMES.includes(name)) {
    throw new TypeError(
      `Unknown Chatwoot event ${JSON.stringify(String(name)).slice(0, 80)}; known: ${CHATWOOT_EVENT_NAMES.join(', ')}.`,
    );
  }
  const event = deepMerge<Record<string, unknown>>(defaults(name), overrides);
  if (name === 'message_created' || name === 'message_updated') carryContent(event, overrides);
  return event as unknown as ChatwootEvent<N>;
}

/**
 * A message event carries its content about three times, as Chatwoot's does: `content`, and the
 * conversation's last message's `content` and `processed_message_content` (what the body limit must allow
 * for). A `conversation.messages` the overrides give is left as given.
 */
function carryContent(event: Record<string, unknown>, overrides: unknown): void {
  const given = (overrides ?? {}) as { conversation?: { messages?: unknown } };
  const conversation = event.conversation as { messages?: Record<string, unknown>[] } | undefined;
  const [last, ...rest] = conversation?.messages ?? [];
  if (given.conversation?.messages !== undefined || conversation === undefined || last === undefined) return;
  const content = event.content;
  conversation.messages = [{ ...last, content, processed_message_content: content }, ...rest];
}

/** Every event name {@link chatwootEvent} can build (every name Chatwoot is known to send). */
export const CHATWOOT_EVENT_NAMES: readonly ChatwootEventName[] = Object.freeze([
  'message_created',
  'message_updated',
  'conversation_created',
  'conversation_updated',
  'conversation_status_changed',
  'conversation_opened',
  'conversation_resolved',
  'conversation_typing_on',
  'conversation_typing_off',
  'contact_created',
  'contact_updated',
  'inbox_created',
  'inbox_updated',
  'webwidget_triggered',
]);
