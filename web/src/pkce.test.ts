import { describe, expect, test } from 'vitest';
import { base64url, jwtClaims, randomToken, s256 } from './pkce';

describe('PKCE', () => {
  test('S256 of the RFC 7636 appendix B verifier', async () => {
    expect(await s256('dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk')).toBe('E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM');
  });

  test('random tokens are 43 URL-safe characters', () => {
    const t = randomToken();
    expect(t).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(randomToken()).not.toBe(t);
  });

  test('base64url has no padding', () => {
    expect(base64url(new Uint8Array([251, 255]))).toBe('-_8');
  });

  test('reads JWT claims without verifying', () => {
    const payload = base64url(new TextEncoder().encode(JSON.stringify({ sub: 'dba-1', exp: 123 })));
    expect(jwtClaims(`e30.${payload}.sig`)).toEqual({ sub: 'dba-1', exp: 123 });
    expect(jwtClaims('not-a-jwt')).toBeUndefined();
  });
});
