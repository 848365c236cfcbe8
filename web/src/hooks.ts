import { createContext, useCallback, useContext, useEffect, useRef, useState } from 'react';
import { errorText } from './api';

/** The signed-in user as `/api/whoami` describes them. */
export interface Me {
  identity: { iss: string; sub: string; client_id?: string; groups: string[] };
  roles: string[];
  expires_at: string;
}

export const MeContext = createContext<Me | undefined>(undefined);

export function useMe(): Me {
  const me = useContext(MeContext);
  if (!me) throw new Error('useMe outside the signed-in console');
  return me;
}

export function hasRole(me: Me, role: 'admin' | 'approver' | 'auditor'): boolean {
  return me.roles.includes(role);
}

/** The current time, updated every `ms` (for "waiting 3 min" and countdowns). */
export function useNow(ms = 1000): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(t);
  }, [ms]);
  return now;
}

export interface Resource<T> {
  data: T | undefined;
  error: string | undefined;
  loading: boolean;
  reload: () => void;
}

/** Loads `fetcher()` when `key` changes; `reload()` loads again (coalescing bursts of calls). */
export function useResource<T>(fetcher: () => Promise<T>, key: string): Resource<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const [loading, setLoading] = useState(true);
  const seq = useRef(0);
  const f = useRef(fetcher);
  f.current = fetcher;
  const timer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);

  const load = useCallback(() => {
    const n = ++seq.current;
    setLoading(true);
    f.current().then(
      (d) => {
        if (n !== seq.current) return;
        setData(d);
        setError(undefined);
        setLoading(false);
      },
      (e: unknown) => {
        if (n !== seq.current) return;
        setError(errorText(e));
        setLoading(false);
      },
    );
  }, []);

  useEffect(() => {
    setData(undefined);
    load();
  }, [key, load]);

  useEffect(() => () => clearTimeout(timer.current), []);

  const reload = useCallback(() => {
    clearTimeout(timer.current);
    timer.current = setTimeout(load, 50);
  }, [load]);

  return { data, error, loading, reload };
}
