/**
 * Sign-in: OAuth 2.0 authorization code with PKCE (S256) against the issuer the gateway names in
 * `/console/config.json`. The access token lives in sessionStorage (this tab only, gone when it
 * closes) and goes to the API as a bearer token; nothing is stored in cookies.
 */
import { useSyncExternalStore } from 'react';
import { jwtClaims, randomToken, s256 } from './pkce';

export interface Provider {
  id: string;
  label: string;
  issuer: string;
  client_id: string;
  authorization_endpoint: string;
  token_endpoint: string;
  scopes: string[];
  resource?: string;
  demo: boolean;
}

export interface ConsoleConfig {
  providers: Provider[];
  error?: string;
}

export interface Session {
  token: string;
  /** ms since the epoch */
  expiresAt: number;
  provider: string;
}

interface PendingSignIn {
  state: string;
  verifier: string;
  provider: Provider;
  redirectUri: string;
  returnHash: string;
}

const SESSION_KEY = 'gatehouse.session';
const PENDING_KEY = 'gatehouse.signin';

function readSession(): Session | undefined {
  try {
    const s = JSON.parse(sessionStorage.getItem(SESSION_KEY) ?? 'null') as Session | null;
    if (s && typeof s.token === 'string' && typeof s.expiresAt === 'number' && s.expiresAt > Date.now()) return s;
  } catch {
    // fall through
  }
  sessionStorage.removeItem(SESSION_KEY);
  return undefined;
}

let current: Session | undefined = readSession();
let notice: string | undefined;
const listeners = new Set<() => void>();
let snapshot = { session: current, notice };

function emit(): void {
  snapshot = { session: current, notice };
  for (const l of listeners) l();
}

export function currentToken(): string | undefined {
  if (current && current.expiresAt <= Date.now()) signOut('Your sign-in has expired. Sign in again.');
  return current?.token;
}

/** The session (or none) and a message for the sign-in page, as React state. */
export function useAuth(): { session: Session | undefined; notice: string | undefined } {
  return useSyncExternalStore(
    (l) => {
      listeners.add(l);
      return () => listeners.delete(l);
    },
    () => snapshot,
  );
}

export function signOut(message?: string): void {
  sessionStorage.removeItem(SESSION_KEY);
  current = undefined;
  notice = message;
  emit();
}

function setSession(s: Session): void {
  sessionStorage.setItem(SESSION_KEY, JSON.stringify(s));
  current = s;
  notice = undefined;
  emit();
}

export async function fetchConsoleConfig(): Promise<ConsoleConfig> {
  const res = await fetch('/console/config.json', { cache: 'no-store' });
  if (!res.ok) throw new Error(`the gateway answered HTTP ${res.status} for its console configuration`);
  return (await res.json()) as ConsoleConfig;
}

/** Where the issuer sends the browser back: the console's own root. */
export function redirectUri(): string {
  return `${location.origin}/`;
}

/** Sends the browser to the issuer's authorization endpoint. */
export async function beginSignIn(provider: Provider): Promise<void> {
  if (!window.isSecureContext || !crypto.subtle) throw new Error('Sign-in needs a secure context: open the console over https (or on localhost).');
  const state = randomToken();
  const verifier = randomToken(48);
  const pending: PendingSignIn = { state, verifier, provider, redirectUri: redirectUri(), returnHash: location.hash };
  sessionStorage.setItem(PENDING_KEY, JSON.stringify(pending));
  const url = new URL(provider.authorization_endpoint, location.origin);
  url.searchParams.set('response_type', 'code');
  url.searchParams.set('client_id', provider.client_id);
  url.searchParams.set('redirect_uri', pending.redirectUri);
  url.searchParams.set('scope', provider.scopes.join(' '));
  url.searchParams.set('state', state);
  url.searchParams.set('code_challenge', await s256(verifier));
  url.searchParams.set('code_challenge_method', 'S256');
  if (provider.resource) url.searchParams.set('resource', provider.resource);
  location.assign(url.href);
}

/**
 * Finishes a sign-in when the issuer has sent the browser back with `?code=&state=` (or `?error=`):
 * checks the state, exchanges the code with the PKCE verifier and keeps the token. Returns false
 * when the page was not a sign-in callback.
 */
export async function completeSignIn(): Promise<boolean> {
  const params = new URLSearchParams(location.search);
  const code = params.get('code');
  const error = params.get('error');
  if (code === null && error === null) return false;
  const raw = sessionStorage.getItem(PENDING_KEY);
  sessionStorage.removeItem(PENDING_KEY);
  const pending = raw ? (JSON.parse(raw) as PendingSignIn) : undefined;
  history.replaceState(null, '', `/${pending?.returnHash ?? ''}`);
  try {
    if (error !== null) throw new Error(`The issuer refused the sign-in: ${params.get('error_description') ?? error}`);
    if (!pending || params.get('state') !== pending.state) throw new Error('This sign-in response does not match a sign-in started here. Sign in again.');
    const body = new URLSearchParams({ grant_type: 'authorization_code', code: code ?? '', redirect_uri: pending.redirectUri, client_id: pending.provider.client_id, code_verifier: pending.verifier });
    const tokenUrl = new URL(pending.provider.token_endpoint, location.origin).href;
    const res = await fetch(tokenUrl, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' }, body, cache: 'no-store' });
    const json = (await res.json().catch(() => ({}))) as { access_token?: string; expires_in?: number; error?: string; error_description?: string };
    if (!res.ok || typeof json.access_token !== 'string') throw new Error(`The token exchange failed: ${json.error_description ?? json.error ?? `HTTP ${res.status}`}`);
    const exp = jwtClaims(json.access_token)?.exp;
    const expiresAt = typeof exp === 'number' ? exp * 1000 : Date.now() + (json.expires_in ?? 300) * 1000;
    setSession({ token: json.access_token, expiresAt, provider: pending.provider.id });
  } catch (e) {
    signOut((e as Error).message);
  }
  return true;
}
