import type { Maybe } from '../platform/index.js';
import type { HeaderSource } from '../types/common.js';
import type { Provider, WebhookContext } from './types.js';

/** A user's handler for one event. */
export type EventHandler<E> = (event: E, ctx: WebhookContext) => unknown;

/**
 * What a provider plugs into the shared pipeline (see ARCHITECTURE.md, "Adding a provider"). Everything
 * here is about reading the provider's requests; how each outcome is answered lives in the status table
 * (`answers.ts`).
 */
export interface ProviderSpec<E> {
  readonly provider: Provider;
  /**
   * Whether `read` checks signatures (a usable secret was configured). Without it the pipeline refuses
   * every request with MISSING_SECRET, unless `allowUnsigned` is on.
   */
  readonly verifies: boolean;
  /** Verifies (when `verifies`) and parses; throws (or, under Web Crypto, rejects with) a WebhookError. */
  read(body: Uint8Array, headers: HeaderSource): Maybe<{ event: E; deliveryId: string | undefined }>;
  eventName(event: E): string | undefined;
  /** The provider's key; a promise only where hashing is asynchronous (Web Crypto). */
  defaultKey(event: E, headers: HeaderSource): Maybe<string | undefined>;
  /** The handler for this event: its entry in `on`, else `onEvent`, else none (the event is ignored). */
  handlerFor(event: E): EventHandler<E> | undefined;
  ignore(event: E): boolean;
  /** A short, log-safe description of the event (no payload beyond a truncated preview). */
  describe(event: E): string;
}
