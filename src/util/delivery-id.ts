import { readSingleHeader } from './headers.js';

const DELIVERY_HEADER = 'x-chatwoot-delivery';
/** Chatwoot sends a UUID (36 characters); anything far longer is not one of its delivery ids. */
const MAX_DELIVERY_ID_LENGTH = 256;

/**
 * `X-Chatwoot-Delivery` when it is one plausible value, else undefined. It is not covered by the signature,
 * so it may label logs but is never trusted on its own.
 */
export function readDeliveryId(headers: unknown): string | undefined {
  const value = readSingleHeader(headers, DELIVERY_HEADER);
  return typeof value === 'string' && value.length > 0 && value.length <= MAX_DELIVERY_ID_LENGTH
    ? value
    : undefined;
}
