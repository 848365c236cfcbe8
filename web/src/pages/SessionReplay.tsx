import { lazy, Suspense, useState, type FormEvent } from 'react';
import { apiGet, apiSend, apiText, errorText } from '../api';
import { Code, Effect, ErrorBox, PageTitle } from '../components/ui';
import { dateTime, duration, since } from '../format';
import { hasRole, useMe, useNow, useResource } from '../hooks';
import { useLive } from '../live';
import { href } from '../router';
import type { RecordingEvent, SessionInfo } from '../types';

interface Entry {
  statement?: RecordingEvent;
  params?: RecordingEvent;
  result?: RecordingEvent;
  error?: RecordingEvent;
  note?: RecordingEvent;
}

async function recording(id: string): Promise<RecordingEvent[]> {
  const out: RecordingEvent[] = [];
  let after = 0;
  for (;;) {
    const page = await apiGet<RecordingEvent[]>(`/api/sessions/${encodeURIComponent(id)}/recording`, { after, limit: 10_000 });
    out.push(...page);
    if (page.length < 10_000) return out;
    after = page[page.length - 1]!.seq;
  }
}

/** Statements with what followed each (parameters, result, error); notes stand alone. */
export function timeline(events: readonly RecordingEvent[]): Entry[] {
  const out: Entry[] = [];
  let cur: Entry | undefined;
  for (const e of events) {
    if (e.type === 'statement') {
      cur = { statement: e };
      out.push(cur);
    } else if ((e.type === 'params' || e.type === 'result' || e.type === 'error') && cur && cur[e.type] === undefined) {
      cur[e.type] = e;
    } else if (e.type === 'note' || e.type === 'error') {
      out.push(e.type === 'note' ? { note: e } : { error: e });
    }
  }
  return out;
}

// The player (and its WebAssembly terminal) loads only when a terminal session is opened.
const TerminalPlayer = lazy(() => import('../components/TerminalPlayer').then((m) => ({ default: m.TerminalPlayer })));

const secs = (ms: number) => `+${(ms / 1000).toFixed(3)} s`;

export function SessionReplay({ id }: { id: string }) {
  const me = useMe();
  const now = useNow(1000);
  const session = useResource(() => apiGet<SessionInfo>(`/api/sessions/${encodeURIComponent(id)}`), id);
  const events = useResource(() => recording(id), id);
  const terminal = (events.data ?? []).some((e) => e.type === 'output' || e.type === 'input');
  const cast = useResource(() => (terminal ? apiText(`/api/sessions/${encodeURIComponent(id)}/asciicast`, 'application/x-asciicast') : Promise.resolve(undefined)), `${id}:${terminal}:${events.data?.length ?? 0}`);
  const [show, setShow] = useState('all');
  useLive(['session', 'session.kill'], (_t, data) => {
    if (data.id === undefined || data.id === id) {
      session.reload();
      events.reload();
    }
  });

  const s = session.data;
  const entries = timeline(events.data ?? []).filter((e) => {
    if (show === 'all') return true;
    const d = e.statement?.data;
    if (!d) return false;
    return show === 'review' ? d.review !== undefined : d.effect === show;
  });

  return (
    <section>
      <p className="crumbs">
        <a href={href('sessions')}>Sessions</a> / replay
      </p>
      <PageTitle title="Session replay">{s ? `${s.subject} → ${s.connection} (${s.protocol})` : 'Session'}</PageTitle>
      <ErrorBox>{session.error ?? events.error ?? cast.error}</ErrorBox>
      {s && (
        <dl className="facts wide">
          <dt>Session</dt>
          <dd>
            <code>{s.id}</code>
          </dd>
          <dt>Agent</dt>
          <dd>
            {s.subject}
            {s.client_id && s.client_id !== s.subject ? ` (client ${s.client_id})` : ''}
            {s.groups.length ? <span className="muted"> · groups {s.groups.join(', ')}</span> : null}
          </dd>
          <dt>Issuer</dt>
          <dd>{s.issuer}</dd>
          <dt>Started</dt>
          <dd>
            {dateTime(s.started_at)}
            {s.remote_addr ? <span className="muted"> from {s.remote_addr}</span> : null}
          </dd>
          <dt>{s.live ? 'Running for' : 'Ended'}</dt>
          <dd>{s.live ? duration(since(s.started_at, now)) : `${dateTime(s.ended_at)}${s.end_reason ? ` (${s.end_reason})` : ''}`}</dd>
          {s.grant_id && (
            <>
              <dt>Grant</dt>
              <dd>
                <code>{s.grant_id}</code>
              </dd>
            </>
          )}
        </dl>
      )}
      {s?.live && hasRole(me, 'admin') && <KillForm session={s} onDone={() => session.reload()} />}
      {terminal && cast.data && s && (
        <>
          <h2>Terminal</h2>
          <Suspense fallback={<p>Loading the player…</p>}>
            <TerminalPlayer cast={cast.data} title={`Terminal recording of ${s.subject} on ${s.connection}`} />
          </Suspense>
        </>
      )}
      <div className="timeline-head">
        <h2>{terminal ? 'Commands' : 'Statements'}</h2>
        <label htmlFor="show">Show</label>
        <select id="show" value={show} onChange={(e) => setShow(e.target.value)}>
          <option value="all">Everything</option>
          <option value="allow">Allowed</option>
          <option value="deny">Denied</option>
          <option value="review">Reviewed</option>
        </select>
        <button type="button" className="secondary small" onClick={() => events.reload()}>
          Refresh
        </button>
      </div>
      {events.data && entries.length === 0 && <p className="empty">Nothing recorded{show === 'all' ? '' : ' with this decision'}.</p>}
      <ol className="timeline" aria-label="Recorded statements">
        {entries.map((e, i) => (
          <TimelineEntry key={e.statement?.seq ?? e.note?.seq ?? e.error?.seq ?? i} e={e} />
        ))}
      </ol>
    </section>
  );
}

