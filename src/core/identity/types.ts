/** The verified claims of one access token. Built only by the identity verifier. */
export interface Identity {
  issuer: string;
  subject: string;
  /** `cid` (Okta), `azp` or `client_id` (RFC 9068). */
  clientId?: string;
  groups: string[];
  scopes: string[];
  /** Expiry, in milliseconds since the epoch. */
  expiresAt: number;
  /** `jti`, when the issuer sets one. */
  tokenId?: string;
  /** All claims, for `claims:` subject matching. Never logged whole. */
  claims: Readonly<Record<string, unknown>>;
}

/** The short form of an identity that may appear in logs and audit events. */
export function identitySummary(id: Identity): { iss: string; sub: string; client_id?: string; groups: string[]; jti?: string } {
  return {
    iss: id.issuer,
    sub: id.subject,
    ...(id.clientId === undefined ? {} : { client_id: id.clientId }),
    groups: id.groups,
    ...(id.tokenId === undefined ? {} : { jti: id.tokenId }),
  };
}
