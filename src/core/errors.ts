/**
 * The one error type of Gatehouse. Every failure that reaches an agent, an approver or the log is a
 * `GatehouseError` with a stable `code`. `message` is the public text, safe to show the agent;
 * `detail` is internal context for the log only (it may name hosts, rules, upstream errors — never
 * tokens or unmasked values). Engines translate these into their wire format at the edge.
 */
export type GatehouseErrorCode =
  | 'ERR_ACCESS_DENIED'
  | 'ERR_REVIEW_REQUIRED'
  | 'ERR_REVIEW_PENDING'
  | 'ERR_REVIEW_DENIED'
  | 'ERR_REVIEW_TIMEOUT'
  | 'ERR_TOKEN_INVALID'
  | 'ERR_TOKEN_EXPIRED'
  | 'ERR_TOKEN_REVOKED'
  | 'ERR_ISSUER_UNAVAILABLE'
  | 'ERR_NO_GRANT'
  | 'ERR_UNKNOWN_CONNECTION'
  | 'ERR_MASKING_FAILED'
  | 'ERR_UPSTREAM'
  | 'ERR_PROTOCOL'
  | 'ERR_TLS_REQUIRED'
  | 'ERR_SESSION_ENDED'
  | 'ERR_UNAUTHENTICATED'
  | 'ERR_FORBIDDEN'
  | 'ERR_NOT_FOUND'
  | 'ERR_CONFLICT'
  | 'ERR_BAD_REQUEST'
  | 'ERR_CONFIG'
  | 'ERR_POLICY'
  | 'ERR_STORE'
  | 'ERR_AUDIT_BROKEN'
  | 'ERR_INTERNAL';

export interface GatehouseErrorOptions {
  /** Internal context for logs; never shown to the agent. */
  detail?: string;
  cause?: unknown;
}

export class GatehouseError extends Error {
  override readonly name = 'GatehouseError';
  readonly code: GatehouseErrorCode;
  readonly detail: string | undefined;

  constructor(code: GatehouseErrorCode, message: string, options: GatehouseErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.detail = options.detail;
  }

  /** A plain object for structured logs. */
  toJSON(): { code: GatehouseErrorCode; message: string; detail?: string } {
    return this.detail === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, detail: this.detail };
  }
}

export function isGatehouseError(e: unknown, code?: GatehouseErrorCode): e is GatehouseError {
  return e instanceof GatehouseError && (code === undefined || e.code === code);
}

/** Wraps anything thrown into a GatehouseError without leaking its message to the agent. */
export function toGatehouseError(e: unknown, fallback: GatehouseErrorCode = 'ERR_INTERNAL'): GatehouseError {
  if (e instanceof GatehouseError) return e;
  const detail = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  return new GatehouseError(fallback, fallback === 'ERR_UPSTREAM' ? 'upstream error' : 'internal error', { detail, cause: e });
}
