import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Identity } from '../core/identity/types.js';
import { GatehouseError, toGatehouseError } from '../core/errors.js';

export type Role = 'admin' | 'approver' | 'auditor' | 'agent';

/** `roles:` in gatehouse.yaml: who holds each API role, by group or subject. */
export type RoleMap = Partial<Record<Exclude<Role, 'agent'>, { groups?: string[]; subjects?: string[] }>>;

export interface BearerVerifier {
  verify(token: string): Promise<Identity>;
}

declare module 'fastify' {
  interface FastifyRequest {
    identity?: Identity;
    roles?: ReadonlySet<Role>;
  }
}

/** Every caller with a valid token is an `agent`; the other roles come from the role map. */
export function rolesOf(identity: Identity, map: RoleMap): Set<Role> {
  const roles = new Set<Role>(['agent']);
  for (const [role, who] of Object.entries(map) as [Exclude<Role, 'agent'>, { groups?: string[]; subjects?: string[] }][]) {
    if (who.subjects?.includes(identity.subject) || who.groups?.some((g) => identity.groups.includes(g))) roles.add(role);
  }
  if (roles.has('admin')) {
    roles.add('approver');
    roles.add('auditor');
  }
  return roles;
}

/** Parses `Authorization: Bearer <token>` (RFC 6750 §2.1). */
export function bearerToken(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const m = /^Bearer[ ]+([A-Za-z0-9\-._~+/]+=*)$/i.exec(header.trim());
  return m?.[1];
}

/**
 * Fastify preHandler factory: verifies the bearer token and, when `roles` are given, requires one of
 * them. Failures answer 401 (with `WWW-Authenticate`) or 403 in the API's JSON error shape.
 */
export function requireAuth(verifier: BearerVerifier, roleMap: RoleMap, anyOf?: Role[]) {
  return async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const token = bearerToken(req.headers.authorization);
    if (!token) {
      void reply.header('www-authenticate', 'Bearer realm="gatehouse"');
      throw new GatehouseError('ERR_UNAUTHENTICATED', 'a bearer token is required');
    }
    let identity: Identity;
    try {
      identity = await verifier.verify(token);
    } catch (e) {
      const err = toGatehouseError(e, 'ERR_TOKEN_INVALID');
      void reply.header('www-authenticate', `Bearer realm="gatehouse", error="invalid_token"`);
      throw err;
    }
    const roles = rolesOf(identity, roleMap);
    req.identity = identity;
    req.roles = roles;
    if (anyOf && !anyOf.some((r) => roles.has(r))) {
      throw new GatehouseError('ERR_FORBIDDEN', `this needs one of the roles: ${anyOf.join(', ')}`);
    }
  };
}

/** HTTP status for each error code the API can return. */
export function httpStatus(code: GatehouseError['code']): number {
  switch (code) {
    case 'ERR_UNAUTHENTICATED':
    case 'ERR_TOKEN_INVALID':
    case 'ERR_TOKEN_EXPIRED':
    case 'ERR_TOKEN_REVOKED':
      return 401;
    case 'ERR_FORBIDDEN':
    case 'ERR_ACCESS_DENIED':
    case 'ERR_NO_GRANT':
      return 403;
    case 'ERR_NOT_FOUND':
    case 'ERR_UNKNOWN_CONNECTION':
      return 404;
    case 'ERR_CONFLICT':
      return 409;
    case 'ERR_BAD_REQUEST':
    case 'ERR_POLICY':
    case 'ERR_CONFIG':
      return 400;
    case 'ERR_ISSUER_UNAVAILABLE':
    case 'ERR_STORE':
      return 503;
    default:
      return 500;
  }
}
