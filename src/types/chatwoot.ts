// Payload types for Chatwoot webhooks, from the samples in chatwoot/docs
// (docs/product/others/webhook-events.md) and the model serialisers. Chatwoot omits or nulls fields
// freely across versions, so nearly everything is optional and nullable: check before you use it.

/**
 * Every webhook event name Chatwoot is known to send.
 */
export type ChatwootEventName =
  | 'message_created'
  | 'message_updated'
  | 'conversation_created'
  | 'conversation_updated'
  | 'conversation_status_changed'
  | 'conversation_opened'
  | 'conversation_resolved'
  | 'conversation_typing_on'
  | 'conversation_typing_off'
  | 'contact_created'
  | 'contact_updated'
  | 'inbox_created'
  | 'inbox_updated'
  | 'webwidget_triggered';

/**
 * `{ id, name }` of an account or inbox.
 */
export interface ChatwootRef {
  id?: number | null;
  name?: string | null;
}

/**
 * Who sent a message: a contact, an agent (`type: "user"`) or a bot (`type: "agent_bot"`). Newer Chatwoot
 * versions omit `type` for contacts, so do not rely on it alone: use `message_type`.
 */
export interface ChatwootSender {
  id?: number | null;
  name?: string | null;
  email?: string | null;
  phone_number?: string | null;
  identifier?: string | null;
  thumbnail?: string | null;
  avatar?: string | null;
  type?: 'contact' | 'user' | 'agent_bot' | (string & {}) | null;
  additional_attributes?: Record<string, unknown> | null;
  custom_attributes?: Record<string, unknown> | null;
}

/**
 * A file attached to a message.
 */
export interface ChatwootAttachment {
  id?: number | null;
  message_id?: number | null;
  file_type?: 'image' | 'audio' | 'video' | 'file' | 'location' | 'fallback' | (string & {}) | null;
  account_id?: number | null;
  extension?: string | null;
  data_url?: string | null;
  thumb_url?: string | null;
  file_size?: number | null;
}

/**
 * A message as it appears inside `conversation.messages[]`: here `message_type` is an **integer**
 * (0 incoming, 1 outgoing, 2 activity, 3 template) and `created_at` is epoch seconds.
 */
export interface ChatwootConversationMessage {
  id?: number | null;
  content?: string | null;
  account_id?: number | null;
  inbox_id?: number | null;
  conversation_id?: number | null;
  message_type?: 0 | 1 | 2 | 3 | (number & {}) | null;
  created_at?: number | null;
  updated_at?: string | number | null;
  private?: boolean | null;
  status?: string | null;
  source_id?: string | null;
  content_type?: string | null;
  content_attributes?: Record<string, unknown> | null;
  sender_type?: string | null;
  sender_id?: number | null;
  sender?: ChatwootSender | null;
  attachments?: ChatwootAttachment[] | null;
  // The message's database attributes, sent in newer versions:
  /** The content after Chatwoot's processing (variables filled in); can be as long as `content`. */
  processed_message_content?: string | null;
  additional_attributes?: Record<string, unknown> | null;
  sentiment?: Record<string, unknown> | null;
  external_source_ids?: Record<string, unknown> | null;
  echo_id?: string | null;
  /** A small copy of the conversation (a few of its fields). */
  conversation?: {
    assignee_id?: number | null;
    unread_count?: number | null;
    last_activity_at?: number | null;
    contact_inbox?: { source_id?: string | null } | null;
    [field: string]: unknown;
  } | null;
}

/**
 * What changed, in `conversation_updated` / `contact_updated`: `[{ "<attr>": { previous_value, current_value } }]`.
 */
export type ChatwootChangedAttributes = Array<
  Record<string, { previous_value?: unknown; current_value?: unknown } | null | undefined>
>;

/**
 * A conversation. `id` is the per-account display number, not a global id: include the account in any key
 * built from it. Many versions send no top-level `account` (chatwoot/chatwoot#11753): use
 * `messages[0].account_id`, or `inbox_id` (global) when `messages` is empty.
 */
export interface ChatwootConversation {
  id?: number | null;
  /** The same display number as `id`, sent by newer versions. */
  display_id?: number | null;
  inbox_id?: number | null;
  /** Sent by newer versions only; older ones have no account anywhere when `messages` is empty. */
  account?: ChatwootRef | null;
  status?: 'open' | 'resolved' | 'pending' | 'snoozed' | (string & {}) | null;
  channel?: string | null;
  can_reply?: boolean | null;
  additional_attributes?: Record<string, unknown> | null;
  custom_attributes?: Record<string, unknown> | null;
  /** Newer versions send the whole contact-inbox record (`id`, `hmac_verified`, `pubsub_token`, ...). */
  contact_inbox?: {
    id?: number | null;
    contact_id?: number | null;
    inbox_id?: number | null;
    source_id?: string | null;
    hmac_verified?: boolean | null;
    created_at?: string | null;
    updated_at?: string | null;
    [field: string]: unknown;
  } | null;
  meta?: {
    sender?: ChatwootSender | null;
    assignee?: ChatwootSender | null;
    /** `"User"` or `"AgentBot"` in newer versions. */
    assignee_type?: string | null;
    team?: { id?: number | null; name?: string | null } | null;
    hmac_verified?: boolean | null;
  } | null;
  messages?: ChatwootConversationMessage[] | null;
  labels?: string[] | null;
  priority?: string | null;
  unread_count?: number | null;
  timestamp?: number | null;
  created_at?: number | string | null;
  /** Epoch seconds as a float in newer versions. */
  updated_at?: number | string | null;
  last_activity_at?: number | string | null;
  agent_last_seen_at?: number | string | null;
  contact_last_seen_at?: number | string | null;
  first_reply_created_at?: number | string | null;
  snoozed_until?: number | string | null;
  waiting_since?: number | string | null;
}

