/** Hash routing (`#/reviews/<id>`): links from notifications work without server-side routes. */
import { useSyncExternalStore } from 'react';

export interface Route {
  /** Path segments: `#/sessions/abc` → ['sessions', 'abc']. */
  path: string[];
  query: URLSearchParams;
}

function subscribe(l: () => void): () => void {
  window.addEventListener('hashchange', l);
  return () => window.removeEventListener('hashchange', l);
}

export function parseHash(hash: string): Route {
  const h = hash.replace(/^#\/?/, '');
  const q = h.indexOf('?');
  const path = (q === -1 ? h : h.slice(0, q)).split('/').filter((s) => s !== '').map(decodeURIComponent);
  return { path, query: new URLSearchParams(q === -1 ? '' : h.slice(q + 1)) };
}

export function useRoute(): Route {
  const hash = useSyncExternalStore(subscribe, () => location.hash);
  return parseHash(hash);
}

export function href(path: string, query?: Record<string, string | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query ?? {})) if (v) q.set(k, v);
  const s = q.toString();
  return `#/${path}${s ? `?${s}` : ''}`;
}

export function navigate(path: string, query?: Record<string, string | undefined>, replace = false): void {
  const h = href(path, query);
  if (replace) history.replaceState(null, '', h);
  else location.hash = h;
  if (replace) window.dispatchEvent(new HashChangeEvent('hashchange'));
}
