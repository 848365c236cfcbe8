/**
 * Demo only: an interactive sign-in for the built-in development issuer, so the web console can use
 * the real OAuth 2.0 authorization code flow with PKCE (RFC 6749 §4.1, RFC 7636 S256) in
 * `gatehouse demo`. `GET <prefix>/authorize` shows a form where the visitor picks any subject and
 * groups (the roles in `roles:` are offered as one-click choices); `POST <prefix>/authorize` issues a
 * one-time code bound to the client, the redirect URI and the code challenge; `POST <prefix>/token`
 * exchanges it, after checking the code verifier, for a development access token.
 *
 * Anyone who reaches these endpoints can be anyone: they are registered only when
 * `identity.dev_issuer` is on, and redirect only to loopback hosts, the gateway's own host or
 * `public_url`.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { RolesConfig } from '../config/index.js';
import { isLoopbackHost } from '../config/index.js';
import type { DevIssuer } from '../core/identity/index.js';
import type { Logger } from '../core/log.js';

export interface DevLoginOptions {
  /** Where the development issuer is served, e.g. `/dev-issuer`. */
  prefix: string;
  /** The issuer (created once the HTTP listener is bound, hence a function). */
  issuer: () => DevIssuer | undefined;
  /** `aud` of the tokens. */
  audience: string;
  /** Offered as one-click identities on the form. */
  roles: RolesConfig;
  publicUrl?: string;
  /** Token lifetime, seconds. Default 3600. */
  ttlSec?: number;
  logger?: Logger;
  now?: () => number;
}

interface AuthRequest {
  clientId: string;
  redirectUri: string;
  state: string | undefined;
  scope: string;
  challenge: string;
}

interface IssuedCode extends AuthRequest {
  sub: string;
  groups: string[];
  expiresAt: number;
}

class AuthError extends Error {
  constructor(
    readonly error: string,
    message: string,
  ) {
    super(message);
  }
}

const CODE_TTL_MS = 60_000;
const MAX_CODES = 1000;
const CHALLENGE = /^[A-Za-z0-9_-]{43}$/;
const VERIFIER = /^[A-Za-z0-9\-._~]{43,128}$/;
const PRINTABLE = /^[^\u0000-\u001f\u007f]+$/;

const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

const STYLE = `body{font:16px/1.5 system-ui,sans-serif;color:#111827;background:#f3f4f6;margin:0}
main{max-width:36rem;margin:3rem auto;background:#fff;padding:2rem;border-radius:8px;box-shadow:0 1px 3px #0003}
h1{font-size:1.5rem;margin-top:0}.warn{background:#fef3c7;border-left:4px solid #92400e;padding:.5rem 1rem;color:#78350f}
fieldset{border:1px solid #9ca3af;border-radius:6px;margin:1rem 0;padding:1rem}legend{font-weight:600;padding:0 .25rem}
label{display:block;font-weight:600;margin-top:.75rem}input[type=text]{width:100%;box-sizing:border-box;font:inherit;padding:.4rem;border:1px solid #4b5563;border-radius:4px}
button{font:inherit;display:block;width:100%;text-align:left;margin:.5rem 0;padding:.5rem .75rem;border:1px solid #1e3a8a;border-radius:4px;background:#1e40af;color:#fff;cursor:pointer}
button:hover{background:#1e3a8a}:focus-visible{outline:3px solid #b45309;outline-offset:2px}.error{color:#991b1b;font-weight:600}code{font-size:.9em}`;
const STYLE_HASH = createHash('sha256').update(STYLE).digest('base64');

function b64url(buf: Buffer): string {
  return buf.toString('base64url');
}

function first(v: unknown): string | undefined {
  if (Array.isArray(v)) return typeof v[0] === 'string' ? v[0] : undefined;
  return typeof v === 'string' ? v : undefined;
}

/** The one-click identities: one per role that names a group or subject. */
export function loginPresets(roles: RolesConfig): { role: string; sub: string; groups: string[] }[] {
  const out: { role: string; sub: string; groups: string[] }[] = [];
  for (const role of ['admin', 'approver', 'auditor'] as const) {
    const r = roles[role];
    const group = r.groups[0];
    const sub = r.subjects[0] ?? (group === undefined ? undefined : `${role}-1`);
    if (sub === undefined) continue;
    out.push({ role, sub, groups: group === undefined ? [] : [group] });
  }
  return out;
}

