import { field, idOf } from '../util/values.js';
import { oneLine } from './one-line.js';

const PREVIEW_LENGTH = 30;

/**
 * A one-line, log-safe summary of a Chatwoot payload, e.g.
 * `message_created | incoming | conv 123 | "Hello the…"`: the event, the message type, the conversation and
 * a short preview of the content (grapheme-safe, control characters removed). Never throws.
 *
 * @example
 * ```ts
 * import { describeChatwootEvent } from 'hookguard';
 * const payload = { event: 'message_created', message_type: 'incoming', conversation: { id: 123 }, content: 'Hello there' };
 * console.log(describeChatwootEvent(payload)); // message_created | incoming | conv 123 | "Hello the…"
 * ```
 */
export function describeChatwootEvent(payload: unknown): string {
  const event = field(payload, 'event');
  if (typeof event !== 'string' || event === '') return '(not a Chatwoot event)';
  const parts = [clean(event, 40)];

  if (event.startsWith('message_')) {
    const type = field(payload, 'message_type');
    if (typeof type === 'string') parts.push(clean(type, 20));
    if (field(payload, 'private') === true) parts.push('private');
    pushId(parts, 'conv', field(field(payload, 'conversation'), 'id'));
    const own = field(payload, 'content');
    const content = own === undefined ? field(field(payload, 'message'), 'content') : own;
    if (typeof content === 'string') parts.push(`"${clean(content, PREVIEW_LENGTH)}"`);
    else if (content === null) parts.push('(no text)');
  } else if (event.startsWith('conversation_')) {
    const conversation = field(payload, 'id') === undefined ? field(payload, 'conversation') : payload;
    pushId(parts, 'conv', field(conversation, 'id'));
    const status = field(conversation, 'status');
    if (typeof status === 'string') parts.push(clean(status, 20));
  } else if (event.startsWith('contact_')) {
    pushId(parts, 'contact', field(payload, 'id'));
  }
  return parts.join(' | ');
}

function pushId(parts: string[], label: string, value: unknown): void {
  const id = idOf(value);
  if (id !== undefined) parts.push(`${label} ${clean(String(id), 40)}`);
}

/** Control characters (newlines included) would let a message forge extra log lines. */
const clean = oneLine;
