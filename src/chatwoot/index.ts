export { createChatwootClient, ChatwootApiError, isChatwootApiError } from './client.js';
export type {
  ChatwootApiErrorCode,
  ChatwootClient,
  ChatwootClientOptions,
  ChatwootMessage,
  ChatwootStatus,
  ConversationRef,
  PostMessage,
} from './client.js';
export { chatwootBot } from './bot.js';
export type {
  ChatwootBot,
  ChatwootBotContext,
  ChatwootBotHandlers,
  ChatwootBotOptions,
  ChatwootBotWebhookOptions,
} from './bot.js';
export { REPLY_MARK } from './conversation.js';
export type { ChatwootConversation, ReplyResult } from './conversation.js';
