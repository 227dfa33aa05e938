import { describe, expect, it } from 'vitest';
import { describeChatwootEvent } from '../../src/index.js';
import { fixture } from '../helpers/assertions.js';

describe('describeChatwootEvent', () => {
  it('summarises a message on one line like the seed bot did', () => {
    const payload = {
      event: 'message_created',
      message_type: 'incoming',
      conversation: { id: 123 },
      content: 'Hello there, I have a question about my invoice',
    };
    expect(describeChatwootEvent(payload)).toBe(
      'message_created | incoming | conv 123 | "Hello there, I have a questio…"',
    );
  });

  it('works on a real-shaped fixture, keeping the emoji whole', () => {
    const payload = JSON.parse(fixture('chatwoot-message-created.json')) as unknown;
    expect(describeChatwootEvent(payload)).toBe(
      'message_created | incoming | conv 57 | "Hi, I would like to book a tr…"',
    );
    const short = { event: 'message_created', message_type: 'incoming', content: 'ok 🙂' };
    expect(describeChatwootEvent(short)).toBe('message_created | incoming | "ok 🙂"');
  });

  it('marks private notes and empty contents', () => {
    expect(
      describeChatwootEvent({
        event: 'message_created',
        message_type: 'outgoing',
        private: true,
        content: null,
        conversation: { id: 5 },
      }),
    ).toBe('message_created | outgoing | private | conv 5 | (no text)');
  });

  it('removes line breaks and control characters, so a message cannot forge log lines', () => {
    const out = describeChatwootEvent({ event: 'message_created', content: 'hi\nERROR fake line\r\u0007' });
    for (const control of ['\n', '\r', '\u0007']) expect(out).not.toContain(control);
    expect(out).toBe('message_created | "hi ERROR fake line"');
  });

  it('summarises conversation and contact events', () => {
    const conversation = JSON.parse(fixture('chatwoot-conversation-created.json')) as unknown;
    expect(describeChatwootEvent(conversation)).toBe('conversation_created | conv 58 | open');
    expect(
      describeChatwootEvent({ event: 'conversation_typing_on', conversation: { id: 9, status: 'open' } }),
    ).toBe('conversation_typing_on | conv 9 | open');
    expect(describeChatwootEvent({ event: 'contact_created', id: 77, name: 'Ana' })).toBe(
      'contact_created | contact 77',
    );
    expect(describeChatwootEvent({ event: 'webwidget_triggered' })).toBe('webwidget_triggered');
  });

  it('never throws, whatever it is given', () => {
    for (const value of [null, undefined, 42, 'message_created', [], {}, { event: 5 }]) {
      expect(describeChatwootEvent(value)).toBe('(not a Chatwoot event)');
    }
    const long = describeChatwootEvent({ event: 'x'.repeat(1000), content: 'y'.repeat(100_000) });
    expect(long.length).toBeLessThan(60);
  });
});
