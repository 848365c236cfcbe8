/**
 * Core errors and decisions as MySQL ERR packets. Error codes and SQL states from
 * https://dev.mysql.com/doc/mysql-errors/8.0/en/server-error-reference.html and
 * https://mariadb.com/kb/en/mariadb-error-code-reference/.
 */
import type { GatehouseError, GatehouseErrorCode } from '../../core/errors.js';
import type { Decision, RuleRef } from '../../core/policy/types.js';
import type { ErrInit } from './protocol.js';

/** ER_TABLEACCESS_DENIED_ERROR: what a refused command gets, as MySQL's own privilege errors. */
export const ER_ACCESS_DENIED = 1142;
const ER_ACCESS_DENIED_LOGIN = 1045;
const ER_DBACCESS_DENIED = 1044;
const ER_BAD_DB = 1049;
const ER_HANDSHAKE = 1043;
const ER_UNKNOWN_COM = 1047;
const ER_UNKNOWN_ERROR = 1105;
const ER_SECURE_TRANSPORT_REQUIRED = 3159;
/** MariaDB's ER_CONNECTION_KILLED. */
const ER_CONNECTION_KILLED = 1927;
/** ER_UNKNOWN_STMT_HANDLER. */
export const ER_UNKNOWN_STMT = 1243;
/** ER_NOT_SUPPORTED_YET. */
export const ER_NOT_SUPPORTED = 1235;

const CODES: Partial<Record<GatehouseErrorCode, [number, string]>> = {
  ERR_ACCESS_DENIED: [ER_ACCESS_DENIED, '42000'],
  ERR_REVIEW_REQUIRED: [ER_ACCESS_DENIED, '42000'],
  ERR_REVIEW_PENDING: [ER_ACCESS_DENIED, '42000'],
  ERR_REVIEW_DENIED: [ER_ACCESS_DENIED, '42000'],
  ERR_REVIEW_TIMEOUT: [ER_ACCESS_DENIED, '42000'],
  ERR_NO_GRANT: [ER_DBACCESS_DENIED, '42000'],
  ERR_TOKEN_INVALID: [ER_ACCESS_DENIED_LOGIN, '28000'],
  ERR_TOKEN_EXPIRED: [ER_ACCESS_DENIED_LOGIN, '28000'],
  ERR_TOKEN_REVOKED: [ER_ACCESS_DENIED_LOGIN, '28000'],
  ERR_UNAUTHENTICATED: [ER_ACCESS_DENIED_LOGIN, '28000'],
  ERR_ISSUER_UNAVAILABLE: [ER_ACCESS_DENIED_LOGIN, '28000'],
  ERR_TLS_REQUIRED: [ER_SECURE_TRANSPORT_REQUIRED, 'HY000'],
  ERR_UNKNOWN_CONNECTION: [ER_BAD_DB, '42000'],
  ERR_MASKING_FAILED: [ER_UNKNOWN_ERROR, 'HY000'],
  ERR_UPSTREAM: [ER_UNKNOWN_ERROR, '08S01'],
  ERR_PROTOCOL: [ER_UNKNOWN_COM, '08S01'],
  ERR_SESSION_ENDED: [ER_CONNECTION_KILLED, '70100'],
};

/**
 * An error the gateway raises, as an ERR packet. At login (`phase: 'login'`) a refused session is
 * 1044 (access denied to the database) and a malformed handshake 1043, as a MySQL server says them.
 */
export function errorPacket(e: GatehouseError, phase: 'login' | 'command' = 'command'): ErrInit {
  let [code, sqlState] = CODES[e.code] ?? [ER_UNKNOWN_ERROR, 'HY000'];
  if (phase === 'login' && e.code === 'ERR_ACCESS_DENIED') [code, sqlState] = [ER_DBACCESS_DENIED, '42000'];
  if (phase === 'login' && e.code === 'ERR_PROTOCOL') [code, sqlState] = [ER_HANDSHAKE, '08S01'];
  return { code, sqlState, message: `gatehouse: ${e.message} (${e.code})` };
}

function ruleName(rule: RuleRef | 'default'): string {
  return rule === 'default' ? 'default deny' : `rule ${rule.policy}#${rule.index}${rule.source ? ` (${rule.source})` : ''}`;
}

/** A refused command (`deny`, or a review that ended in `deny`): 1142, with the rule's reason. */
export function denialPacket(d: Extract<Decision, { effect: 'deny' }>): ErrInit {
  const code = d.code ?? 'ERR_ACCESS_DENIED';
  const [num, sqlState] = CODES[code] ?? [ER_ACCESS_DENIED, '42000'];
  return { code: num, sqlState, message: `gatehouse: ${d.reason} (refused by ${ruleName(d.rule)}; ${code})` };
}
