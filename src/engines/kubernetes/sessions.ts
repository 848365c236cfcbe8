/**
 * Gatehouse sessions for the Kubernetes engine. kubectl makes many short HTTP requests with the
 * same token, so one session is kept per (token, connection): opened by the first request, reused
 * by the next ones, closed after `idle_timeout` without requests in flight, and ended (every
 * request of it aborted) when the core ends it (token expiry, grant end, revocation, kill).
 */
import { createHash } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import type { Connection, SessionContext } from '../../core/sessions/types.js';
import type { EngineContext } from '../types.js';

interface Entry {
  key: string;
  opening?: Promise<SessionContext>;
  session?: SessionContext;
  inflight: number;
  idle?: NodeJS.Timeout;
  idleMs: number;
  /** Aborted when the session ends: every request of the session listens to it. */
  abort: AbortController;
}

/** One request's hold on a session. */
export interface Lease {
  session: SessionContext;
  /** Aborts when the session ends (with the reason). */
  signal: AbortSignal;
  release(): void;
}

export class KubeSessions {
  readonly #ctx: EngineContext;
  readonly #entries = new Map<string, Entry>();
  #closed = false;

  constructor(ctx: EngineContext) {
    this.#ctx = ctx;
  }

  /** Live sessions held by this cache. */
  get size(): number {
    return this.#entries.size;
  }

  /**
   * The session for `token` on `conn`: the cached one, or a new one (token verified, connect-time
   * checks). Throws what `verifyToken` and `sessions.open` throw.
   */
  async acquire(token: string, conn: Connection, remoteAddr: string | undefined): Promise<Lease> {
    const key = `${createHash('sha256').update(token).digest('base64url')}\n${conn.name}`;
    for (;;) {
      let e = this.#entries.get(key);
      if (e?.session && !e.session.ended.aborted) return this.#lease(e, e.session);
      if (e?.opening) {
        try {
          const s = await e.opening;
          if (!s.ended.aborted) return this.#lease(e, s);
        } catch {
          // the opener reports its own failure; try again as a fresh opener
        }
        continue;
      }
      if (this.#closed) throw new Error('listener closed');
      const idleMs = conn.options.idleTimeoutMs === undefined ? this.#ctx.idleTimeoutMs : Number(conn.options.idleTimeoutMs);
      e = { key, inflight: 0, idleMs, abort: new AbortController() };
      // every request in flight on the session listens to it
      setMaxListeners(0, e.abort.signal);
      const entry = e;
      this.#entries.set(key, entry);
      entry.opening = (async () => {
        const identity = await this.#ctx.verifyToken(token);
        return this.#ctx.sessions.open({ protocol: 'kubernetes', identity, connection: conn, ...(remoteAddr ? { remoteAddr } : {}) });
      })();
      let s: SessionContext;
      try {
        s = await entry.opening;
      } catch (err) {
        if (this.#entries.get(key) === entry) this.#entries.delete(key);
        throw err;
      }
      delete entry.opening;
      entry.session = s;
      this.#ctx.metrics.sessionsTotal.inc({ protocol: 'kubernetes', connection: conn.name });
      this.#ctx.metrics.sessionsActive.inc({ protocol: 'kubernetes' });
      const onEnd = (): void => this.#end(entry, String(s.ended.reason ?? 'session ended'));
      if (s.ended.aborted) onEnd();
      else s.ended.addEventListener('abort', onEnd, { once: true });
      return this.#lease(entry, s);
    }
  }

  #lease(e: Entry, session: SessionContext): Lease {
    e.inflight++;
    if (e.idle) {
      clearTimeout(e.idle);
      delete e.idle;
    }
    let released = false;
    return {
      session,
      signal: e.abort.signal,
      release: () => {
        if (released) return;
        released = true;
        e.inflight--;
        if (e.inflight === 0 && this.#entries.get(e.key) === e && e.idleMs > 0) {
          e.idle = setTimeout(() => {
            if (e.inflight === 0) this.#end(e, 'idle timeout');
          }, e.idleMs).unref();
        }
      },
    };
  }

  #end(e: Entry, reason: string): void {
    if (this.#entries.get(e.key) === e) this.#entries.delete(e.key);
    if (e.idle) clearTimeout(e.idle);
    if (e.abort.signal.aborted) return;
    e.abort.abort(reason);
    this.#ctx.metrics.sessionsActive.dec({ protocol: 'kubernetes' });
    void e.session?.close(reason).catch((err: unknown) => this.#ctx.logger.error({ err }, 'kubernetes session close failed'));
  }

  /** Ends every session (listener closing). */
  async closeAll(reason: string): Promise<void> {
    this.#closed = true;
    const entries = [...this.#entries.values()];
    for (const e of entries) this.#end(e, reason);
    await Promise.all(entries.map((e) => e.session?.close(reason).catch(() => undefined)));
  }
}
