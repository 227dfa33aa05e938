export { WebhookError, isWebhookError, WEBHOOK_ERROR_STATUS } from './errors/webhook-error.js';
export type { WebhookErrorCode } from './errors/webhook-error.js';

export type { RawBody, HeaderSource } from './types/common.js';

export { verifyChatwootSignature, verifyChatwootSignatureAsync } from './verify/verify-chatwoot-signature.js';
export type { ChatwootVerifyOptions, ChatwootVerification } from './verify/verify-chatwoot-signature.js';
export { verifyStripeEvent, verifyStripeEventAsync } from './verify/verify-stripe-event.js';
export { DEFAULT_TOLERANCE_SECONDS } from './verify/verify-options.js';
export type { VerifyOptions } from './verify/verify-options.js';

export { createMemoryDedupStore } from './stores/memory.js';
export type { MemoryDedupStore, MemoryDedupStoreOptions } from './stores/memory.js';
export type { ClaimResult, DedupStore } from './dedup/dedup-store.js';
export { chatwootDedupKey } from './dedup/chatwoot-dedup-key.js';
export { stripeDedupKey } from './dedup/stripe-dedup-key.js';

export { safeTruncate, safeTruncateBytes } from './text/safe-truncate.js';
export type { TruncateOptions } from './text/safe-truncate.js';
export { describeChatwootEvent } from './text/describe-chatwoot-event.js';

export type {
  ChatwootAttachment,
  ChatwootChangedAttributes,
  ChatwootContactEvent,
  ChatwootInboxEvent,
  ChatwootConversation,
  ChatwootConversationEvent,
  ChatwootConversationMessage,
  ChatwootEvent,
  ChatwootEventMap,
  ChatwootEventName,
  ChatwootMessageEvent,
  ChatwootRef,
  ChatwootSender,
  ChatwootTypingEvent,
  ChatwootWebwidgetTriggeredEvent,
} from './types/chatwoot.js';
export type { StripeThinEvent, StripeWebhookEvent } from './types/stripe.js';

export { createChatwootHandler, ignoreNonIncomingMessages } from './pipeline/create-chatwoot-handler.js';
export type { ChatwootHandlers, ChatwootWebhookOptions } from './pipeline/create-chatwoot-handler.js';
export { createStripeHandler } from './pipeline/create-stripe-handler.js';
export type { StripeHandlers, StripeWebhookOptions } from './pipeline/create-stripe-handler.js';
export type {
  BodyReader,
  Logger,
  Provider,
  Staleness,
  WebhookContext,
  WebhookOptions,
  WebhookOutcome,
  WebhookRequest,
  WebhookResponse,
  WebhookResponseCode,
  WebhookHandler,
  WebhookStats,
} from './pipeline/types.js';
export type { WithStats } from './adapters/with-stats.js';
export type {
  Closeable,
  GracefulStop,
  GracefulStopOptions,
  StoppableServer,
} from './shutdown/stop-gracefully.js';
export type {
  InboxMessaging,
  TelemetryOutcome,
  TelemetryRun,
  TelemetryStep,
  WebhookTelemetry,
} from './pipeline/telemetry.js';
export type {
  Inbox,
  InboxContext,
  InboxHandlers,
  InboxJob,
  InboxWorkerOptions,
  WorkerHandlerOptions,
} from './inbox/inbox.js';
