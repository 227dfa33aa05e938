export { signChatwootPayload, signStripePayload } from './sign.js';
export type { SignChatwootOptions, SignStripeOptions, SignedPayload } from './sign.js';
export { chatwootEvent } from './chatwoot-event.js';
export { stripeEvent } from './stripe-event.js';
export type { DeepPartial } from './deep-merge.js';
export { checkDedupStore } from './check-dedup-store.js';
export type { CheckDedupStoreOptions } from './check-dedup-store.js';
export { createChatwootSender, createStripeSender } from './senders.js';
export type {
  ChatwootSenderOptions,
  ChatwootWebhookKind,
  DeliveryAttempt,
  SimulatedDelivery,
  StripeSenderOptions,
} from './senders.js';
export { createChatwootDouble } from './chatwoot-double.js';
export type {
  ApiRequestRecord,
  ChatwootDouble,
  ChatwootDoubleOptions,
  ConversationStatus,
  DoubleConversation,
  DoubleMessage,
} from './chatwoot-double.js';
