import type { IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import { bodyTooLarge, bodyUnavailable, clientBodyFault, readTimedOut } from '../errors/body-errors.js';
import type { WebhookError } from '../errors/webhook-error.js';
import type { RawBody } from '../types/common.js';
import { readSingleHeader } from '../util/headers.js';

/**
 * Bytes a body parser kept for us: `express.raw()` leaves a Buffer in `req.body`, a `verify` callback can
 * keep `req.rawBody`, `@koa/bodyparser` keeps `ctx.request.rawBody` (a string), koa-body with
 * `includeUnparsed` keeps `body[Symbol.for('unparsedBody')]`.
 */
export function keptBody(...candidates: unknown[]): RawBody | undefined {
  for (const value of candidates) {
    if (typeof value === 'string' || value instanceof Uint8Array || value instanceof ArrayBuffer)
      return value;
  }
  return undefined;
}

/** The unparsed body koa-body keeps under `includeUnparsed: true`. */
export const UNPARSED_BODY = Symbol.for('unparsedBody');

/**
 * Reads a Node request stream, refusing it as soon as it passes `maxBytes` (and before reading when
 * Content-Length already says so). When the stream was consumed by a body parser that kept nothing, it
 * fails at once with `fix` in the message: waiting on a consumed stream hangs forever
 * (octokit/webhooks.js#1081).
 */
export function readNodeBody(
  req: IncomingMessage | Readable,
  maxBytes: number,
  timeoutMs: number,
  fix: string,
): Promise<Buffer> {
  if (req.readableEnded || req.destroyed) {
    return Promise.reject(
      bodyUnavailable(
        `The request body was already read by a body parser, so its raw bytes are gone. ${fix}`,
      ),
    );
  }
  const declared = 'headers' in req ? Number(readSingleHeader(req.headers, 'content-length')) : Number.NaN;
  if (Number.isFinite(declared) && declared > maxBytes) return Promise.reject(bodyTooLarge(maxBytes));

  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    // A sender that trickles bytes (slowloris) is cut off instead of holding the socket and memory.
    const timer = setTimeout(() => fail(readTimedOut(timeoutMs)), timeoutMs);
    const cleanup = () => {
      clearTimeout(timer);
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
    };
    const fail = (err: WebhookError) => {
      cleanup();
      // Stop pulling bytes we will not use; Node discards the rest when the response ends.
      req.pause();
      reject(err);
    };
    const onData = (chunk: Buffer | string) => {
      const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      size += buf.byteLength;
      if (size > maxBytes) return fail(bodyTooLarge(maxBytes));
      chunks.push(buf);
    };
    const onEnd = () => {
      cleanup();
      resolve(Buffer.concat(chunks, size));
    };
    const onError = (err: unknown) =>
      fail(clientBodyFault('The request stream failed before the body was complete.', err));
    const onClose = () => {
      if (!req.readableEnded) fail(clientBodyFault('The client went away before the body was complete.'));
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onClose);
  });
}

/** Writes a pipeline answer with Node's own response API (works under Express 4 and 5 alike). */
export function writeNodeResponse(
  res: {
    headersSent: boolean;
    statusCode: number;
    setHeader(name: string, value: string): unknown;
    end(body: string): unknown;
  },
  answer: { status: number; headers: Record<string, string>; body: string },
): void {
  if (res.headersSent) return;
  res.statusCode = answer.status;
  for (const [name, value] of Object.entries(answer.headers)) res.setHeader(name, value);
  res.setHeader('content-length', String(Buffer.byteLength(answer.body)));
  res.end(answer.body);
}

/**
 * After an answer that says `Connection: close` (a body refused as too large or too slow), ends the
 * socket once the answer is flushed: the rest of the body is not read, and a slow sender cannot keep the
 * socket until Node's own request timeout.
 */
export function closeAfterAnswer(
  answer: { headers: Record<string, string> },
  res: { once(event: 'finish', listener: () => void): unknown },
  socket: { destroy(): void } | null | undefined,
): void {
  if (answer.headers.connection !== 'close' || socket == null) return;
  res.once('finish', () => socket.destroy());
}
