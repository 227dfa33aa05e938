/**
 * The request body exactly as received. A Node `Buffer` is a `Uint8Array`.
 *
 * @example
 * ```ts
 * import type { RawBody } from 'hookguard';
 * const body: RawBody = Buffer.from('{"event":"message_created"}');
 * ```
 */
export type RawBody = string | Uint8Array | ArrayBuffer;

/**
 * Request headers: a Fetch `Headers` object, Node's `IncomingHttpHeaders` or a plain object. Names are
 * matched case-insensitively.
 *
 * @example
 * ```ts
 * import type { HeaderSource } from 'hookguard';
 * const headers: HeaderSource = { 'X-Chatwoot-Delivery': '5b0e…' };
 * ```
 */
export type HeaderSource = Headers | Record<string, string | string[] | undefined>;
