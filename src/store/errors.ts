import { GatehouseError } from '../core/errors.js';
import type { AuditEvent, AuditHead } from './store.js';

/**
 * Wraps a driver error: unique-key violations become `ERR_CONFLICT`, everything else `ERR_STORE`.
 * The public message never carries the driver's text; `detail` does, with `secret` (if given)
 * blanked out.
 */
export function storeError(e: unknown, op: string, secret?: string): GatehouseError {
  if (e instanceof GatehouseError) return e;
  const code = (e as { code?: unknown } | null)?.code;
  const raw = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  const detail = `${op}: ${secret ? raw.split(secret).join('***') : raw}`;
  if (code === '23505' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === 'SQLITE_CONSTRAINT_UNIQUE') {
    return new GatehouseError('ERR_CONFLICT', 'already exists', { detail, cause: e });
  }
  return new GatehouseError('ERR_STORE', 'store error', { detail, cause: e });
}

/** `postgres://user:***@host/db`: a connection URL fit for logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url.replace(/\/\/([^:/@]*):[^@/]*@/, '//$1:***@');
  }
}

/** The password in a connection URL, decoded, if any (to blank it out of driver messages). */
export function urlPassword(url: string): string | undefined {
  try {
    const p = new URL(url).password;
    return p ? decodeURIComponent(p) : undefined;
  } catch {
    return undefined;
  }
}

/** The builder must extend the chain by exactly one link. */
export function checkLink(head: AuditHead | undefined, link: Pick<AuditEvent, 'seq' | 'prevHash' | 'hash'>): void {
  const seq = (head?.seq ?? 0) + 1;
  if (link.seq !== seq || (head !== undefined && link.prevHash !== head.hash)) {
    throw new GatehouseError('ERR_INTERNAL', 'internal error', { detail: `audit link does not extend head ${head?.seq ?? 0}: got seq ${link.seq}` });
  }
}
