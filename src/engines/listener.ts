/**
 * Listener plumbing the engines share: binding a server to its address, and for the database
 * engines the plain TCP listener that tracks every connection until it closes.
 */
import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from '../core/log.js';

/**
 * Binds `server` to `host:port` (rejects when it cannot), then logs its errors as
 * `<name> listener error`. Returns the bound address: the real port when port 0 was asked.
 */
export async function bind(server: Server, host: string, port: number, logger: Logger, name: string): Promise<{ host: string; port: number }> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (e) => logger.error({ err: e }, `${name} listener error`));
  const a = server.address();
  return { host, port: typeof a === 'object' && a ? a.port : port };
}

export interface TcpListenerOptions {
  logger: Logger;
  /** The protocol, in log messages. */
  name: string;
  /** Takes over a new connection; what it throws is logged as `unexpected` and ends the connection. */
  startup(socket: Socket): Promise<void>;
  unexpected: string;
  /** Ends the live sessions, on close. */
  endSessions(): void;
}

/**
 * A TCP listener (no Nagle) for a database engine. Every connection is tracked until it closes.
 * `close()` stops accepting, ends the live sessions, destroys the connections left and resolves
 * when the server has closed.
 */
export async function listenTcp(host: string, port: number, o: TcpListenerOptions): Promise<{ address: { host: string; port: number }; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createServer({ noDelay: true }, (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    o.startup(socket).catch((e: unknown) => {
      o.logger.error({ err: e }, o.unexpected);
      socket.destroy();
    });
  });
  const address = await bind(server, host, port, o.logger, o.name);
  return {
    address,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        o.endSessions();
        for (const s of sockets) s.destroy();
      }),
  };
}
