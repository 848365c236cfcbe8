/**
 * What the agent sees when Gatehouse, not the target, ends a channel: a line on stderr starting
 * `gatehouse: ` and an exit status (RFC 4254 §6.10 `exit-status`).
 *
 * - {@link EXIT_REFUSED} 126 — refused by Gatehouse: policy denial (the rule is named), a review
 *   that was denied or timed out, a connection the identity may not use or that needs a grant.
 *   (126 is the shell's "found but cannot be executed".)
 * - {@link EXIT_GATEWAY} 255 — Gatehouse could not run it: the target is unreachable, its host key
 *   does not match the pinned one, the session ended (token expiry, grant end, revocation, kill).
 *   (255 is what `ssh` itself exits with when the connection fails.)
 */
import type { GatehouseError } from '../../core/errors.js';
import type { Decision, RuleRef } from '../../core/policy/types.js';

export const EXIT_REFUSED = 126;
export const EXIT_GATEWAY = 255;

export function ruleName(rule: RuleRef | 'default'): string {
  return rule === 'default' ? 'default deny: no rule allows it' : `rule ${rule.policy}#${rule.index}${rule.source ? ` at ${rule.source}` : ''}`;
}

/** `gatehouse: <reason> (rule <policy>#<n> at <file:line>)` for a refused command. */
export function denialText(d: Extract<Decision, { effect: 'deny' }>): string {
  return `gatehouse: ${d.reason} (${ruleName(d.rule)})`;
}

/** The exit status for an error that stopped a channel or the whole connection. */
export function exitFor(err: GatehouseError): number {
  switch (err.code) {
    case 'ERR_ACCESS_DENIED':
    case 'ERR_NO_GRANT':
    case 'ERR_UNKNOWN_CONNECTION':
    case 'ERR_REVIEW_DENIED':
    case 'ERR_REVIEW_REQUIRED':
    case 'ERR_REVIEW_TIMEOUT':
    case 'ERR_TOKEN_REVOKED':
      return EXIT_REFUSED;
    default:
      return EXIT_GATEWAY;
  }
}

/** `gatehouse: <message> [<code>]`. */
export function errorText(err: GatehouseError): string {
  return `gatehouse: ${err.message} [${err.code}]`;
}
