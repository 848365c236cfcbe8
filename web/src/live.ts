/**
 * Live updates from `GET /api/events` (server-sent events), read with fetch() so the request can carry
 * the bearer token in its Authorization header: EventSource cannot send headers, and a token in the
 * URL would end up in logs and history. One connection for the whole console; it reconnects with
 * backoff, and after a reconnect tells every listener to `resync` (events may have been missed).
 */
import { useEffect, useRef, useSyncExternalStore } from 'react';
import { currentToken } from './auth';
import { SseParser } from './sse';

export type LiveTopic = 'review' | 'grant' | 'revocation' | 'session' | 'session.kill' | 'resync';
export type LiveState = 'connecting' | 'live' | 'reconnecting' | 'off';
type Listener = (topic: LiveTopic, data: Record<string, unknown>) => void;

const listeners = new Set<Listener>();
const stateListeners = new Set<() => void>();
let state: LiveState = 'off';
let abort: AbortController | undefined;
let wanted = 0;

function setState(s: LiveState): void {
  if (state === s) return;
  state = s;
  for (const l of stateListeners) l();
}

function dispatch(topic: LiveTopic, data: Record<string, unknown>): void {
  for (const l of listeners) {
    try {
      l(topic, data);
    } catch (e) {
      console.error(e);
    }
  }
}

async function run(signal: AbortSignal): Promise<void> {
  let delay = 1000;
  let connectedBefore = false;
  while (!signal.aborted) {
    const token = currentToken();
    if (!token) break;
    setState(connectedBefore ? 'reconnecting' : 'connecting');
    try {
      const res = await fetch('/api/events', { headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' }, cache: 'no-store', signal });
      if (res.status === 401 || res.status === 403) {
        setState('off');
        return;
      }
      if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
      setState('live');
      delay = 1000;
      if (connectedBefore) dispatch('resync', {});
      connectedBefore = true;
      const parser = new SseParser((m) => {
        let data: Record<string, unknown> = {};
        try {
          data = JSON.parse(m.data) as Record<string, unknown>;
        } catch {
          // keep {}
        }
        dispatch(m.event as LiveTopic, data);
      });
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        parser.push(value);
      }
    } catch {
      if (signal.aborted) break;
    }
    if (signal.aborted) break;
    setState('reconnecting');
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 15_000);
  }
  setState('off');
}

/** Keeps the connection open while at least one component wants it. */
function acquire(): () => void {
  wanted++;
  if (wanted === 1) {
    abort = new AbortController();
    void run(abort.signal);
  }
  return () => {
    wanted--;
    if (wanted === 0) {
      abort?.abort();
      abort = undefined;
      setState('off');
    }
  };
}

/** Calls `onEvent` for each live event on the given topics (and on `resync`). */
export function useLive(topics: readonly LiveTopic[], onEvent: (topic: LiveTopic, data: Record<string, unknown>) => void): void {
  const cb = useRef(onEvent);
  cb.current = onEvent;
  const key = topics.join(',');
  useEffect(() => {
    const set = new Set<string>(key.split(','));
    const l: Listener = (topic, data) => {
      if (topic === 'resync' || set.has(topic)) cb.current(topic, data);
    };
    listeners.add(l);
    const release = acquire();
    return () => {
      listeners.delete(l);
      release();
    };
  }, [key]);
}

export function useLiveState(): LiveState {
  return useSyncExternalStore(
    (l) => {
      stateListeners.add(l);
      return () => stateListeners.delete(l);
    },
    () => state,
  );
}
