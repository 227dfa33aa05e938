// A small client of Chatwoot's Application API: what an agent bot calls. Fetch-based, no dependency, so it
// runs wherever the core does. Facts it relies on (research/chatwoot-api.md, from Chatwoot's source): the
// token goes in `api_access_token`; conversation ids in URLs are the account's display ids (the `id` a
// webhook's `conversation` carries); errors are `{"error": "..."}` (`{"errors": [...]}` without a token);
// Rack::Attack's 429 is plain text with no Retry-After.
import { field } from '../util/values.js';

/** What went wrong with a call, named by its fix. */
export type ChatwootApiErrorCode =
  /** 401: the token is unknown, or the bot is not linked to the account. */
  | 'CHATWOOT_UNAUTHORIZED'
  /** 401 "not authorized for bots": this Chatwoot does not let agent bots call the endpoint. */
  | 'CHATWOOT_NOT_FOR_BOTS'
  /** 404: no such account, or no such conversation in it (ids are display ids). */
  | 'CHATWOOT_NOT_FOUND'
  /** 4xx other than those (422: Chatwoot refused the content, or the 200-per-minute flood limit). */
  | 'CHATWOOT_REJECTED'
  /** 429, 5xx, a timeout or no connection, after the retries. */
  | 'CHATWOOT_UNAVAILABLE';

const BRAND = Symbol.for('hookguard.ChatwootApiError');

/** A failed call. Its message says what to fix; it never holds the token or the content sent. */
export class ChatwootApiError extends Error {
  readonly [BRAND] = true;
  constructor(
    readonly code: ChatwootApiErrorCode,
    /** The HTTP status, or undefined when no answer came. */
    readonly status: number | undefined,
    message: string,
    /**
     * The request may have been carried out although no answer said so (a timeout, a 5xx, a connection
     * lost after the request was sent). Posting it again could post twice.
     */
    readonly ambiguous = false,
  ) {
    super(message);
    this.name = 'ChatwootApiError';
  }
}

/** Works across copies of hookguard (ESM and CJS): checks a brand, not `instanceof`. */
export function isChatwootApiError(value: unknown): value is ChatwootApiError {
  return typeof value === 'object' && value !== null && (value as { [BRAND]?: unknown })[BRAND] === true;
}

/** Options for {@link createChatwootClient}. */
export interface ChatwootClientOptions {
  /** Where Chatwoot runs: `https://app.chatwoot.com`, or your own installation's address. */
  url: string;
  /** The agent bot's access token (or a user's: a user token may also list messages). */
  token: string;
  /** Tries per call on 429, 5xx and lost connections (idempotent calls only, see `postMessage`); default 3. */
  attempts?: number;
  /** The first wait between tries; doubled each time, with up to 25 % added at random. Default 500 ms. */
  retryDelayMs?: number;
  /** Each try's time limit; default 10 s. */
  timeoutMs?: number;
  /** Another fetch (tests, proxies); default `globalThis.fetch`. */
  fetch?: typeof fetch;
}

/** A message as Chatwoot's create answers it (`messages/create.json.jbuilder`). */
export interface ChatwootMessage {
  id: number;
  content: string | null;
  /** An integer here: 0 incoming, 1 outgoing, 2 activity, 3 template (webhooks send the name). */
  message_type: number;
  private: boolean;
  content_attributes?: Record<string, unknown>;
  conversation_id: number;
  created_at: number;
  [field: string]: unknown;
}

/** What to post. */
export interface PostMessage {
  content: string;
  /** A private note, seen by agents only. Default false. */
  private?: boolean;
  /** Kept with the message and sent back in its `message_created` webhook. */
  contentAttributes?: Record<string, unknown> | undefined;
}

export type ChatwootStatus = 'open' | 'resolved' | 'pending' | 'snoozed';

/** A conversation, by its account and its display id (`event.account.id`, `event.conversation.id`). */
export interface ConversationRef {
  accountId: number | string;
  conversationId: number | string;
}

/** The calls an agent bot makes. */
export interface ChatwootClient {
  /**
   * Posts a message. Tried again only where Chatwoot cannot have stored it (a 429 from its rate limiter, a
   * refused connection): after a timeout or a 5xx it may have, and the error says `ambiguous`.
   */
  postMessage(to: ConversationRef, message: PostMessage): Promise<ChatwootMessage>;
  /** `toggle_typing_status`: the "typing…" indicator the contact sees. */
  setTyping(to: ConversationRef, on: boolean): Promise<void>;
  /** `toggle_status`; `open` from `pending` hands the conversation to a human. Resolves with the status now. */
  setStatus(to: ConversationRef, status: ChatwootStatus): Promise<ChatwootStatus>;
  /** Replaces the conversation's labels (Chatwoot keeps exactly these); resolves with them. */
  setLabels(to: ConversationRef, labels: readonly string[]): Promise<string[]>;
  /** Replaces the conversation's custom attributes; resolves with them. */
  setCustomAttributes(
    to: ConversationRef,
    attributes: Record<string, unknown>,
  ): Promise<Record<string, unknown>>;
  /**
   * The conversation's status and who has it (`GET` the conversation; bots may, on newer Chatwoot only:
   * older ones answer `CHATWOOT_NOT_FOR_BOTS`). `assigneeType` is `'user'` for a human agent.
   */
  getConversation(
    to: ConversationRef,
  ): Promise<{ status: ChatwootStatus; assigneeType: 'user' | 'agent_bot' | undefined }>;
  /** The latest 20 messages, or those after a message id (at most 100). Needs a user token: bots may not list. */
  listMessages(to: ConversationRef, options?: { after?: number }): Promise<ChatwootMessage[]>;
}

