// A stand-in for a Kubernetes Service (kube-proxy) where no cluster exists: new TCP connections go round
// robin to the backends it believes ready; it learns readiness by polling each backend's GET /ready every
// `pollMs` (as the kubelet's readinessProbe and the endpoint propagation do, with their lag), and a backend
// marked terminating leaves the rotation `lagMs` later. A connection whose backend refuses is reset, as a
// client of a Service sees it: for Chatwoot, a hand-off.
import { createServer, connect, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

interface Backend {
  port: number;
  ready: boolean;
  gone: boolean;
}

export class ServiceProxy {
  private readonly backends: Backend[] = [];
  private next = 0;
  private readonly sockets = new Set<Socket>();
  private readonly poller: ReturnType<typeof setInterval>;

  private constructor(
    private readonly server: Server,
    private readonly lagMs: number,
    pollMs: number,
  ) {
    this.poller = setInterval(() => void this.poll(), pollMs);
  }

  static async create(options: { pollMs: number; lagMs: number }): Promise<ServiceProxy> {
    const routed: { to?: ServiceProxy } = {};
    const server = createServer((socket) => routed.to?.route(socket));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    routed.to = new ServiceProxy(server, options.lagMs, options.pollMs);
    return routed.to;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** A new pod: in the rotation once its readiness answers 200. */
  add(port: number): void {
    this.backends.push({ port, ready: false, gone: false });
  }

  /** Resolves once the backend on `port` is in the rotation. */
  async untilReady(port: number, timeoutMs = 10_000): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (!this.backends.some((b) => b.port === port && b.ready)) {
      if (performance.now() > deadline) throw new Error(`backend ${port} never turned ready`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /** A pod being deleted: out of the rotation after the propagation lag, whatever its readiness says. */
  terminating(port: number): void {
    setTimeout(() => {
      for (const b of this.backends) if (b.port === port) b.gone = true;
    }, this.lagMs);
  }

  async close(): Promise<void> {
    clearInterval(this.poller);
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private route(socket: Socket): void {
    const ready = this.backends.filter((b) => b.ready && !b.gone);
    if (ready.length === 0) return void socket.destroy();
    const backend = ready[this.next++ % ready.length]!;
    const upstream = connect(backend.port, '127.0.0.1');
    this.sockets.add(socket);
    const end = () => {
      socket.destroy();
      upstream.destroy();
      this.sockets.delete(socket);
    };
    socket.pipe(upstream).pipe(socket);
    socket.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  }

  private async poll(): Promise<void> {
    await Promise.all(
      this.backends.map(async (b) => {
        const lag = new Promise((resolve) => setTimeout(resolve, this.lagMs));
        const ok = await fetch(`http://127.0.0.1:${b.port}/ready`, { signal: AbortSignal.timeout(1000) })
          .then((res) => res.ok)
          .catch(() => false);
        await lag; // what the probe saw reaches the Service this much later
        b.ready = ok;
      }),
    );
  }
}
