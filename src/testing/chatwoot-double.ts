import { createServer, STATUS_CODES, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import type {
  ChatwootConversation,
  ChatwootConversationEvent,
  ChatwootConversationMessage,
  ChatwootMessageEvent,
  ChatwootSender,
} from '../types/chatwoot.js';
import { createChatwootSender, type SimulatedDelivery } from './senders.js';
import { railsJson } from './sign.js';

// A Chatwoot for tests: the Application API endpoints an agent bot calls, answered as Chatwoot's own
// controllers answer, and the webhooks Chatwoot sends the bot, sent by the faithful sender. The facts it
// follows are Chatwoot's source as read for research/chatwoot-api.md (cited per section below as "§n").

/** A conversation's status (Chatwoot's `Conversation.statuses` enum: open 0, resolved 1, pending 2, snoozed 3). */
export type ConversationStatus = 'open' | 'resolved' | 'pending' | 'snoozed';

/** One stored message, as the double keeps it. */
export interface DoubleMessage {
  id: number;
  content: string;
  messageType: 'incoming' | 'outgoing' | 'activity' | 'template';
  private: boolean;
  /** Undefined for activity messages, which have no sender. */
  senderType: 'contact' | 'user' | 'agent_bot' | undefined;
  contentAttributes: Record<string, unknown>;
  /** `performance.now()` when stored, in ms: for ordering assertions. */
  createdAt: number;
  /** The conversation's status when this message was stored. */
  statusAtPost: ConversationStatus;
}

/** One conversation's state. */
export interface DoubleConversation {
  /** The account-scoped display id the API's URLs use. */
  id: number;
  inboxId: number;
  status: ConversationStatus;
  assignee: { type: 'user' | 'agent_bot'; id: number; name: string } | undefined;
  messages: DoubleMessage[];
  /** On after a `typing_status: 'on'`, off after an `'off'`. */
  typing: boolean;
  typingEvents: Array<{ status: 'on' | 'off'; at: number }>;
  labels: string[];
  customAttributes: Record<string, unknown>;
}

/** One API request the double served. */
export interface ApiRequestRecord {
  method: string;
  /** The path, without host or query. */
  path: string;
  status: number;
  /** Which token it carried: the bot's, the user's, none, or one the double does not know. */
  token: 'bot' | 'user' | 'none' | 'unknown';
  /** `performance.now()` when the request arrived, in ms. */
  at: number;
}

/** Options for {@link createChatwootDouble}. */
export interface ChatwootDoubleOptions {
  /** Where the bot's webhook listens (the agent bot's `outgoing_url`). */
  webhookUrl: string;
  /** The agent bot's webhook secret (signs deliveries). */
  secret: string;
  /** The agent bot's access token; default `'bot-token'`. */
  botToken?: string;
  /** A user (agent/admin) access token, which may also list messages; default `'user-token'`. */
  userToken?: string;
  /** Default 1. */
  accountId?: number;
  /** Passed to the sender (Chatwoot waits 3 s between attempts); tests compress it. Default 3000. */
  retryDelayMs?: number;
  /** Sender timeout, default 5000. */
  timeoutMs?: number;
  /**
   * Which bot endpoint list: `'newest'` (show, toggle_typing_status, labels allowed for bots) or
   * `'common'` (typing and labels refused 401 for bot tokens). Default `'newest'`.
   */
  botEndpoints?: 'newest' | 'common';
  /**
   * How long Chatwoot takes to send the bot its own messages back (a job on Chatwoot's queue, which lags
   * under load); default 0. `'never'`: they are not sent (lost). To test what a bot does when the echo of
   * a post whose answer was lost comes late, or not at all.
   */
  echoDelayMs?: number | 'never';
}

/** A running Chatwoot double: see {@link createChatwootDouble}. */
export interface ChatwootDouble {
  /** Base URL of the API, e.g. `http://127.0.0.1:43123` (a client uses `${url}/api/v1/accounts/${accountId}/...`). */
  readonly url: string;
  readonly accountId: number;
  /**
   * Creates a conversation (status `'pending'` by default, as with an active bot; display ids 1, 2, ...) and
   * delivers `conversation_created` to the bot unless `{ deliver: false }`. Resolves with the display id and
   * the delivery.
   */
  startConversation(options?: {
    status?: ConversationStatus;
    inboxId?: number;
    deliver?: boolean;
    contact?: { name?: string; email?: string };
  }): Promise<{ id: number; delivery: SimulatedDelivery | undefined }>;
  /**
   * The contact writes a message: stored as incoming and delivered to the bot as `message_created`.
   * Resolves when the delivery ended (after Chatwoot's retries). A failed delivery for a `pending`
   * conversation moves it to `open`, as Chatwoot does, and counts in `handoffs.byFailure`.
   */
  customerSays(
    conversationId: number,
    content: string,
  ): Promise<{ messageId: number; delivery: SimulatedDelivery }>;
  /** Sends an exact copy of a stored message's `message_created` webhook again, with a new delivery id (chatwoot#11901). */
  redeliver(messageId: number): Promise<SimulatedDelivery>;
  /** A human agent takes the conversation: status `open`, a user assignee; the bot gets `conversation_opened` if the status changed. */
  agentTakesOver(conversationId: number, agent?: { id?: number; name?: string }): Promise<void>;
  /** A human agent replies (outgoing, sender type user); delivered to the bot as `message_created`. */
  agentSays(conversationId: number, content: string): Promise<void>;
  /** A snapshot of one conversation's state. */
  conversation(id: number): DoubleConversation;
  /** Snapshots of every conversation. */
  conversations(): DoubleConversation[];
  /** Every API request it served, in the order they were answered. */
  readonly requests: readonly ApiRequestRecord[];
  /**
   * Hand-offs: `byFailure`, conversations moved to open by the failure handling of a delivery; `byBot`, the
   * bot's `toggle_status` to open; `byAgent`, {@link ChatwootDouble.agentTakesOver} calls.
   */
  readonly handoffs: { byFailure: number; byBot: number; byAgent: number };
  /**
   * Makes the next `times` (default 1) API requests whose path matches `path` (any request when omitted)
   * answer `status` (429: text/plain `Retry later\n` as Rack::Attack; others: JSON `{status, error}`),
   * and/or wait `delayMs` first. `applied: true` runs the request's effect and only then fails or delays the
   * answer ("posted, but the answer was lost"); otherwise the wait comes first and a status skips the effect.
   */
  failNext(rule: {
    path?: RegExp;
    status?: number;
    times?: number;
    delayMs?: number;
    applied?: boolean;
  }): void;
  /** Resolves when no webhook delivery is running (echoes and events are sent in the background). */
  settled(): Promise<void>;
  /** Stops the server and waits for running deliveries. */
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------------------
// Decisions as data.

/** What a bot token may call (§1, `BOT_ACCESSIBLE_ENDPOINTS`), as `controller#action`. */
const COMMON_BOT_ENDPOINTS = [
  'conversations#toggle_status',
  'conversations#toggle_priority',
  'conversations#create',
  'conversations#update',
  'conversations#custom_attributes',
  'messages#create',
  'assignments#create',
];
const BOT_ENDPOINTS: Record<'newest' | 'common', ReadonlySet<string>> = {
  common: new Set(COMMON_BOT_ENDPOINTS),
  newest: new Set([
    ...COMMON_BOT_ENDPOINTS,
    'conversations#show',
    'conversations#toggle_typing_status',
    'labels#index',
    'labels#create',
  ]),
};

/** Error bodies (§1, §10: `RequestExceptionHandler`, DeviseTokenAuth). */
const ERRORS = {
  noToken: { errors: ['You need to sign in or sign up before continuing.'] },
  badToken: { error: 'Invalid Access Token' },
  botRefused: { error: 'Access to this endpoint is not authorized for bots' },
  notFound: { error: 'Resource could not be found' },
  incoming: { error: 'Incoming messages are only allowed in Api inboxes' },
  flood: { error: 'Validation failed: Too many messages' },
  tooLong: { error: 'Validation failed: Content is too long (maximum is 150000 characters)' },
} as const;

/** `Message.message_types`: the API answers the int (its index here), webhooks the name (§2, §8). */
const MESSAGE_TYPES = ['incoming', 'outgoing', 'activity', 'template'] as const;
type MessageType = (typeof MESSAGE_TYPES)[number];
const STATUSES: readonly ConversationStatus[] = ['open', 'resolved', 'pending', 'snoozed'];
/** `Message.content_types`: another value is an enum ArgumentError, rescued by the controller as a 422. */
const CONTENT_TYPES = new Set([
  'text', 'input_text', 'input_textarea', 'input_email', 'input_select', 'cards', 'form', 'article',
  'incoming_email', 'input_csat', 'integrations', 'sticker', 'voice_call',
]); // prettier-ignore
/** `CONVERSATION_MESSAGE_PER_MINUTE_LIMIT` (§9) and the content validation (§2). */
const FLOOD_LIMIT = 200;
const FLOOD_WINDOW_MS = 60_000;
const MAX_CONTENT = 150_000;

const ACCOUNT_NAME = 'Test Account';
const BOT: Party = { id: 1, name: 'Test Bot', type: 'agent_bot' };
const AGENT: Party = { id: 1, name: 'Test Agent', type: 'user' };
const INBOX_CHANNEL = 'Channel::WebWidget'; // not an API inbox: the API refuses incoming messages (§2)

// ---------------------------------------------------------------------------------------------------------
// State.

interface Party {
  id: number;
  name: string;
  type: 'contact' | 'user' | 'agent_bot';
  email?: string;
}

interface StoredMessage extends DoubleMessage {
  sender: Party | undefined;
  contentType: string;
  createdAtSeconds: number;
  /** The `message_created` webhook body, for webhook-sendable messages: {@link ChatwootDouble.redeliver} resends it. */
  webhookBody: string | undefined;
}

interface StoredConversation {
  id: number;
  inboxId: number;
  status: ConversationStatus;
  assignee: DoubleConversation['assignee'];
  messages: StoredMessage[];
  typing: boolean;
  typingEvents: DoubleConversation['typingEvents'];
  labels: string[];
  customAttributes: Record<string, unknown>;
  contact: Party;
  createdAtSeconds: number;
  snoozedUntil: number | null;
}

interface FailRule {
  path: RegExp | undefined;
  status: number | undefined;
  times: number;
  delayMs: number;
  applied: boolean;
}

interface State {
  accountId: number;
  botToken: string;
  userToken: string;
  botEndpoints: ReadonlySet<string>;
  conversations: Map<number, StoredConversation>;
  /** Message id → its conversation. */
  messageHomes: Map<number, StoredConversation>;
  nextMessageId: number;
  requests: ApiRequestRecord[];
  handoffs: { byFailure: number; byBot: number; byAgent: number };
  rules: FailRule[];
  running: Set<Promise<unknown>>;
  send: (body: string) => Promise<SimulatedDelivery>;
  echoDelayMs: number | 'never';
}

/** What an endpoint answers. */
interface Answer {
  status: number;
  json?: unknown;
  text?: string;
}

/** What an endpoint handler gets. */
interface Call {
  conversation: StoredConversation;
  body: Record<string, unknown>;
  query: URLSearchParams;
  actor: Party;
}

type Handler = (state: State, call: Call) => Answer;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const seconds = () => Math.floor(Date.now() / 1000);

/**
 * Starts a Chatwoot double on an ephemeral port of 127.0.0.1: an in-process Chatwoot that serves the
 * Application API endpoints an agent bot uses (messages, typing, status, labels, custom attributes,
 * assignments, show, and the user-only message list), keeps each conversation's state, answers as
 * Chatwoot's controllers do (status codes and error bodies included), and sends the bot its webhooks with
 * {@link createChatwootSender} (Chatwoot's retries and failure hand-off included). Test a bot against it
 * and assert on the outcome: replies, typing, hand-offs.
 *
 * @example
 * ```ts
 * import { createChatwootDouble } from 'hookguard/testing';
 * const chatwoot = await createChatwootDouble({ webhookUrl: 'http://127.0.0.1:3000/cw', secret: 'test-secret', retryDelayMs: 10 });
 * const { id } = await chatwoot.startConversation();
 * await chatwoot.customerSays(id, 'Where is my order?');
 * await chatwoot.settled();
 * const replies = chatwoot.conversation(id).messages.filter((m) => m.senderType === 'agent_bot' && !m.private);
 * if (replies.length !== 1 || chatwoot.handoffs.byFailure !== 0) throw new Error('the bot misbehaved');
 * await chatwoot.close();
 * ```
 */
export async function createChatwootDouble(options: ChatwootDoubleOptions): Promise<ChatwootDouble> {
  const sender = createChatwootSender({
    url: options.webhookUrl,
    secret: options.secret,
    kind: 'agent-bot',
    retryDelayMs: options.retryDelayMs ?? 3000,
    timeoutMs: options.timeoutMs ?? 5000,
  });
  const state: State = {
    accountId: options.accountId ?? 1,
    botToken: options.botToken ?? 'bot-token',
    userToken: options.userToken ?? 'user-token',
    botEndpoints: BOT_ENDPOINTS[options.botEndpoints ?? 'newest'],
    conversations: new Map(),
    messageHomes: new Map(),
    nextMessageId: 1,
    requests: [],
    handoffs: { byFailure: 0, byBot: 0, byAgent: 0 },
    rules: [],
    running: new Set(),
    send: (body) => sender.deliver(body),
    echoDelayMs: options.echoDelayMs ?? 0,
  };
  const server = createServer((req, res) => {
    serve(state, req)
      .catch((err: unknown): Answer => ({ status: 500, json: { error: String(err) } }))
      .then(
        (answer) => {
          const type = answer.text !== undefined ? 'text/plain' : 'application/json; charset=utf-8';
          const body = answer.text ?? (answer.json === undefined ? '' : JSON.stringify(answer.json));
          res.writeHead(answer.status, body === '' ? {} : { 'content-type': type }).end(body);
        },
        () => res.destroy(),
      );
  }).listen(0, '127.0.0.1');
  await new Promise<void>((resolve) => server.once('listening', resolve));
  const { port } = server.address() as AddressInfo;
  const close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return doubleApi(state, `http://127.0.0.1:${port}`, close);
}

// ---------------------------------------------------------------------------------------------------------
// The test-side API.

function doubleApi(state: State, url: string, closeServer: () => Promise<void>): ChatwootDouble {
  const settled = async (): Promise<void> => {
    while (state.running.size > 0) await Promise.allSettled([...state.running]);
  };
  return {
    url,
    accountId: state.accountId,
    requests: state.requests,
    handoffs: state.handoffs,
    startConversation: (options = {}) => startConversation(state, options),
    customerSays: async (conversationId, content) => {
      const conversation = find(state, conversationId);
      const message = storeMessage(state, conversation, {
        content,
        messageType: 'incoming',
        sender: conversation.contact,
      });
      return { messageId: message.id, delivery: await deliverMessage(state, conversation, message) };
    },
    redeliver: async (messageId) => {
      const conversation = state.messageHomes.get(messageId);
      const message = conversation?.messages.find((m) => m.id === messageId);
      if (conversation === undefined || message?.webhookBody === undefined) {
        throw new Error(`The Chatwoot double sent no message_created for message ${messageId}.`);
      }
      return track(state, deliverMessageBody(state, conversation, message.webhookBody));
    },
    agentTakesOver: (conversationId, agent = {}) => agentTakesOver(state, conversationId, agent),
    agentSays: async (conversationId, content) => {
      const conversation = find(state, conversationId);
      const agent = conversation.assignee?.type === 'user' ? { ...conversation.assignee } : AGENT;
      const message = storeMessage(state, conversation, { content, messageType: 'outgoing', sender: agent });
      await deliverMessage(state, conversation, message);
    },
    conversation: (id) => snapshot(find(state, id)),
    conversations: () => [...state.conversations.values()].map(snapshot),
    failNext: (rule) => {
      state.rules.push({
        path: rule.path,
        status: rule.status,
        times: rule.times ?? 1,
        delayMs: rule.delayMs ?? 0,
        applied: rule.applied === true,
      });
    },
    settled,
    close: async () => {
      await closeServer();
      await settled();
    },
  };
}

async function startConversation(
  state: State,
  options: Parameters<ChatwootDouble['startConversation']>[0] & object,
): Promise<{ id: number; delivery: SimulatedDelivery | undefined }> {
  const id = state.conversations.size + 1;
  const conversation: StoredConversation = {
    id,
    inboxId: options.inboxId ?? 1,
    // §8: a new conversation in an inbox with an active bot starts pending.
    status: options.status ?? 'pending',
    assignee: undefined,
    messages: [],
    typing: false,
    typingEvents: [],
    labels: [],
    customAttributes: {},
    contact: {
      id,
      name: options.contact?.name ?? `Contact ${id}`,
      email: options.contact?.email ?? `contact${id}@example.com`,
      type: 'contact',
    },
    createdAtSeconds: seconds(),
    snoozedUntil: null,
  };
  state.conversations.set(id, conversation);
  if (options.deliver === false) return { id, delivery: undefined };
  const delivery = await track(
    state,
    state.send(conversationEvent(state, conversation, 'conversation_created')),
  );
  return { id, delivery };
}

async function agentTakesOver(
  state: State,
  conversationId: number,
  agent: { id?: number; name?: string },
): Promise<void> {
  const conversation = find(state, conversationId);
  const user = { type: 'user' as const, id: agent.id ?? AGENT.id, name: agent.name ?? AGENT.name };
  conversation.assignee = user;
  storeActivity(state, conversation, `Assigned to ${user.name}`);
  state.handoffs.byAgent += 1;
  await changeStatus(state, conversation, 'open', user.name);
}

function find(state: State, id: number): StoredConversation {
  const conversation = state.conversations.get(id);
  if (conversation === undefined) throw new Error(`The Chatwoot double has no conversation ${id}.`);
  return conversation;
}

/** A copy of the public state, so later changes do not alter what a test holds. */
function snapshot(conversation: StoredConversation): DoubleConversation {
  return structuredClone({
    id: conversation.id,
    inboxId: conversation.inboxId,
    status: conversation.status,
    assignee: conversation.assignee,
    messages: conversation.messages.map((m): DoubleMessage => ({
      id: m.id,
      content: m.content,
      messageType: m.messageType,
      private: m.private,
      senderType: m.senderType,
      contentAttributes: m.contentAttributes,
      createdAt: m.createdAt,
      statusAtPost: m.statusAtPost,
    })),
    typing: conversation.typing,
    typingEvents: conversation.typingEvents,
    labels: conversation.labels,
    customAttributes: conversation.customAttributes,
  });
}

// ---------------------------------------------------------------------------------------------------------
// The model: messages, status changes, deliveries.

/** A message that breaks a model validation (§2, §9); the API answers it 422. */
class Invalid extends Error {
  constructor(readonly body: { error: string }) {
    super(body.error);
  }
}

interface NewMessage {
  content: string;
  messageType: MessageType;
  sender: Party | undefined;
  private?: boolean;
  contentType?: string;
  contentAttributes?: Record<string, unknown>;
}

/** Stores a message after Chatwoot's validations, and builds its webhook when it is webhook-sendable (§8). */
function storeMessage(state: State, conversation: StoredConversation, input: NewMessage): StoredMessage {
  if (input.content.length > MAX_CONTENT) throw new Invalid(ERRORS.tooLong);
  const now = performance.now();
  const recent = conversation.messages.filter((m) => now - m.createdAt < FLOOD_WINDOW_MS).length;
  if (recent >= FLOOD_LIMIT) throw new Invalid(ERRORS.flood);
  const message: StoredMessage = {
    id: state.nextMessageId++,
    content: input.content,
    messageType: input.messageType,
    private: input.private === true,
    senderType: input.sender?.type,
    contentAttributes: input.contentAttributes ?? {},
    createdAt: now,
    statusAtPost: conversation.status,
    sender: input.sender,
    contentType: input.contentType ?? 'text',
    createdAtSeconds: seconds(),
    webhookBody: undefined,
  };
  conversation.messages.push(message);
  state.messageHomes.set(message.id, conversation);
  // `webhook_sendable?` is `incoming? || outgoing? || template?`: activity messages reach no webhook.
  if (message.messageType !== 'activity') {
    message.webhookBody = railsJson(messageEvent(state, conversation, message));
  }
  return message;
}

/**
 * An activity message. Chatwoot's texts come from its locale files (`conversations.activity.*`), whose
 * exact English was not retrieved: these say the same thing in other words.
 */
function storeActivity(state: State, conversation: StoredConversation, content: string): void {
  try {
    storeMessage(state, conversation, { content, messageType: 'activity', sender: undefined });
  } catch (err) {
    // Chatwoot creates activity messages in a job of their own: one refused by the flood limit is lost,
    // and the change it describes stands.
    if (!(err instanceof Invalid)) throw err;
  }
}

/**
 * Changes the status as `Conversation#save!` does (§5): only a real change stores an activity message and
 * sends the bot `conversation_opened` / `conversation_resolved` (in the background). Resolves when that
 * delivery ended; false when nothing changed.
 */
async function changeStatus(
  state: State,
  conversation: StoredConversation,
  status: ConversationStatus,
  by: string,
  activity = `Status changed to ${status} by ${by}`,
): Promise<boolean> {
  if (conversation.status === status) return false;
  conversation.status = status;
  if (status !== 'snoozed') conversation.snoozedUntil = null;
  storeActivity(state, conversation, activity);
  if (status === 'open' || status === 'resolved') {
    const event = status === 'open' ? 'conversation_opened' : 'conversation_resolved';
    await track(state, state.send(conversationEvent(state, conversation, event)));
  }
  return true;
}

/** Sends a message's `message_created` (its own task: Chatwoot runs one job per webhook, in no set order). */
function deliverMessage(
  state: State,
  conversation: StoredConversation,
  message: StoredMessage,
): Promise<SimulatedDelivery> {
  if (message.webhookBody === undefined) throw new Error('Activity messages are not delivered.');
  return track(state, deliverMessageBody(state, conversation, message.webhookBody));
}

/**
 * One message delivery and Chatwoot's failure handling (§8, `AgentBots::WebhookJob`): when the sender
 * reports a hand-off and the conversation is still pending, it is opened and an activity message says why.
 */
async function deliverMessageBody(
  state: State,
  conversation: StoredConversation,
  body: string,
): Promise<SimulatedDelivery> {
  const delivery = await state.send(body);
  if (delivery.failure === 'handed-off' && conversation.status === 'pending') {
    state.handoffs.byFailure += 1;
    await changeStatus(state, conversation, 'open', BOT.name, 'The bot failed to answer: moved to an agent');
  }
  return delivery;
}

/** Runs `task` as a background delivery that {@link ChatwootDouble.settled} waits for. */
function track<T>(state: State, task: Promise<T>): Promise<T> {
  const running = task.finally(() => state.running.delete(running));
  state.running.add(running);
  return running;
}

// ---------------------------------------------------------------------------------------------------------
// Payloads (the types of src/types/chatwoot.ts).

function partyData(party: Party): ChatwootSender {
  return {
    id: party.id,
    name: party.name,
    ...(party.email !== undefined ? { email: party.email } : {}),
    type: party.type,
  };
}

const SENDER_CLASS = { contact: 'Contact', user: 'User', agent_bot: 'AgentBot' } as const;

/** `Message#push_event_data`: the form inside `conversation.messages[]`, `message_type` an int. */
function messagePushData(
  state: State,
  conversation: StoredConversation,
  message: StoredMessage,
): ChatwootConversationMessage {
  return {
    id: message.id,
    content: message.content,
    account_id: state.accountId,
    inbox_id: conversation.inboxId,
    conversation_id: conversation.id,
    message_type: MESSAGE_TYPES.indexOf(message.messageType),
    created_at: message.createdAtSeconds,
    private: message.private,
    status: 'sent',
    source_id: null,
    content_type: message.contentType,
    content_attributes: message.contentAttributes,
    sender_type: message.sender === undefined ? null : SENDER_CLASS[message.sender.type],
    sender_id: message.sender?.id ?? null,
    processed_message_content: message.content,
    ...(message.sender !== undefined ? { sender: partyData(message.sender) } : {}),
  };
}

/** The conversation's webhook data (event-data presenter, §8): `messages` holds the last chat message. */
function conversationData(state: State, conversation: StoredConversation): ChatwootConversation {
  const chat = conversation.messages.filter((m) => m.messageType !== 'activity' && !m.private);
  const last = chat[chat.length - 1];
  const assignee = conversation.assignee;
  return {
    id: conversation.id,
    inbox_id: conversation.inboxId,
    status: conversation.status,
    channel: INBOX_CHANNEL,
    can_reply: true,
    additional_attributes: {},
    custom_attributes: { ...conversation.customAttributes },
    contact_inbox: {
      contact_id: conversation.contact.id,
      inbox_id: conversation.inboxId,
      source_id: `contact-${conversation.contact.id}`,
    },
    meta: {
      sender: partyData(conversation.contact),
      assignee: assignee === undefined ? null : partyData(assignee),
      assignee_type: assignee === undefined ? null : SENDER_CLASS[assignee.type],
      team: null,
      hmac_verified: false,
    },
    messages: last === undefined ? [] : [messagePushData(state, conversation, last)],
    labels: [...conversation.labels],
    unread_count: 0,
    timestamp: last?.createdAtSeconds ?? conversation.createdAtSeconds,
    created_at: conversation.createdAtSeconds,
    snoozed_until: conversation.snoozedUntil,
    agent_last_seen_at: 0,
    contact_last_seen_at: 0,
  };
}

/** `Message#webhook_data` plus `event` (§8): `message_type` a string, `created_at` a time. */
function messageEvent(
  state: State,
  conversation: StoredConversation,
  message: StoredMessage,
): ChatwootMessageEvent<'message_created'> {
  return {
    event: 'message_created',
    id: message.id,
    content: message.content,
    content_type: message.contentType,
    content_attributes: message.contentAttributes,
    message_type: message.messageType,
    private: message.private,
    created_at: new Date(message.createdAtSeconds * 1000).toISOString(),
    source_id: null,
    additional_attributes: {},
    sender: message.sender === undefined ? null : partyData(message.sender),
    conversation: conversationData(state, conversation),
    account: { id: state.accountId, name: ACCOUNT_NAME },
    inbox: { id: conversation.inboxId, name: `Inbox ${conversation.inboxId}` },
  };
}

/** A conversation event: the conversation's webhook data plus `event` (AgentBotListener, §8). */
function conversationEvent(
  state: State,
  conversation: StoredConversation,
  event: 'conversation_created' | 'conversation_opened' | 'conversation_resolved',
): string {
  const payload: ChatwootConversationEvent = {
    event,
    ...conversationData(state, conversation),
    account: { id: state.accountId, name: ACCOUNT_NAME },
  };
  return railsJson(payload);
}

/** A message as the API answers it (`messages/create.json.jbuilder`, `_message` partial, §2, §3). */
function messageJson(conversation: StoredConversation, message: StoredMessage): Record<string, unknown> {
  return {
    id: message.id,
    content: message.content,
    inbox_id: conversation.inboxId,
    conversation_id: conversation.id,
    message_type: MESSAGE_TYPES.indexOf(message.messageType),
    content_type: message.contentType,
    status: 'sent',
    content_attributes: message.contentAttributes,
    created_at: message.createdAtSeconds,
    private: message.private,
    source_id: null,
    ...(message.sender !== undefined ? { sender: partyData(message.sender) } : {}),
  };
}

// ---------------------------------------------------------------------------------------------------------
// The HTTP side: one request as a row of steps.

const CONVERSATION_PATH = /^\/api\/v1\/accounts\/([^/]+)\/conversations\/([^/]+)(\/[a-z_]+)?\/?$/;

interface Route {
  method: 'GET' | 'POST';
  /** After `/conversations/:id`. */
  suffix: string;
  /** `controller#action`, as BOT_ACCESSIBLE_ENDPOINTS names it. */
  endpoint: string;
  handle: Handler;
}

async function serve(state: State, req: IncomingMessage): Promise<Answer> {
  const at = performance.now();
  const url = new URL(req.url ?? '/', 'http://double.invalid');
  const raw = await readBody(req);
  const method = req.method ?? 'GET';
  const rule = takeRule(state, url.pathname);
  const run = () => route(state, method, url, req.headers, raw);
  let answer: Answer;
  if (rule === undefined) {
    answer = run();
  } else if (rule.applied) {
    answer = run();
    await sleep(rule.delayMs);
    if (rule.status !== undefined) answer = injected(rule.status);
  } else {
    await sleep(rule.delayMs);
    answer = rule.status !== undefined ? injected(rule.status) : run();
  }
  state.requests.push({
    method,
    path: url.pathname,
    status: answer.status,
    token: tokenKind(state, req.headers),
    at,
  });
  return answer;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** The first rule matching `path`, used up once. */
function takeRule(state: State, path: string): FailRule | undefined {
  const rule = state.rules.find((r) => {
    if (r.path === undefined) return true;
    r.path.lastIndex = 0;
    return r.path.test(path);
  });
  if (rule !== undefined && --rule.times <= 0) state.rules.splice(state.rules.indexOf(rule), 1);
  return rule;
}

/** Rack::Attack's default throttle answer (§9), or a Rails production error. */
function injected(status: number): Answer {
  if (status === 429) return { status, text: 'Retry later\n' };
  return { status, json: { status, error: STATUS_CODES[status] ?? 'Error' } };
}

function readToken(headers: IncomingHttpHeaders): string | undefined {
  const header = headers['api_access_token'];
  if (typeof header === 'string') return header;
  const bearer = /^Bearer (.*)$/i.exec(headers.authorization ?? '');
  return bearer?.[1];
}

function tokenKind(state: State, headers: IncomingHttpHeaders): ApiRequestRecord['token'] {
  const token = readToken(headers);
  if (token === undefined) return 'none';
  return token === state.botToken ? 'bot' : token === state.userToken ? 'user' : 'unknown';
}

/**
 * Routing, then the controllers' before_actions in Chatwoot's order (§1): token, bot endpoint list, account,
 * conversation by display id.
 */
function route(state: State, method: string, url: URL, headers: IncomingHttpHeaders, raw: string): Answer {
  const match = CONVERSATION_PATH.exec(url.pathname);
  const found = match && ROUTES.find((r) => r.method === method && r.suffix === (match[3] ?? ''));
  if (!match || !found) return { status: 404, json: { status: 404, error: 'Not Found' } };
  const kind = tokenKind(state, headers);
  if (kind === 'none') return { status: 401, json: ERRORS.noToken };
  if (kind === 'unknown') return { status: 401, json: ERRORS.badToken };
  if (kind === 'bot' && !state.botEndpoints.has(found.endpoint))
    return { status: 401, json: ERRORS.botRefused };
  if (match[1] !== String(state.accountId)) return { status: 404, json: ERRORS.notFound };
  const conversation = /^\d+$/.test(match[2]!) ? state.conversations.get(Number(match[2])) : undefined;
  if (conversation === undefined) return { status: 404, json: ERRORS.notFound };
  const body = parseBody(raw, headers['content-type']);
  if (body === undefined) return { status: 400, json: { status: 400, error: 'Bad Request' } };
  const actor = kind === 'bot' ? BOT : AGENT;
  return found.handle(state, { conversation, body, query: url.searchParams, actor });
}

function parseBody(raw: string, contentType: string | undefined): Record<string, unknown> | undefined {
  if (raw.trim() === '') return {};
  if (contentType?.includes('application/x-www-form-urlencoded')) {
    return Object.fromEntries(new URLSearchParams(raw));
  }
  try {
    const parsed = JSON.parse(raw) as unknown;
    return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)
      ? (parsed as Record<string, unknown>)
      : {};
  } catch {
    return undefined;
  }
}

/** Rails' boolean cast of a parameter. */
const truthy = (value: unknown) => value === true || value === 'true' || value === 1 || value === '1';

// ---------------------------------------------------------------------------------------------------------
// Endpoints.

/** `messages#create` (§2): the builder's parameters; any builder error is a 422 `{error}`. */
const createMessage: Handler = (state, { conversation, body, actor }) => {
  const type =
    enumParam(body.message_type, MESSAGE_TYPES) ?? (body.message_type == null ? 'outgoing' : undefined);
  if (type === undefined) return unprocessable(`'${String(body.message_type)}' is not a valid message_type`);
  if (type === 'incoming') return { status: 422, json: ERRORS.incoming };
  const contentType = body.content_type == null ? 'text' : String(body.content_type);
  if (!CONTENT_TYPES.has(contentType)) return unprocessable(`'${contentType}' is not a valid content_type`);
  let contentAttributes: Record<string, unknown> | undefined;
  try {
    contentAttributes = contentAttributesParam(body.content_attributes);
  } catch (err) {
    return unprocessable((err as Error).message);
  }
  let message: StoredMessage;
  try {
    message = storeMessage(state, conversation, {
      content: body.content == null ? '' : String(body.content),
      messageType: type,
      sender: actor,
      private: truthy(body.private),
      contentType,
      ...(contentAttributes !== undefined ? { contentAttributes } : {}),
    });
  } catch (err) {
    if (err instanceof Invalid) return { status: 422, json: err.body };
    throw err;
  }
  // AgentBotListener sends the bot its own message too (§8), in a job: the answer does not wait for it.
  if (message.webhookBody !== undefined && state.echoDelayMs !== 'never') {
    const delay = state.echoDelayMs;
    const later = sleep(delay).then(() => deliverMessage(state, conversation, message));
    void track(state, later).catch(() => undefined);
  }
  const echo = typeof body.echo_id === 'string' ? { echo_id: body.echo_id } : {};
  const { status: _status, source_id: _source, ...created } = messageJson(conversation, message);
  return { status: 200, json: { ...created, ...echo } };
};

/** An enum parameter by name, or by its integer (Rails enums accept both). */
function enumParam<T extends string>(value: unknown, names: readonly T[]): T | undefined {
  if (typeof value === 'number') return names[value];
  return names.find((name) => name === value);
}

function unprocessable(error: string): Answer {
  return { status: 422, json: { error } };
}

/** A Hash, or a JSON string that is parsed (§2). */
function contentAttributesParam(value: unknown): Record<string, unknown> | undefined {
  const parsed = typeof value === 'string' ? (JSON.parse(value) as unknown) : value;
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return undefined;
  return structuredClone(parsed as Record<string, unknown>);
}

/** `messages#index` (§3): `MessageFinder` paging, ascending; users only. */
const listMessages: Handler = (_state, { conversation, query }) => {
  const before = query.has('before') ? Number(query.get('before')) : undefined;
  const after = query.has('after') ? Number(query.get('after')) : undefined;
  let messages = conversation.messages;
  if (query.has('filter_internal_messages')) {
    messages = messages.filter((m) => !m.private && m.messageType !== 'activity');
  }
  if (after !== undefined && before !== undefined) {
    messages = messages.filter((m) => m.id >= after && m.id < before).slice(0, 1000);
  } else if (after !== undefined) {
    messages = messages.filter((m) => m.id > after).slice(0, 100);
  } else {
    messages = messages.filter((m) => before === undefined || m.id < before).slice(-20);
  }
  const assignee = conversation.assignee;
  const meta = {
    labels: [...conversation.labels],
    additional_attributes: {},
    contact: partyData(conversation.contact),
    ...(assignee !== undefined ? { assignee: partyData(assignee) } : {}),
    agent_last_seen_at: null,
    assignee_last_seen_at: null,
  };
  return { status: 200, json: { meta, payload: messages.map((m) => messageJson(conversation, m)) } };
};

/** `conversations#show` (§3): the conversation with its last message. */
const showConversation: Handler = (state, { conversation }) => {
  const data = conversationData(state, conversation);
  return { status: 200, json: { ...data, account_id: state.accountId, muted: false } };
};

/** `conversations#toggle_typing_status` (§4): `head :ok`; values other than on/off are ignored. */
const toggleTyping: Handler = (_state, { conversation, body }) => {
  const status = body.typing_status;
  if (status === 'on' || status === 'off') {
    conversation.typing = status === 'on';
    conversation.typingEvents.push({ status, at: performance.now() });
  }
  return { status: 200 };
};

/**
 * `conversations#toggle_status` (§5): a bot's pending→open is `bot_handoff!` (`success` null); a status sets
 * it (an unknown one is an unrescued ArgumentError: 500); none toggles open→resolved, else→open.
 */
const toggleStatus: Handler = (state, { conversation, body, actor }) => {
  const wanted: unknown = body.status;
  const before = conversation.status;
  let success: boolean | null = true;
  let next: ConversationStatus;
  if (actor.type === 'agent_bot' && before === 'pending' && wanted === 'open') {
    success = null;
    next = 'open';
  } else if (wanted != null && wanted !== '') {
    const status = enumParam(wanted, STATUSES);
    if (status === undefined) return { status: 500, json: { status: 500, error: 'Internal Server Error' } };
    next = status;
    if (status === 'snoozed' && body.snoozed_until != null)
      conversation.snoozedUntil = Number(body.snoozed_until);
  } else {
    next = before === 'open' ? 'resolved' : 'open';
  }
  void changeStatus(state, conversation, next, actor.name).catch(() => undefined);
  if (actor.type === 'agent_bot' && next === 'open' && before !== 'open') state.handoffs.byBot += 1;
  const snoozedUntil =
    conversation.snoozedUntil === null ? null : new Date(conversation.snoozedUntil * 1000).toISOString();
  return {
    status: 200,
    json: {
      meta: {},
      payload: {
        success,
        conversation_id: conversation.id,
        current_status: conversation.status,
        snoozed_until: snoozedUntil,
      },
    },
  };
};

/** `labels#create` (§6): replaces the whole set. */
const replaceLabels: Handler = (state, { conversation, body, actor }) => {
  const given = Array.isArray(body.labels) ? body.labels.map(String) : [];
  const labels = [...new Set(given)];
  const changed = labels.join('\n') !== conversation.labels.join('\n');
  conversation.labels = labels;
  if (changed)
    storeActivity(state, conversation, `${actor.name} set the labels to ${labels.join(', ') || '(none)'}`);
  return { status: 200, json: { payload: [...labels] } };
};

/** `labels#index` (§6). */
const listLabels: Handler = (_state, { conversation }) => ({
  status: 200,
  json: { payload: [...conversation.labels] },
});

/** `conversations#custom_attributes` (§7): replaces the hash. */
const replaceCustomAttributes: Handler = (_state, { conversation, body }) => {
  const given = body.custom_attributes;
  conversation.customAttributes =
    typeof given === 'object' && given !== null && !Array.isArray(given)
      ? structuredClone(given as Record<string, unknown>)
      : {};
  return { status: 200, json: { custom_attributes: { ...conversation.customAttributes } } };
};

/** `assignments#create`: `assignee_id` assigns that agent (the double knows any id); otherwise `null`. */
const assign: Handler = (state, { conversation, body }) => {
  if (body.assignee_id == null) return { status: 200, json: null };
  const id = Number(body.assignee_id);
  conversation.assignee = { type: 'user', id, name: `Agent ${id}` };
  storeActivity(state, conversation, `Assigned to Agent ${id}`);
  return { status: 200, json: partyData(conversation.assignee) };
};

const ROUTES: readonly Route[] = [
  { method: 'GET', suffix: '', endpoint: 'conversations#show', handle: showConversation },
  { method: 'POST', suffix: '/messages', endpoint: 'messages#create', handle: createMessage },
  { method: 'GET', suffix: '/messages', endpoint: 'messages#index', handle: listMessages },
  {
    method: 'POST',
    suffix: '/toggle_typing_status',
    endpoint: 'conversations#toggle_typing_status',
    handle: toggleTyping,
  },
  { method: 'POST', suffix: '/toggle_status', endpoint: 'conversations#toggle_status', handle: toggleStatus },
  { method: 'GET', suffix: '/labels', endpoint: 'labels#index', handle: listLabels },
  { method: 'POST', suffix: '/labels', endpoint: 'labels#create', handle: replaceLabels },
  {
    method: 'POST',
    suffix: '/custom_attributes',
    endpoint: 'conversations#custom_attributes',
    handle: replaceCustomAttributes,
  },
  { method: 'POST', suffix: '/assignments', endpoint: 'assignments#create', handle: assign },
];
