import { createServer, connect, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

/**
 * A TCP proxy on a fixed local port in front of a real server, to take a store down and back up:
 * `refuse()` closes the port (connection refused); `stall()` keeps connections open but stops passing
 * bytes on (held back, as a congested or blackholed network does, and delivered on `forward()`);
 * `forward()` passes traffic through.
 */
export class TcpProxy {
  private server: Server | undefined;
  private readonly clients = new Set<Socket>();
  private stalled = false;
  private constructor(
    readonly port: number,
    private readonly target: { host: string; port: number },
  ) {}

  static async create(target: { host: string; port: number }): Promise<TcpProxy> {
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const { port } = probe.address() as AddressInfo;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    return new TcpProxy(port, target);
  }

  async forward(): Promise<void> {
    this.stalled = false;
    for (const socket of this.clients) socket.resume();
    if (this.server === undefined) await this.listen();
  }

  async stall(): Promise<void> {
    this.stalled = true;
    for (const socket of this.clients) socket.pause();
    if (this.server === undefined) await this.listen();
  }

  async refuse(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const socket of this.clients) socket.destroy();
    this.clients.clear();
    if (server !== undefined) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private async listen(): Promise<void> {
    const server = createServer((socket) => {
      this.clients.add(socket);
      const upstream = connect(this.target.port, this.target.host);
      const end = () => {
        socket.destroy();
        upstream.destroy();
        this.clients.delete(socket);
      };
      socket.on('data', (data) => upstream.write(data));
      upstream.on('data', (data) => socket.write(data));
      socket.on('close', end).on('error', end);
      upstream.on('close', end).on('error', end);
      if (this.stalled) socket.pause();
    });
    await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', resolve));
    this.server = server;
  }
}
