import { GatehouseError } from '../errors.js';
import type { Identity } from './types.js';

/**
 * Builds the {@link Identity} of a token whose signature and registered claims have already been
 * verified. Handles the claim shapes of common issuers:
 *
 * - client id: `cid` (Okta), `azp` (OpenID Connect, Entra ID), `client_id` (RFC 9068).
 * - groups: the issuer's `groupsClaim`, an array of strings or a single string. A name that is not a
 *   top-level claim is tried as a dotted path (`realm_access.roles`); names containing dots that are
 *   top-level claims (`https://example.com/groups`) win.
 * - scopes: `scp` (array, Okta; space-separated string, Entra ID) or `scope` (RFC 8693 / RFC 9068).
 *
 * The returned object is frozen; it is shared by every caller that presents the same token.
 */
export function identityFromClaims(issuer: string, claims: Record<string, unknown>, groupsClaim = 'groups'): Identity {
  const sub = claims['sub'];
  if (typeof sub !== 'string' || sub.length === 0) {
    throw new GatehouseError('ERR_TOKEN_INVALID', 'token subject is invalid', { detail: `issuer ${issuer}: "sub" is not a non-empty string` });
  }
  const exp = claims['exp'];
  if (typeof exp !== 'number' || !Number.isFinite(exp)) {
    throw new GatehouseError('ERR_TOKEN_INVALID', 'token expiry is invalid', { detail: `issuer ${issuer}: "exp" is not a finite number` });
  }
  const clientId = firstString(claims['cid'], claims['azp'], claims['client_id']);
  const tokenId = firstString(claims['jti']);
  const identity: Identity = {
    issuer,
    subject: sub,
    ...(clientId === undefined ? {} : { clientId }),
    groups: Object.freeze(stringList(claimAt(claims, groupsClaim), false)) as string[],
    scopes: Object.freeze(scopesOf(claims)) as string[],
    expiresAt: exp * 1000,
    ...(tokenId === undefined ? {} : { tokenId }),
    claims: deepFreeze({ ...claims }),
  };
  return Object.freeze(identity);
}

function firstString(...values: unknown[]): string | undefined {
  for (const v of values) if (typeof v === 'string' && v.length > 0) return v;
  return undefined;
}

function claimAt(claims: Record<string, unknown>, name: string): unknown {
  if (Object.hasOwn(claims, name)) return claims[name];
  if (!name.includes('.')) return undefined;
  let node: unknown = claims;
  for (const part of name.split('.')) {
    if (node === null || typeof node !== 'object' || Array.isArray(node) || !Object.hasOwn(node, part)) return undefined;
    node = (node as Record<string, unknown>)[part];
  }
  return node;
}

/** Strings of an array claim, or of a single string (split on spaces when `split`). Others ignored. */
function stringList(value: unknown, split: boolean): string[] {
  if (typeof value === 'string') return split ? [...new Set(value.split(' ').filter((s) => s.length > 0))] : value.length > 0 ? [value] : [];
  if (!Array.isArray(value)) return [];
  const out = new Set<string>();
  for (const v of value) if (typeof v === 'string' && v.length > 0) out.add(v);
  return [...out];
}

function scopesOf(claims: Record<string, unknown>): string[] {
  if (claims['scp'] !== undefined) return stringList(claims['scp'], true);
  return typeof claims['scope'] === 'string' ? stringList(claims['scope'], true) : [];
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