function TimelineEntry({ e }: { e: Entry }) {
  if (e.note && !e.statement) {
    return (
      <li className="note">
        <span className="t">{secs(e.note.t)}</span> {String(e.note.data.message ?? '')}
      </li>
    );
  }
  if (!e.statement) {
    return (
      <li className="stmt">
        <span className="t">{secs(e.error!.t)}</span> <span className="error-text">{`${String(e.error!.data.code ?? '')} ${String(e.error!.data.message ?? '')}`}</span>
      </li>
    );
  }
  const d = e.statement.data;
  const r = e.result?.data;
  const sample = Array.isArray(r?.sample) ? (r.sample as unknown[][]) : undefined;
  const cols = sample ? Math.max(0, ...sample.map((row) => row.length)) : 0;
  return (
    <li className={`stmt effect-${String(d.effect)}`}>
      <div className="stmt-head">
        <span className="t">{secs(e.statement.t)}</span>
        <Effect effect={String(d.effect)} />
        {d.review !== undefined && (
          <a className="badge badge-review" href={href(`reviews/${String(d.review)}`)}>
            reviewed
          </a>
        )}
        <span className="muted">
          rule <code>{String(d.rule)}</code>
        </span>
        {typeof d.status === 'number' && <span className="muted">status {d.status}</span>}
      </div>
      <Code>{String(d.command ?? '')}</Code>
      {d.reason !== undefined && <p className="reason">Refused: {String(d.reason)}</p>}
      {e.params && <p className="muted">Parameters: {JSON.stringify(e.params.data.params)}</p>}
      {r && (
        <p className="result">
          {[
            r.tag,
            r.rows !== undefined ? `${String(r.rows)} row${r.rows === 1 ? '' : 's'}` : undefined,
            r.affected !== undefined ? `${String(r.affected)} affected` : undefined,
            typeof r.durationMs === 'number' ? `${r.durationMs < 10 ? r.durationMs.toFixed(2) : Math.round(r.durationMs)} ms` : undefined,
          ]
            .filter((x) => x !== undefined && x !== '')
            .join(' · ')}
        </p>
      )}
      {sample && sample.length > 0 && (
        <div className="table-wrap">
          <table className="sample">
            <caption>Result sample (masked)</caption>
            <thead>
              <tr>
                {Array.from({ length: cols }, (_, i) => (
                  <th scope="col" key={i}>
                    #{i + 1}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {sample.map((row, i) => (
                <tr key={i}>
                  {row.map((v, j) => (
                    <td key={j}>{v === null ? <span className="muted">NULL</span> : String(v)}</td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {e.error && <p className="error-text">{`${String(e.error.data.code ?? '')}: ${String(e.error.data.message ?? '')}`}</p>}
    </li>
  );
}

function KillForm({ session: s, onDone }: { session: SessionInfo; onDone: () => void }) {
  const [reason, setReason] = useState('');
  const [error, setError] = useState<string | undefined>(undefined);
  const [busy, setBusy] = useState(false);
  const kill = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      await apiSend('POST', `/api/sessions/${encodeURIComponent(s.id)}/kill`, reason.trim() ? { reason: reason.trim() } : {});
      onDone();
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <form className="row-form kill" onSubmit={(e) => void kill(e)}>
      <label htmlFor="kill-reason">Reason</label>
      <input id="kill-reason" type="text" value={reason} onChange={(e) => setReason(e.target.value)} />
      <button type="submit" className="deny" disabled={busy}>
        Kill this session
      </button>
      <ErrorBox>{error}</ErrorBox>
    </form>
  );
}