/** Registers `<prefix>/authorize` (GET form, POST decision) and `<prefix>/token`. */
export function registerDevLogin(app: FastifyInstance, o: DevLoginOptions): void {
  const now = o.now ?? Date.now;
  const codes = new Map<string, IssuedCode>();
  const presets = loginPresets(o.roles);
  const publicOrigin = o.publicUrl === undefined ? undefined : new URL(o.publicUrl).origin;

  const redirectAllowed = (req: FastifyRequest, uri: string): URL | undefined => {
    let u: URL;
    try {
      u = new URL(uri);
    } catch {
      return undefined;
    }
    if ((u.protocol !== 'http:' && u.protocol !== 'https:') || u.hash !== '' || u.username !== '' || u.password !== '') return undefined;
    const host = u.hostname.replace(/^\[|\]$/g, '');
    if (isLoopbackHost(host) || u.origin === publicOrigin || u.host === req.headers.host) return u;
    return undefined;
  };

  /** Validates the authorization request; throws AuthError (with a safe redirect URI when there is one). */
  const authRequest = (req: FastifyRequest, p: Record<string, unknown>): AuthRequest & { redirect: URL } => {
    const clientId = first(p.client_id);
    const redirectUri = first(p.redirect_uri);
    if (!clientId || !PRINTABLE.test(clientId) || clientId.length > 200) throw new AuthError('invalid_request', 'client_id is missing or invalid');
    const redirect = redirectUri === undefined ? undefined : redirectAllowed(req, redirectUri);
    if (redirectUri === undefined || redirect === undefined) throw new AuthError('invalid_request', 'redirect_uri is missing or not allowed (loopback hosts, this gateway or public_url only)');
    const state = first(p.state);
    const fail = (error: string, message: string): never => {
      throw Object.assign(new AuthError(error, message), { redirect, state });
    };
    if (first(p.response_type) !== 'code') fail('unsupported_response_type', 'only response_type=code is supported');
    const challenge = first(p.code_challenge);
    if (first(p.code_challenge_method) !== 'S256' || challenge === undefined || !CHALLENGE.test(challenge)) fail('invalid_request', 'PKCE is required: code_challenge with code_challenge_method=S256');
    const scope = first(p.scope) ?? 'openid';
    if (!PRINTABLE.test(scope) && scope !== '') fail('invalid_scope', 'invalid scope');
    if (state !== undefined && state.length > 1000) fail('invalid_request', 'state is too long');
    return { clientId, redirectUri, state, scope, challenge: challenge!, redirect };
  };

  const errorRedirect = (reply: FastifyReply, e: unknown): FastifyReply => {
    const err = e as AuthError & { redirect?: URL; state?: string };
    if (err.redirect) {
      const u = new URL(err.redirect.href);
      u.searchParams.set('error', err.error);
      u.searchParams.set('error_description', err.message);
      if (err.state !== undefined) u.searchParams.set('state', err.state);
      return reply.redirect(u.href, 303);
    }
    return page(reply, 400, `<h1>Sign-in request refused</h1><p class="error">${esc(err.message ?? 'invalid request')}</p>`);
  };

  const page = (reply: FastifyReply, status: number, body: string, formTarget?: URL): FastifyReply => {
    const formAction = formTarget ? `'self' ${formTarget.origin}` : `'self'`;
    return reply
      .status(status)
      .header('content-type', 'text/html; charset=utf-8')
      .header('cache-control', 'no-store')
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer')
      .header('x-frame-options', 'DENY')
      .header('content-security-policy', `default-src 'none'; style-src 'sha256-${STYLE_HASH}'; form-action ${formAction}; frame-ancestors 'none'; base-uri 'none'`)
      .send(`<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>Gatehouse development sign-in</title><style>${STYLE}</style></head><body><main>${body}</main></body></html>`);
  };

  const form = (req: AuthRequest & { redirect: URL }, error?: string, sub = '', groups = ''): string => {
    const hidden = (
      [
        ['response_type', 'code'],
        ['client_id', req.clientId],
        ['redirect_uri', req.redirectUri],
        ['scope', req.scope],
        ['code_challenge', req.challenge],
        ['code_challenge_method', 'S256'],
        ...(req.state === undefined ? [] : [['state', req.state]]),
      ] as [string, string][]
    )
      .map(([k, v]) => `<input type="hidden" name="${k}" value="${esc(v)}">`)
      .join('');
    const buttons = presets
      .map((p) => `<button type="submit" name="preset" value="${esc(p.role)}">${esc(p.sub)} — ${esc(p.role)}${p.groups.length ? ` (group ${esc(p.groups.join(', '))})` : ''}</button>`)
      .join('');
    return `<h1>Development sign-in</h1>
<p class="warn"><strong>Demo only.</strong> This built-in issuer signs anyone in as anyone. Never turn on <code>identity.dev_issuer</code> in production.</p>
<p><code>${esc(req.clientId)}</code> at <code>${esc(req.redirect.origin)}</code> asks who you are.</p>
${error ? `<p class="error" role="alert">${esc(error)}</p>` : ''}
<form method="post" action="${esc(o.prefix)}/authorize">${hidden}
${presets.length ? `<fieldset><legend>Sign in with a role from the configuration</legend>${buttons}</fieldset>` : ''}
<fieldset><legend>Or as any subject</legend>
<label for="sub">Subject</label><input type="text" id="sub" name="sub" autocomplete="username" value="${esc(sub)}">
<label for="groups">Groups (comma-separated)</label><input type="text" id="groups" name="groups" value="${esc(groups)}">
<button type="submit" name="preset" value="custom">Sign in</button>
</fieldset></form>`;
  };

  app.get(`${o.prefix}/authorize`, async (req, reply) => {
    let ar: AuthRequest & { redirect: URL };
    try {
      ar = authRequest(req, req.query as Record<string, unknown>);
    } catch (e) {
      return errorRedirect(reply, e);
    }
    return page(reply, 200, form(ar), ar.redirect);
  });

  app.register(async (scope) => {
    scope.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 64 * 1024 }, (_req, body, done) => {
      const out: Record<string, string | string[]> = {};
      for (const [k, v] of new URLSearchParams(body as string)) {
        const had = out[k];
        out[k] = had === undefined ? v : Array.isArray(had) ? [...had, v] : [had, v];
      }
      done(null, out);
    });

    scope.post(`${o.prefix}/authorize`, async (req, reply) => {
      const body = (req.body ?? {}) as Record<string, unknown>;
      let ar: AuthRequest & { redirect: URL };
      try {
        ar = authRequest(req, body);
      } catch (e) {
        return errorRedirect(reply, e);
      }
      const preset = first(body.preset);
      let sub: string;
      let groups: string[];
      const chosen = presets.find((p) => p.role === preset);
      if (chosen) {
        sub = chosen.sub;
        groups = chosen.groups;
      } else {
        sub = (first(body.sub) ?? '').trim();
        const rawGroups = first(body.groups) ?? '';
        groups = rawGroups
          .split(/[,\s]+/)
          .map((g) => g.trim())
          .filter((g) => g !== '');
        const bad = sub === '' ? 'Enter a subject.' : sub.length > 200 || !PRINTABLE.test(sub) ? 'The subject is too long or has control characters.' : groups.length > 20 || groups.some((g) => g.length > 100 || !PRINTABLE.test(g)) ? 'Give at most 20 groups of at most 100 characters.' : undefined;
        if (bad) return page(reply, 400, form(ar, bad, sub, rawGroups), ar.redirect);
      }
      if (codes.size >= MAX_CODES) for (const [k, c] of codes) if (c.expiresAt <= now()) codes.delete(k);
      if (codes.size >= MAX_CODES) return page(reply, 503, '<h1>Too many sign-ins in progress</h1><p>Try again in a minute.</p>');
      const code = b64url(randomBytes(32));
      codes.set(code, { clientId: ar.clientId, redirectUri: ar.redirectUri, state: ar.state, scope: ar.scope, challenge: ar.challenge, sub, groups, expiresAt: now() + CODE_TTL_MS });
      o.logger?.warn({ sub, groups, client_id: ar.clientId }, 'development issuer: interactive sign-in (demo only)');
      const u = new URL(ar.redirect.href);
      u.searchParams.set('code', code);
      if (ar.state !== undefined) u.searchParams.set('state', ar.state);
      return reply.redirect(u.href, 303);
    });

    scope.post(`${o.prefix}/token`, async (req, reply) => {
      void reply.header('cache-control', 'no-store').header('pragma', 'no-cache').header('access-control-allow-origin', '*');
      const fail = (status: number, error: string, description: string): FastifyReply => reply.status(status).send({ error, error_description: description });
      const body = (req.body ?? {}) as Record<string, unknown>;
      if (first(body.grant_type) !== 'authorization_code') return fail(400, 'unsupported_grant_type', 'only authorization_code is supported');
      const code = first(body.code);
      const issued = code === undefined ? undefined : codes.get(code);
      if (code !== undefined) codes.delete(code);
      if (!issued || issued.expiresAt <= now()) return fail(400, 'invalid_grant', 'unknown, used or expired code');
      if (first(body.client_id) !== issued.clientId) return fail(400, 'invalid_grant', 'the code was issued to another client');
      if (first(body.redirect_uri) !== issued.redirectUri) return fail(400, 'invalid_grant', 'redirect_uri does not match the authorization request');
      const verifier = first(body.code_verifier);
      if (verifier === undefined || !VERIFIER.test(verifier)) return fail(400, 'invalid_grant', 'code_verifier is missing or malformed');
      const expected = Buffer.from(issued.challenge);
      const got = Buffer.from(b64url(createHash('sha256').update(verifier).digest()));
      if (expected.length !== got.length || !timingSafeEqual(expected, got)) return fail(400, 'invalid_grant', 'code_verifier does not match the code_challenge');
      const dev = o.issuer();
      if (!dev) return fail(503, 'temporarily_unavailable', 'the development issuer is not ready');
      const ttl = o.ttlSec ?? 3600;
      const scopes = issued.scope.split(' ').filter((s) => s !== '');
      const token = await dev.mint({ sub: issued.sub, groups: issued.groups, audience: o.audience, clientId: issued.clientId, ttlSec: ttl, scopes });
      return reply.send({ access_token: token, token_type: 'Bearer', expires_in: ttl, scope: scopes.join(' ') });
    });
  });
}