interface Call {
  what: string;
  method: 'GET' | 'POST';
  path: string;
  body?: unknown;
  /** May a try be made again after an answer that does not prove nothing happened (5xx, timeout)? */
  idempotent: boolean;
}

/**
 * A client of Chatwoot's Application API for an agent bot.
 *
 * @example
 * ```ts
 * import { createChatwootClient } from 'hookguard/chatwoot';
 * const chatwoot = createChatwootClient({ url: 'https://app.chatwoot.com', token: process.env.CHATWOOT_BOT_TOKEN! });
 * await chatwoot.postMessage({ accountId: 1, conversationId: 42 }, { content: 'Hello!' });
 * ```
 */
export function createChatwootClient(options: ChatwootClientOptions): ChatwootClient {
  const send = sender(options);
  /** A call on the conversation's path (`suffix` after it); every call but a post may be tried again. */
  const call = (to: ConversationRef, what: string, method: Call['method'], suffix: string, body?: unknown) =>
    send({
      what,
      method,
      path: `/api/v1/accounts/${segment(to.accountId, 'accountId')}/conversations/${segment(to.conversationId, 'conversationId')}${suffix}`,
      body,
      idempotent: suffix !== '/messages' || method === 'GET',
    });
  return {
    async postMessage(to, message) {
      const body = {
        content: message.content,
        message_type: 'outgoing',
        private: message.private === true,
        ...(message.contentAttributes && { content_attributes: message.contentAttributes }),
      };
      return (await call(to, 'post a message', 'POST', '/messages', body)) as ChatwootMessage;
    },
    async setTyping(to, on) {
      await call(to, 'set typing', 'POST', '/toggle_typing_status', { typing_status: on ? 'on' : 'off' });
    },
    async setStatus(to, status) {
      const answer = await call(to, 'set the status', 'POST', '/toggle_status', { status });
      const current = field(field(answer, 'payload'), 'current_status');
      return (typeof current === 'string' ? current : status) as ChatwootStatus;
    },
    async setLabels(to, labels) {
      const payload = field(await call(to, 'set labels', 'POST', '/labels', { labels }), 'payload');
      return Array.isArray(payload) ? (payload as string[]) : [...labels];
    },
    async setCustomAttributes(to, attributes) {
      const body = { custom_attributes: attributes };
      const kept = field(
        await call(to, 'set custom attributes', 'POST', '/custom_attributes', body),
        'custom_attributes',
      );
      return typeof kept === 'object' && kept !== null
        ? (kept as Record<string, unknown>)
        : { ...attributes };
    },
    async getConversation(to) {
      const answer = await call(to, 'read the conversation', 'GET', '');
      const meta = field(answer, 'meta');
      const kind = field(meta, 'assignee_type') ?? field(field(meta, 'assignee'), 'type');
      const human = kind === 'User' || kind === 'user';
      const bot = kind === 'AgentBot' || kind === 'agent_bot';
      const assigneeType = human ? 'user' : bot ? 'agent_bot' : undefined;
      return { status: field(answer, 'status') as ChatwootStatus, assigneeType };
    },
    async listMessages(to, listing) {
      const query = listing?.after === undefined ? '' : `?after=${Number(listing.after)}`;
      const payload = field(await call(to, 'list messages', 'GET', `/messages${query}`), 'payload');
      return Array.isArray(payload) ? (payload as ChatwootMessage[]) : [];
    },
  };
}

