import { bodyTooLarge, bodyUnavailable, clientBodyFault, readTimedOut } from '../errors/body-errors.js';
import { isWebhookError } from '../errors/webhook-error.js';

/**
 * Reads a Fetch `Request` body, refusing it as soon as it passes `maxBytes` (and before reading when
 * Content-Length already says so), or when it has not all arrived within `timeoutMs`.
 */
export async function readWebBody(
  request: Request,
  maxBytes: number,
  timeoutMs: number,
): Promise<Uint8Array> {
  if (request.bodyUsed) {
    throw bodyUnavailable(
      'The request body was already read (request.json() or request.text() ran first). Pass the untouched Request.',
    );
  }
  const declared = Number(request.headers.get('content-length'));
  if (Number.isFinite(declared) && declared > maxBytes) throw bodyTooLarge(maxBytes);
  if (request.body === null) return new Uint8Array(0);
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  // A sender that trickles bytes (slowloris) is cut off instead of holding the connection and memory.
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(readTimedOut(timeoutMs)), timeoutMs);
  });
  try {
    for (;;) {
      const { done, value } = await Promise.race([reader.read(), deadline]);
      if (done) break;
      size += value.byteLength;
      if (size > maxBytes) throw bodyTooLarge(maxBytes);
      chunks.push(value);
    }
  } catch (err) {
    await reader.cancel().catch(() => undefined);
    // Our own refusals pass through; a stream that failed means the client went away mid-body.
    throw isWebhookError(err)
      ? err
      : clientBodyFault('The client went away before the body was complete.', err);
  } finally {
    clearTimeout(timer);
  }
  return concat(chunks, size);
}

function concat(chunks: readonly Uint8Array[], size: number): Uint8Array {
  if (chunks.length === 1) return chunks[0]!;
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return bytes;
}
