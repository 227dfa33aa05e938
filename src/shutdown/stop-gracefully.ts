import type { Logger } from '../pipeline/types.js';
import { within } from './within.js';

// A deploy stops the process: what already arrived must still be answered, and what the handlers hold must
// be finished or enqueued, or Chatwoot hands the conversation to a human (it retries neither a refused
// connection nor a request cut off). One call for any Node server (Express's and Koa's `listen()`,
// `http.createServer`) and for a Fastify app: optionally keep serving while the readiness check already says
// 503 (a load balancer's grace), stop taking connections, answer the requests in flight, close idle
// keep-alive connections as they go idle, then close hookguard's handlers, inboxes and stores, within a bound.

/** What is used of a Node `http.Server` (Express's and Koa's `listen()` return one). */
export interface StoppableServer {
  close(callback?: (err?: Error) => void): unknown;
  closeIdleConnections?(): void;
  closeAllConnections?(): void;
}

/**
 * What is used of a Fastify app. Its own `close()` answers 503 to requests that arrive on kept-alive
 * connections while it closes, and Chatwoot hands those conversations to a human: so the app's server is
 * drained first, and `close()` (its onClose hooks) runs after, when nothing can arrive any more.
 */
export interface StoppableApp {
  readonly server: StoppableServer;
  close(): unknown;
}

/** Anything closed once the server has drained: a hookguard handler, an inbox, a store. */
export interface Closeable {
  close(...args: never[]): unknown;
}

/** Options for {@link stopGracefully}. */
export interface GracefulStopOptions {
  /**
   * Closed in order once the server answered what was in flight: your hookguard handlers first (they wait
   * for their running handlers and settle their claims), then inboxes and stores.
   */
  close?: readonly Closeable[];
  /**
   * The whole stop after `shutdownDelayMs`, at most; default 10 s. What is still open then is cut
   * (`closeAllConnections`).
   */
  timeoutMs?: number;
  /**
   * How long to go on serving as usual once the stop began, while `createHealthCheck`'s answer is
   * already 503 `stopping`, so that a load balancer polling it sends the next requests elsewhere before this
   * server refuses connections; default 0. Behind Kubernetes, a few seconds (the endpoint removal's delay);
   * behind PM2's cluster mode or a proxy that tries the next server on a refused connection, 0.
   */
  shutdownDelayMs?: number;
  /** Signals that start the stop and then end the process (exit code 0); default SIGTERM and SIGINT; `false`: none. */
  signals?: readonly string[] | false;
  /** Default: warnings and errors on the console; `false` silences. */
  logger?: Logger | false;
}

/** A stop that can also be started by hand; `stopping` says whether it has begun (for a readiness check). */
export interface GracefulStop {
  (): Promise<void>;
  readonly stopping: boolean;
}

/** How often idle keep-alive connections are closed while requests are still being answered. */
const IDLE_SWEEP_MS = 50;

/**
 * Stops `server` gracefully on SIGTERM / SIGINT (then exits 0), or when the returned function is called:
 * after `shutdownDelayMs`, no new connections, every request already received is answered, keep-alive
 * connections are closed as soon as they are idle, then each of `options.close` is closed; all within
 * `timeoutMs`. Pass a Node server (what Express's and Koa's `listen()` return) or a Fastify app itself.
 *
 * @example
 * ```ts
 * import express from 'express';
 * import { stopGracefully } from 'hookguard/shutdown';
 * import { chatwootWebhook } from 'hookguard/express';
 * const cw = chatwootWebhook({ secret: process.env.CW_HMAC_SECRET, on: {} });
 * const app = express();
 * app.post('/cw', cw);
 * stopGracefully(app.listen(3000), { close: [cw] });
 * ```
 *
 * @example
 * ```ts
 * import Fastify from 'fastify';
 * import { stopGracefully } from 'hookguard/shutdown';
 * import { chatwootWebhook } from 'hookguard/fastify';
 * const cw = chatwootWebhook({ path: '/cw', secret: process.env.CW_HMAC_SECRET, on: {} });
 * const app = Fastify();
 * await app.register(cw);
 * await app.listen({ port: 3000 });
 * stopGracefully(app, { close: [cw] }); // not app.close() on SIGTERM: it answers 503 while closing
 * ```
 */
