import { chatwootKey } from '../dedup/chatwoot-dedup-key.js';
import { isThenable } from '../util/values.js';
import { field } from '../util/values.js';
import { WebhookError } from '../errors/webhook-error.js';
import { describeChatwootEvent } from '../text/describe-chatwoot-event.js';
import type { ChatwootEvent, ChatwootEventName } from '../types/chatwoot.js';
import { parseJsonObject } from '../util/bytes.js';
import { readDeliveryId } from '../util/delivery-id.js';
import { hasUsableSecret } from '../util/secrets.js';
import { checkChatwootSignature, resolveChatwootVerifyOptions } from '../verify/verify-chatwoot-signature.js';
import { createPipeline } from './create-pipeline.js';
import type { EventHandler, ProviderSpec } from './provider-spec.js';
import type { WebhookContext, WebhookHandler, WebhookOptions } from './types.js';

/**
 * One handler per Chatwoot event name, each typed with that event's payload.
 */
export type ChatwootHandlers<R = unknown> = {
  [N in ChatwootEventName]?: (event: ChatwootEvent<N>, ctx: WebhookContext<R>) => unknown;
};

/**
 * Options for {@link createChatwootHandler} and the Chatwoot adapters.
 */
export interface ChatwootWebhookOptions<R = unknown> extends WebhookOptions<ChatwootEvent, R> {
  /** Signature scheme; default `'chatwoot'` (see {@link verifyChatwootSignature}). */
  scheme?: 'chatwoot' | 'legacy-body';
  /** Handlers by event name; events without one go to `onEvent`, or are acknowledged and ignored. */
  on?: ChatwootHandlers<R>;
  /**
   * Events to acknowledge without processing. Default: `message_created` / `message_updated` that are not
   * `incoming` or are `private`, so a bot never answers its own (or an agent's) messages in a loop.
   */
  ignore?: (event: ChatwootEvent) => boolean;
}

/**
 * The default `ignore`: only incoming, public messages are user input; everything else about messages
 * (the bot's own replies coming back as `outgoing`, agents' private notes, templates) is skipped.
 *
 * @example
 * ```ts
 * import { ignoreNonIncomingMessages } from 'hookguard';
 * const ignore = (event: Parameters<typeof ignoreNonIncomingMessages>[0]) =>
 *   ignoreNonIncomingMessages(event) || event.event === 'conversation_typing_on';
 * ```
 */
export function ignoreNonIncomingMessages(event: ChatwootEvent): boolean {
  if (event.event !== 'message_created' && event.event !== 'message_updated') return false;
  // Relays that wrap the message put the fields under `message`.
  const type = field(event, 'message_type') ?? field(field(event, 'message'), 'message_type');
  const isPrivate = field(event, 'private') ?? field(field(event, 'message'), 'private');
  // Inside conversation.messages[] the type is an integer; 0 is incoming.
  const incoming = type === 'incoming' || type === 0;
  return !incoming || isPrivate === true;
}

/**
 * The framework-agnostic Chatwoot pipeline: verify, parse, ignore, dedupe, run your handler, answer.
 * Adapters wrap it; use it directly for a framework hookguard has no adapter for.
 *
 * @example
 * ```ts
 * import { createChatwootHandler } from 'hookguard';
 * const handle = createChatwootHandler({ secret: process.env.CW_HMAC_SECRET, onEvent: (e) => console.log(e.event) });
 * const res = await handle({ method: 'POST', headers: req.headers, body: rawBody });
 * ```
 */
export function createChatwootHandler<R = unknown>(options: ChatwootWebhookOptions<R>): WebhookHandler {
  // The pipeline hands each handler the `req` its request carried: of type R when an adapter built it.
  const own = options as ChatwootWebhookOptions;
  return createPipeline<ChatwootEvent>(own, chatwootSpec(own));
}

/** How the pipeline (and an inbox worker) reads Chatwoot requests and routes their events. */
export function chatwootSpec(options: ChatwootWebhookOptions): ProviderSpec<ChatwootEvent> {
  const ignore = options.ignore ?? ignoreNonIncomingMessages;
  const on = options.on ?? {};
  // Resolved once per handler, not per request; without a usable secret the pipeline refuses every
  // request (or, under allowUnsigned, reads without verifying).
  const verifier = hasUsableSecret(options.secret) ? resolveChatwootVerifyOptions(options) : undefined;
  return {
    provider: 'chatwoot',
    verifies: verifier !== undefined,
    read(body, headers) {
      if (verifier === undefined)
        return { event: parseChatwootBody(body), deliveryId: readDeliveryId(headers) };
      const verified = checkChatwootSignature(body, headers, verifier);
      // No closure on the synchronous (Node) path: this runs once per request.
      if (!isThenable(verified)) return { event: parseChatwootBody(body), deliveryId: verified.deliveryId };
      return verified.then(({ deliveryId }) => ({ event: parseChatwootBody(body), deliveryId }));
    },
    eventName: (event) => event.event,
    defaultKey: (event) => chatwootKey(event),
    handlerFor(event) {
      const specific = Object.hasOwn(on, event.event) ? on[event.event] : undefined;
      return (specific as EventHandler<ChatwootEvent> | undefined) ?? options.onEvent;
    },
    ignore,
    describe: describeChatwootEvent,
  };
}

function parseChatwootBody(body: Uint8Array): ChatwootEvent {
  const event = parseJsonObject(body, 'Chatwoot');
  if (typeof event.event !== 'string') {
    throw new WebhookError('INVALID_PAYLOAD', 'The Chatwoot webhook body has no "event" name.');
  }
  return event as unknown as ChatwootEvent;
}
