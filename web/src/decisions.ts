/** Which decisions a session's commands got, from the audit log's `command` events. */
import { apiGet } from './api';
import type { AuditEvent } from './types';

export interface DecisionCounts {
  allow: number;
  deny: number;
  review: number;
}

const cache = new Map<string, DecisionCounts>();

export async function decisionsOf(sessionId: string, live: boolean): Promise<DecisionCounts> {
  const hit = cache.get(sessionId);
  if (hit && !live) return hit;
  const counts: DecisionCounts = { allow: 0, deny: 0, review: 0 };
  let after = 0;
  for (;;) {
    const page = await apiGet<AuditEvent[]>('/api/audit', { session: sessionId, type: 'command', after, limit: 10_000 });
    for (const e of page) {
      if (e.data.effect === 'allow') counts.allow++;
      else if (e.data.effect === 'deny') counts.deny++;
      if (e.data.review !== undefined || e.data.effect === 'review') counts.review++;
    }
    if (page.length < 10_000) break;
    after = page[page.length - 1]!.seq;
  }
  if (!live) cache.set(sessionId, counts);
  return counts;
}

/** Runs `f` over `items`, `n` at a time. */
export async function mapLimit<T, R>(items: readonly T[], n: number, f: (t: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await f(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
  return out;
}