export function stopGracefully(
  server: StoppableServer | StoppableApp,
  options: GracefulStopOptions = {},
): GracefulStop {
  const timeoutMs = positive(options.timeoutMs) ?? 10_000;
  const delayMs = positive(options.shutdownDelayMs) ?? 0;
  const log = loggerOf(options.logger);
  // A Fastify app: drain its server, then close the app (its hooks) before the rest.
  const [http, closeables] = isApp(server)
    ? [server.server, [server, ...(options.close ?? [])]]
    : [server, options.close ?? []];
  let stopped: Promise<void> | undefined;
  const stop = () => (stopped ??= sleep(delayMs).then(() => drain(http, closeables, timeoutMs, log)));
  const signals = options.signals === false ? [] : (options.signals ?? ['SIGTERM', 'SIGINT']);
  const proc = (globalThis as { process?: NodeProcessLike }).process;
  for (const signal of signals) {
    proc?.once(signal, () => {
      void stop().finally(() => proc.exit(0));
    });
  }
  return Object.defineProperty(stop, 'stopping', { get: () => stopped !== undefined }) as GracefulStop;
}

function isApp(server: StoppableServer | StoppableApp): server is StoppableApp {
  const inner = (server as Partial<StoppableApp>).server;
  return typeof inner === 'object' && inner !== null && typeof inner.close === 'function';
}

function positive(value: number | undefined): number | undefined {
  return typeof value === 'number' && value > 0 ? value : undefined;
}

const sleep = (ms: number) =>
  ms > 0 ? new Promise<void>((resolve) => setTimeout(resolve, ms)) : Promise.resolve();

interface NodeProcessLike {
  once(signal: string, listener: () => void): unknown;
  exit(code: number): never;
}

async function drain(
  server: StoppableServer,
  closeables: readonly Closeable[],
  timeoutMs: number,
  log: Pick<Logger, 'warn' | 'error'>,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  // Node closes the connections idle at close(); those still answering go idle later, one by one.
  const sweep = setInterval(() => server.closeIdleConnections?.(), IDLE_SWEEP_MS);
  server.closeIdleConnections?.();
  try {
    if ((await within(closed, timeoutMs)) === 'late') {
      log.warn({ timeoutMs }, 'stop: requests still unanswered at the deadline; their connections are cut');
      server.closeAllConnections?.();
    }
  } finally {
    clearInterval(sweep);
  }
  for (const closeable of closeables) {
    const left = Math.max(0, deadline - performance.now());
    let failure: unknown;
    const closing = Promise.resolve()
      .then(() => closeable.close())
      .catch((err: unknown) => {
        failure = err ?? new Error('close failed');
      });
    if ((await within(closing, left)) === 'late') {
      log.warn({ timeoutMs }, 'stop: a close did not finish within the bound; going on');
    } else if (failure !== undefined) {
      log.error({ err: failure instanceof Error ? failure.name : 'Error' }, 'stop: a close failed; going on');
    }
  }
}

/** The user's logger, else one console line per warning or error (these lines carry no payload), or none. */
function loggerOf(logger: Logger | false | undefined): Pick<Logger, 'warn' | 'error'> {
  if (logger === false) return { warn() {}, error() {} };
  if (logger !== undefined) return logger;
  const line = (obj: Record<string, unknown>, msg?: string) =>
    `${msg ?? ''}${Object.entries(obj)
      .map(([name, value]) => ` ${name}=${String(value)}`)
      .join('')}`;
  return {
    warn: (obj, msg) => console.warn(`hookguard warn: ${line(obj, msg)}`),
    error: (obj, msg) => console.error(`hookguard error: ${line(obj, msg)}`),
  };
}
