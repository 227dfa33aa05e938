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
  /** Verifies (when `verifies`) and parses; throws WebhookError. */
  read(body: Uint8Array, headers: HeaderSource): { event: E; deliveryId: string | undefined };
  eventName(event: E): string | undefined;
  defaultKey(event: E, headers: HeaderSource): string | undefined;
  /** The handler for this event: its entry in `on`, else `onEvent`, else none (the event is ignored). */
  handlerFor(event: E): EventHandler<E> | undefined;
  ignore(event: E): boolean;
  /** A short, log-safe description of the event (no payload beyond a truncated preview). */
  describe(event: E): string;
}
