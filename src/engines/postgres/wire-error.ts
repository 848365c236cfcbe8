/**
 * Core errors and decisions as PostgreSQL ErrorResponse fields. SQLSTATE codes from
 * https://www.postgresql.org/docs/current/errcodes-appendix.html
 */
import type { GatehouseError, GatehouseErrorCode } from '../../core/errors.js';
import type { Decision, RuleRef } from '../../core/policy/types.js';
import type { NoticeFields, NoticeInit } from './protocol.js';

const SQLSTATE: Partial<Record<GatehouseErrorCode, string>> = {
  ERR_ACCESS_DENIED: '42501', // insufficient_privilege
  ERR_REVIEW_REQUIRED: '42501',
  ERR_REVIEW_PENDING: '42501',
  ERR_REVIEW_DENIED: '42501',
  ERR_REVIEW_TIMEOUT: '42501',
  ERR_NO_GRANT: '28000', // invalid_authorization_specification
  ERR_TOKEN_INVALID: '28P01', // invalid_password
  ERR_TOKEN_EXPIRED: '28P01',
  ERR_TOKEN_REVOKED: '28000',
  ERR_UNAUTHENTICATED: '28P01',
  ERR_ISSUER_UNAVAILABLE: '08001', // sqlclient_unable_to_establish_sqlconnection
  ERR_TLS_REQUIRED: '28000',
  ERR_UNKNOWN_CONNECTION: '3D000', // invalid_catalog_name
  ERR_MASKING_FAILED: '22000', // data_exception
  ERR_UPSTREAM: '08006', // connection_failure
  ERR_PROTOCOL: '08P01', // protocol_violation
  ERR_SESSION_ENDED: '57P01', // admin_shutdown
};

/** The SQLSTATE for a Gatehouse error code (`XX000` internal_error when there is no closer one). */
export function sqlState(code: GatehouseErrorCode): string {
  return SQLSTATE[code] ?? 'XX000';
}

/** An error the gateway itself raises, as ErrorResponse fields. */
export function errorFields(e: GatehouseError, severity: 'ERROR' | 'FATAL' = 'ERROR'): NoticeInit {
  return { severity, code: sqlState(e.code), message: e.message, hint: `gatehouse: ${e.code}` };
}

function ruleName(rule: RuleRef | 'default'): string {
  return rule === 'default' ? 'default deny' : `rule ${rule.policy}#${rule.index}${rule.source ? ` (${rule.source})` : ''}`;
}

/** A refused command (`deny`, or a review that ended in `deny`). */
export function denialFields(d: Extract<Decision, { effect: 'deny' }>): NoticeInit {
  const code = d.code ?? 'ERR_ACCESS_DENIED';
  return {
    severity: 'ERROR',
    code: sqlState(code),
    message: `gatehouse: ${d.reason}`,
    detail: `Refused by ${ruleName(d.rule)}.`,
    hint: `gatehouse: ${code}`,
  };
}

/** ErrorResponse/NoticeResponse fields (by one-letter code) as serializer input. */
export function noticeInit(fields: NoticeFields): NoticeInit {
  const init: NoticeInit = { severity: fields.V ?? fields.S ?? 'ERROR', code: fields.C ?? 'XX000', message: fields.M ?? '' };
  const map: [string, keyof NoticeInit][] = [
    ['D', 'detail'],
    ['H', 'hint'],
    ['q', 'internalQuery'],
    ['W', 'where'],
    ['s', 'schema'],
    ['t', 'table'],
    ['c', 'column'],
    ['d', 'dataType'],
    ['n', 'constraint'],
    ['F', 'file'],
    ['R', 'routine'],
  ];
  const out = init as unknown as Record<string, string | number>;
  for (const [k, name] of map) if (fields[k] !== undefined) out[name] = fields[k];
  for (const [k, name] of [
    ['P', 'position'],
    ['p', 'internalPosition'],
    ['L', 'line'],
  ] as const) {
    const v = fields[k];
    if (v !== undefined && /^\d+$/.test(v)) out[name] = Number(v);
  }
  return init;
}
