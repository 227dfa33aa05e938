/**
 * The request body exactly as received. A Node `Buffer` is a `Uint8Array`.
 */
export type RawBody = string | Uint8Array | ArrayBuffer;

/**
 * Request headers: a Fetch `Headers` object, Node's `IncomingHttpHeaders` or a plain object. Names are
 * matched case-insensitively.
 */
export type HeaderSource = Headers | Record<string, string | string[] | undefined>;
