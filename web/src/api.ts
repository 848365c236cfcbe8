/** The gateway's HTTP API with the signed-in user's bearer token. */
import { currentToken, signOut } from './auth';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export type Query = Record<string, string | number | boolean | undefined | null>;

export function withQuery(path: string, query?: Query): string {
  if (!query) return path;
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}

async function request(method: string, path: string, body?: unknown, accept = 'application/json'): Promise<Response> {
  const token = currentToken();
  if (!token) throw new ApiError(401, 'ERR_UNAUTHENTICATED', 'You are signed out.');
  const res = await fetch(path, {
    method,
    cache: 'no-store',
    headers: { authorization: `Bearer ${token}`, accept, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  if (res.ok) return res;
  let code = 'ERR_HTTP';
  let message = `HTTP ${res.status}`;
  try {
    const j = (await res.json()) as { error?: { code?: string; message?: string } };
    code = j.error?.code ?? code;
    message = j.error?.message ?? message;
  } catch {
    // not JSON
  }
  if (res.status === 401) signOut(`Your sign-in is no longer valid (${message}). Sign in again.`);
  throw new ApiError(res.status, code, message);
}

export async function apiGet<T>(path: string, query?: Query): Promise<T> {
  return (await (await request('GET', withQuery(path, query))).json()) as T;
}

export async function apiText(path: string, accept: string): Promise<string> {
  return (await request('GET', path, undefined, accept)).text();
}

export async function apiSend<T>(method: 'POST' | 'DELETE', path: string, body?: unknown): Promise<T> {
  return (await (await request(method, path, body)).json()) as T;
}

/** A message for a failed call, fit to show a person. */
export function errorText(e: unknown): string {
  if (e instanceof ApiError) return e.status === 403 ? `Not allowed: ${e.message}` : e.message;
  return e instanceof Error ? e.message : String(e);
}
