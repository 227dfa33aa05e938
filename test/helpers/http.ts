import { request as httpRequest } from 'node:http';

export interface Answer {
  status: number;
  headers: Headers;
  body: unknown;
}

/** POSTs (or sends `method`) to `url` and reads the JSON answer. */
export async function send(
  url: string,
  init: { body?: string | Buffer; headers?: Record<string, string>; method?: string },
): Promise<Answer> {
  const response = await fetch(url, {
    method: init.method ?? 'POST',
    headers: init.headers ?? {},
    ...(init.body === undefined ? {} : { body: init.body as unknown as BodyInit }),
  });
  const text = await response.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: keep the text so the assertion shows it
  }
  return { status: response.status, headers: response.headers, body };
}

/**
 * Streams `total` bytes in `chunk`-sized pieces with chunked transfer encoding (no Content-Length), and
 * resolves with the status as soon as the server answers, plus how many bytes had been written by then.
 */
export function streamChunked(
  url: string,
  headers: Record<string, string>,
  total: number,
  chunk: number,
): Promise<{ status: number; body: string; bytesWrittenAtAnswer: number }> {
  return new Promise((resolve, reject) => {
    let written = 0;
    let answered = false;
    const req = httpRequest(
      url,
      { method: 'POST', headers: { ...headers, 'transfer-encoding': 'chunked' } },
      (res) => {
        answered = true;
        const bytesWrittenAtAnswer = written;
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, bytesWrittenAtAnswer }));
        res.on('error', reject);
      },
    );
    req.on('error', (err) => {
      // The server may close the socket after answering; that is fine once the answer arrived.
      if (!answered) reject(err);
    });
    const piece = Buffer.alloc(chunk, 0x61);
    const pump = () => {
      if (answered || written >= total) {
        if (!answered) req.end();
        return;
      }
      written += piece.length;
      req.write(piece, () => setTimeout(pump, 1));
    };
    pump();
  });
}

/** Fisher–Yates with a seeded generator, so a failing order can be reproduced. */
export function shuffle<T>(items: T[], seed: number): T[] {
  const out = [...items];
  let state = seed;
  const random = () => (state = (state * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Sends the headers and then one byte every `everyMs`, slowloris-style, for at most `maxMs`. Resolves
 * with the status when the server answers, or 0 when it closed the connection without answering.
 */
export function trickle(
  url: string,
  headers: Record<string, string>,
  everyMs: number,
  maxMs: number,
): Promise<{ status: number; body: string; afterMs: number }> {
  return new Promise((resolve) => {
    const started = Date.now();
    let done = false;
    const finish = (status: number, body: string) => {
      if (done) return;
      done = true;
      clearInterval(timer);
      resolve({ status, body, afterMs: Date.now() - started });
    };
    const req = httpRequest(
      url,
      { method: 'POST', headers: { ...headers, 'content-length': '100000' } },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => finish(res.statusCode ?? 0, body));
      },
    );
    req.on('error', () => finish(0, ''));
    req.on('close', () => setTimeout(() => finish(0, ''), 50));
    req.flushHeaders();
    const timer = setInterval(() => {
      if (Date.now() - started > maxMs) {
        req.destroy();
        return;
      }
      if (!req.destroyed) req.write('a');
    }, everyMs);
  });
}
