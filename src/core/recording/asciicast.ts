/**
 * Terminal recordings as asciicast v2 (https://docs.asciinema.org/manual/asciicast/v2/): a JSON
 * header line, then one `[time, code, data]` line per event, `o` output, `i` input, `r` resize
 * (`"<cols>x<rows>"`), `m` marker. Built from a session's recording events (already masked).
 */
import type { RecordingEvent, SessionRecord } from '../../store/store.js';

/** True when a recording holds terminal events (SSH, kubectl exec). */
export function isTerminalRecording(events: readonly Pick<RecordingEvent, 'type'>[]): boolean {
  return events.some((e) => e.type === 'output' || e.type === 'input');
}

/** The recording as asciicast v2 text (newline-delimited JSON). */
export function toAsciicast(session: Pick<SessionRecord, 'id' | 'startedAt' | 'subject' | 'connection' | 'protocol'>, events: readonly RecordingEvent[]): string {
  const firstResize = events.find((e) => e.type === 'resize');
  const width = Number(firstResize?.data.cols) || 80;
  const height = Number(firstResize?.data.rows) || 24;
  const header = {
    version: 2,
    width,
    height,
    timestamp: Math.floor(session.startedAt / 1000),
    title: `${session.subject} → ${session.connection} (${session.protocol}) ${session.id}`,
    env: { TERM: 'xterm-256color' },
  };
  const lines = [JSON.stringify(header)];
  for (const e of events) {
    const t = Math.round(e.t) / 1000;
    switch (e.type) {
      case 'output':
        lines.push(JSON.stringify([t, 'o', String(e.data.data ?? '')]));
        break;
      case 'input':
        lines.push(JSON.stringify([t, 'i', String(e.data.data ?? '')]));
        break;
      case 'resize':
        lines.push(JSON.stringify([t, 'r', `${Number(e.data.cols)}x${Number(e.data.rows)}`]));
        break;
      case 'note':
      case 'statement':
        lines.push(JSON.stringify([t, 'm', String(e.data.message ?? e.data.command ?? '')]));
        break;
      default:
        break;
    }
  }
  return `${lines.join('\n')}\n`;
}
