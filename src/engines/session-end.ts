/**
 * What ends a proxied database session, the same for every SQL engine: either connection failing or
 * closing, and the session's own end (token expiry, revocation, grant end, kill).
 */
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { GatehouseError } from '../core/errors.js';

/** The error the agent reads when its session is ended for `reason`. */
export function sessionEnded(reason: string): GatehouseError {
  return new GatehouseError('ERR_SESSION_ENDED', `terminating connection: ${reason}`);
}

/** The session's own end, as the agent reads it (for a check before the proxy takes over). */
export function sessionEndedBy(ended: AbortSignal): GatehouseError {
  return sessionEnded(String(ended.reason ?? 'session ended'));
}

/**
 * Calls `end(reason, tellClient, err)` when either socket fails or closes, or `ended` aborts. It may
 * be called more than once: `end` acts on the first call only.
 */
export function endSessionOn(client: Socket | TLSSocket, server: Socket | TLSSocket, ended: AbortSignal, end: (reason: string, tellClient: boolean, err?: GatehouseError) => void): void {
  client.on('error', (e) => end(`client error: ${e.message}`, false));
  server.on('error', (e) => end(`target error: ${e.message}`, true, new GatehouseError('ERR_UPSTREAM', 'lost the connection to the target database', { detail: e.message })));
  client.on('close', () => end('client disconnected', false));
  server.on('close', () => end('target closed the connection', true, new GatehouseError('ERR_UPSTREAM', 'the target database closed the connection')));
  ended.addEventListener('abort', () => {
    const reason = String(ended.reason ?? 'session ended');
    end(reason, true, sessionEnded(reason));
  });
}