/** One call with its tries: the answer's JSON (undefined for an empty body), or a ChatwootApiError. */
function sender(options: ChatwootClientOptions) {
  const url = String(options.url ?? '').replace(/\/+$/, '');
  if (!/^https?:\/\/[^/]/.test(url)) {
    throw new TypeError(
      'createChatwootClient: `url` must be where Chatwoot runs, e.g. https://app.chatwoot.com',
    );
  }
  if (typeof options.token !== 'string' || !/^[\x21-\x7e]+$/.test(options.token)) {
    throw new TypeError(
      "createChatwootClient: `token` is missing, or holds a character a header cannot carry (a space, a newline, a non-ASCII character: copied with the token?): use the agent bot's access token (Chatwoot: Settings → Bots, or the access_token of POST /api/v1/accounts/{id}/agent_bots).",
    );
  }
  const attempts = Math.max(1, Math.floor(options.attempts ?? 3));
  const delayMs = Math.max(0, options.retryDelayMs ?? 500);
  const timeoutMs = Math.max(1, options.timeoutMs ?? 10_000);
  const doFetch = options.fetch ?? globalThis.fetch;
  return async (call: Call): Promise<unknown> => {
    for (let attempt = 1; ; attempt++) {
      const result = await once(doFetch, url, options.token, call, timeoutMs);
      if (!(result instanceof ChatwootApiError)) return result;
      const again = result.code === 'CHATWOOT_UNAVAILABLE' && (call.idempotent || !result.ambiguous);
      if (!again || attempt >= attempts) throw result;
      const wait = delayMs * 2 ** (attempt - 1);
      await new Promise((resolve) => setTimeout(resolve, wait + Math.random() * wait * 0.25));
    }
  };
}

async function once(
  doFetch: typeof fetch,
  url: string,
  token: string,
  call: Call,
  timeoutMs: number,
): Promise<unknown> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  let res: Response;
  try {
    res = await doFetch(url + call.path, {
      method: call.method,
      headers: { api_access_token: token, accept: 'application/json', 'content-type': 'application/json' },
      body: call.body === undefined ? null : JSON.stringify(call.body),
      signal: controller.signal,
    });
  } catch (err) {
    clearTimeout(timer);
    return unreachable(call, err, controller.signal.aborted, timeoutMs);
  }
  try {
    const text = await res.text();
    if (res.ok) return text === '' ? undefined : parse(text);
    return refusal(call, res.status, text);
  } catch (err) {
    return unreachable(call, err, controller.signal.aborted, timeoutMs);
  } finally {
    clearTimeout(timer);
  }
}

/** No answer: a refused connection sent nothing; a timeout or a broken answer may have been carried out. */
function unreachable(call: Call, err: unknown, timedOut: boolean, timeoutMs: number): ChatwootApiError {
  const code = (err as { cause?: { code?: unknown } })?.cause?.code;
  const refused = code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EAI_AGAIN';
  const why = timedOut
    ? `no answer within ${timeoutMs} ms`
    : refused
      ? `could not connect (${String(code)})`
      : 'the connection failed';
  return new ChatwootApiError(
    'CHATWOOT_UNAVAILABLE',
    undefined,
    `Chatwoot API: ${call.what}: ${why}; check the url, and that Chatwoot is up.`,
    !refused,
  );
}

/** An error answer, named by its fix. Chatwoot's own error text is kept (it names no content or token). */
function refusal(call: Call, status: number, text: string): ChatwootApiError {
  const said = errorText(text);
  const quoted = said === undefined ? '' : ` ("${said}")`;
  const prefix = `Chatwoot API: ${call.what} answered ${status}${quoted}`;
  if (status === 401 && said !== undefined && /not authorized for bots/i.test(said)) {
    return new ChatwootApiError(
      'CHATWOOT_NOT_FOR_BOTS',
      status,
      `${prefix}: this Chatwoot version does not let agent bots call ${call.method} …${call.path.replace(/^\/api\/v1\/accounts\/[^/]+/, '')}; upgrade Chatwoot, or leave this call out.`,
    );
  }
  if (status === 401) {
    return new ChatwootApiError(
      'CHATWOOT_UNAUTHORIZED',
      status,
      `${prefix}: check the access token (the agent bot's, from Chatwoot's Settings → Bots), and that the bot is connected to an inbox of this account.`,
    );
  }
  if (status === 404) {
    return new ChatwootApiError(
      'CHATWOOT_NOT_FOUND',
      status,
      `${prefix}: no such account or conversation at this url; conversation ids are the display ids the webhook sends (conversation.id), and the account is account.id.`,
    );
  }
  if (status === 429 || status >= 500) {
    return new ChatwootApiError(
      'CHATWOOT_UNAVAILABLE',
      status,
      `${prefix}: tried again with backoff.`,
      status >= 500,
    );
  }
  return new ChatwootApiError(
    'CHATWOOT_REJECTED',
    status,
    `${prefix}: Chatwoot refused the request as sent.`,
  );
}

/** `error`, `message` or `errors[0]` of a JSON error body, at most 200 characters. */
function errorText(text: string): string | undefined {
  const body = parse(text);
  const said = field(body, 'error') ?? field(body, 'message') ?? field(field(body, 'errors'), '0');
  return typeof said === 'string' ? said.slice(0, 200) : undefined;
}

function parse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** An id for a URL: digits only (display ids and account ids are integers). */
function segment(value: number | string, name: string): string {
  const text = String(value);
  if (!/^\d{1,18}$/.test(text)) {
    throw new TypeError(
      `Chatwoot API: ${name} must be an integer id (the webhook's account.id / conversation.id).`,
    );
  }
  return text;
}
