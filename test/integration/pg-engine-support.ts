/**
 * Helpers for the PostgreSQL engine tests (pg-engine-*.test.ts): the real `psql` as a child process,
 * the `pg` driver, and a raw wire client for what no driver sends (pipelines, fast-path calls,
 * malformed messages).
 */
import { connect, type Socket } from 'node:net';
import pg from 'pg';
import { BackendParser, frontend, type BackendMessage, type ErrorResponse } from '../../src/engines/postgres/protocol.js';
import { runClient, type ClientRun } from '../support/client.js';
import type { TestGateway } from '../support/gateway.js';

export { rejection } from '../support/client.js';

/** Runs the real psql (`-X -A -t -v ON_ERROR_STOP=0` unless `args` say otherwise) through the gateway. */
export function psql(gw: TestGateway, token: string, args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<ClientRun> {
  return runClient('psql', ['-X', '-A', '-t', ...args], { ...opts, env: { ...gw.psqlEnv(token), ...opts.env } });
}

/** A connected `pg.Client` through the gateway. */
export async function pgClient(gw: TestGateway, token: string, config: Partial<pg.ClientConfig> = {}): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: gw.pgUrl(token), ...config });
  c.on('error', () => undefined);
  await c.connect();
  return c;
}

export function tcp(port: number, host = '127.0.0.1'): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ port, host, noDelay: true }, () => {
      s.off('error', reject);
      resolve(s);
    });
    s.once('error', reject);
  });
}

/** A bare protocol-3.0 client over a socket: writes frontend messages, reads backend messages. */
export class WireClient {
  readonly parser = new BackendParser();
  readonly #queue: BackendMessage[] = [];
  #waiting: (() => void) | undefined;
  #failure: unknown;
  #closed = false;

  constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      try {
        this.#queue.push(...this.parser.push(chunk));
      } catch (e) {
        this.#failure = e;
      }
      this.#wake();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.#closed = true;
      this.#wake();
    });
  }

  /** Connects and logs in with `token`; throws the FATAL ErrorResponse if refused. */
  static async login(port: number, token: string, params: Record<string, string> = {}): Promise<WireClient> {
    const w = new WireClient(await tcp(port));
    w.write(frontend.startupMessage({ user: 'agent', database: 'pg', ...params }));
    const first = await w.next();
    if (first.name === 'ErrorResponse') throw Object.assign(new Error(first.message), { code: first.code });
    if (first.name !== 'AuthenticationCleartextPassword') throw new Error(`unexpected ${first.name}`);
    w.write(frontend.password(token));
    const rest = await w.untilReady();
    const err = rest.find((m): m is ErrorResponse => m.name === 'ErrorResponse');
    if (err) throw Object.assign(new Error(err.message), { code: err.code });
    return w;
  }

  get closed(): boolean {
    return this.#closed;
  }

  #wake(): void {
    const w = this.#waiting;
    this.#waiting = undefined;
    w?.();
  }

  write(...bufs: Buffer[]): void {
    this.socket.write(Buffer.concat(bufs));
  }

  async next(timeoutMs = 10_000): Promise<BackendMessage> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = this.#queue.shift();
      if (m) return m;
      if (this.#failure) throw this.#failure as Error;
      if (this.#closed) throw new Error('connection closed');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('timeout waiting for a backend message');
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#waiting = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  }

  /** Messages up to and including the next ReadyForQuery. */
  async untilReady(timeoutMs = 10_000): Promise<BackendMessage[]> {
    const out: BackendMessage[] = [];
    for (;;) {
      const m = await this.next(timeoutMs);
      out.push(m);
      if (m.name === 'ReadyForQuery') return out;
    }
  }

  /** Waits until the gateway closes the connection; the messages received before. */
  async untilClosed(timeoutMs = 10_000): Promise<BackendMessage[]> {
    const out: BackendMessage[] = [];
    for (;;) {
      try {
        out.push(await this.next(timeoutMs));
      } catch (e) {
        if (this.#closed) return out;
        throw e;
      }
    }
  }

  end(): void {
    if (!this.#closed) this.socket.end(frontend.terminate());
  }
}

/** Simple-protocol query on a WireClient: the messages up to ReadyForQuery. */
export async function simpleQuery(w: WireClient, sql: string): Promise<BackendMessage[]> {
  w.write(frontend.query(sql));
  return w.untilReady();
}

/** Message names, for compact assertions. */
export function names(msgs: readonly BackendMessage[]): string[] {
  return msgs.map((m) => m.name);
}

/** The status byte of the (last) ReadyForQuery in `msgs`. */
export function rfqStatus(msgs: readonly BackendMessage[]): string | undefined {
  const last = msgs.at(-1);
  return last?.name === 'ReadyForQuery' ? last.status : undefined;
}

/** The first ErrorResponse in `msgs`. */
export function errorOf(msgs: readonly BackendMessage[]): ErrorResponse | undefined {
  return msgs.find((m): m is ErrorResponse => m.name === 'ErrorResponse');
}

/** Polls `f` until it returns a truthy value or `timeoutMs` passes. */
export async function eventually<T>(f: () => Promise<T> | T, timeoutMs = 5000, what = 'condition'): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