/**
 * `message_created` / `message_updated`: the message's own fields plus `event`, flat. Here
 * `message_type` is a **string**. Only `incoming`, non-`private` messages are user input; a bot that
 * answers through the API receives its own answer back as `outgoing`.
 */
export interface ChatwootMessageEvent<
  N extends 'message_created' | 'message_updated' = 'message_created' | 'message_updated',
> {
  event: N;
  id?: number | null;
  content?: string | null;
  content_type?:
    'text' | 'input_select' | 'cards' | 'form' | 'input_email' | 'input_csat' | (string & {}) | null;
  content_attributes?: Record<string, unknown> | null;
  message_type?: 'incoming' | 'outgoing' | 'template' | (string & {}) | null;
  private?: boolean | null;
  created_at?: string | null;
  source_id?: string | null;
  additional_attributes?: Record<string, unknown> | null;
  sender?: ChatwootSender | null;
  conversation?: ChatwootConversation | null;
  account?: ChatwootRef | null;
  inbox?: ChatwootRef | null;
  attachments?: ChatwootAttachment[] | null;
  /** Set by some relays that wrap the message instead of sending it flat. */
  message?: { id?: number | null; account_id?: number | null; [field: string]: unknown } | null;
  changed_attributes?: ChatwootChangedAttributes | null;
}

/**
 * Conversation events: the conversation object plus `event` (and `changed_attributes` on updates).
 */
export interface ChatwootConversationEvent<
  N extends
    | 'conversation_created'
    | 'conversation_updated'
    | 'conversation_status_changed'
    | 'conversation_opened'
    | 'conversation_resolved' =
    | 'conversation_created'
    | 'conversation_updated'
    | 'conversation_status_changed'
    | 'conversation_opened'
    | 'conversation_resolved',
> extends ChatwootConversation {
  event: N;
  changed_attributes?: ChatwootChangedAttributes | null;
}

/**
 * `conversation_typing_on` / `conversation_typing_off`.
 */
export interface ChatwootTypingEvent<
  N extends 'conversation_typing_on' | 'conversation_typing_off' =
    'conversation_typing_on' | 'conversation_typing_off',
> {
  event: N;
  conversation?: ChatwootConversation | null;
  user?: ChatwootSender | null;
  is_private?: boolean | null;
  account?: ChatwootRef | null;
}

/**
 * `contact_created` / `contact_updated` (account webhooks only; updates carry `changed_attributes`).
 */
export interface ChatwootContactEvent<
  N extends 'contact_created' | 'contact_updated' = 'contact_created' | 'contact_updated',
> extends ChatwootSender {
  event: N;
  account?: ChatwootRef | null;
  changed_attributes?: ChatwootChangedAttributes | null;
}

/**
 * `inbox_created` / `inbox_updated`: the inbox object plus `event` (account webhooks). Fields differ by
 * channel; the common ones are typed, the rest are kept.
 */
export interface ChatwootInboxEvent<
  N extends 'inbox_created' | 'inbox_updated' = 'inbox_created' | 'inbox_updated',
> {
  event: N;
  id?: number | null;
  name?: string | null;
  account_id?: number | null;
  channel_id?: number | null;
  channel_type?: string | null;
  greeting_enabled?: boolean | null;
  greeting_message?: string | null;
  enable_auto_assignment?: boolean | null;
  working_hours_enabled?: boolean | null;
  timezone?: string | null;
  created_at?: string | null;
  updated_at?: string | null;
  account?: ChatwootRef | null;
  changed_attributes?: ChatwootChangedAttributes | null;
  [field: string]: unknown;
}

/**
 * `webwidget_triggered`: the contact-inbox plus `event_info` (the visitor's page, browser, ...).
 */
export interface ChatwootWebwidgetTriggeredEvent {
  event: 'webwidget_triggered';
  id?: number | null;
  contact?: ChatwootSender | null;
  inbox?: ChatwootRef | null;
  account?: ChatwootRef | null;
  current_conversation?: ChatwootConversation | null;
  source_id?: string | null;
  event_info?: {
    initiated_at?: { timestamp?: string | null } | null;
    referer?: string | null;
    widget_language?: string | null;
    browser_language?: string | null;
    browser?: Record<string, unknown> | null;
    [field: string]: unknown;
  } | null;
}

/**
 * Event name → payload type.
 */
export interface ChatwootEventMap {
  message_created: ChatwootMessageEvent<'message_created'>;
  message_updated: ChatwootMessageEvent<'message_updated'>;
  conversation_created: ChatwootConversationEvent<'conversation_created'>;
  conversation_updated: ChatwootConversationEvent<'conversation_updated'>;
  conversation_status_changed: ChatwootConversationEvent<'conversation_status_changed'>;
  conversation_opened: ChatwootConversationEvent<'conversation_opened'>;
  conversation_resolved: ChatwootConversationEvent<'conversation_resolved'>;
  conversation_typing_on: ChatwootTypingEvent<'conversation_typing_on'>;
  conversation_typing_off: ChatwootTypingEvent<'conversation_typing_off'>;
  contact_created: ChatwootContactEvent<'contact_created'>;
  contact_updated: ChatwootContactEvent<'contact_updated'>;
  inbox_created: ChatwootInboxEvent<'inbox_created'>;
  inbox_updated: ChatwootInboxEvent<'inbox_updated'>;
  webwidget_triggered: ChatwootWebwidgetTriggeredEvent;
}

/**
 * The payload of one Chatwoot event, or the union of all when no name is given. Switch on `event` to narrow.
 */
export type ChatwootEvent<N extends ChatwootEventName = ChatwootEventName> = ChatwootEventMap[N];
