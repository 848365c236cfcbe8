/**
 * `gatehouse sessions replay`: SQL sessions as a timeline of statements with decisions, durations
 * and row counts; terminal sessions (SSH, kubectl exec) played back from their asciicast-style
 * events with the original timing (idle pauses capped).
 */
import type { Writable } from 'node:stream';

interface Ev {
  seq: number;
  t: number;
  type: string;
  data: Record<string, unknown>;
}

function secs(ms: number): string {
  return `${(ms / 1000).toFixed(3).padStart(9)}s`;
}

/** Renders a SQL session's recording as text. */
export function replaySql(session: Record<string, unknown>, events: readonly Ev[]): string {
  const out: string[] = [];
  out.push(`session ${String(session.id)}  ${String(session.protocol)} → ${String(session.connection)}  subject ${String(session.subject)}`);
  out.push(`started ${String(session.started_at)}${session.ended_at ? `, ended ${String(session.ended_at)} (${String(session.end_reason)})` : ' (live)'}`);
  out.push('');
  for (const e of events) {
    const d = e.data;
    switch (e.type) {
      case 'statement':
        out.push(`${secs(e.t)}  ${String(d.effect).toUpperCase().padEnd(6)} ${String(d.command ?? '').replace(/\s+/g, ' ').slice(0, 500)}`);
        out.push(`${' '.repeat(12)}rule ${String(d.rule)}${d.reason ? `: ${String(d.reason)}` : ''}${d.review ? `  (review ${String(d.review)})` : ''}`);
        break;
      case 'params':
        out.push(`${' '.repeat(12)}params ${JSON.stringify(d.params)}`);
        break;
      case 'result': {
        const n = d.rows !== undefined ? `${String(d.rows)} rows` : d.affected !== undefined ? `${String(d.affected)} affected` : '';
        out.push(`${' '.repeat(12)}→ ${String(d.tag ?? '')} ${n} in ${String(d.durationMs)} ms`);
        const sample = d.sample as unknown[][] | undefined;
        if (sample) for (const row of sample.slice(0, 3)) out.push(`${' '.repeat(14)}${JSON.stringify(row)}`);
        break;
      }
      case 'error':
        out.push(`${' '.repeat(12)}✗ ${String(d.code)} ${String(d.message)}`);
        break;
      default:
        out.push(`${secs(e.t)}  ${e.type} ${JSON.stringify(d)}`);
    }
  }
  return `${out.join('\n')}\n`;
}

/** Plays terminal output events to `out` with their timing. */
export async function replayAsciicast(events: readonly Ev[], o: { speed: number; maxWaitSec: number; out: Writable }): Promise<void> {
  let last = 0;
  for (const e of events) {
    if (e.type !== 'output' && e.type !== 'o') continue;
    const wait = Math.min((e.t - last) / o.speed, o.maxWaitSec * 1000);
    last = e.t;
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    o.out.write(String(e.data.data ?? ''));
  }
  o.out.write('\n');
}
