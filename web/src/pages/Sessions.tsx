import { useEffect, useId, useState, type FormEvent } from 'react';
import { apiGet, apiSend, errorText } from '../api';
import { Announcer, ErrorBox, PageTitle } from '../components/ui';
import { decisionsOf, mapLimit, type DecisionCounts } from '../decisions';
import { dateTime, duration, since } from '../format';
import { hasRole, useMe, useNow, useResource } from '../hooks';
import { useLive } from '../live';
import { href, navigate } from '../router';
import type { SessionInfo } from '../types';

const PROTOCOLS = ['postgres', 'mysql', 'ssh', 'kubernetes', 'mcp', 'http'];
const PAGE = 100;

interface Filters {
  subject: string;
  connection: string;
  protocol: string;
  decision: string;
  state: string;
}

function filtersOf(q: URLSearchParams): Filters {
  return { subject: q.get('subject') ?? '', connection: q.get('connection') ?? '', protocol: q.get('protocol') ?? '', decision: q.get('decision') ?? '', state: q.get('state') ?? '' };
}

export function SessionsPage({ query }: { query: URLSearchParams }) {
  const applied = filtersOf(query);
  const key = JSON.stringify(applied);
  const [form, setForm] = useState<Filters>(applied);
  const [message, setMessage] = useState('');
  const now = useNow(1000);
  useEffect(() => setForm(filtersOf(new URLSearchParams(query))), [key]);

  const sessions = useResource(
    () =>
      apiGet<SessionInfo[]>('/api/sessions', {
        limit: PAGE,
        subject: applied.subject,
        connection: applied.connection,
        protocol: applied.protocol,
        live: applied.state === 'live' ? 'true' : applied.state === 'ended' ? 'false' : undefined,
      }),
    key,
  );
  const [decisions, setDecisions] = useState<Map<string, DecisionCounts>>(new Map());
  const [decisionError, setDecisionError] = useState<string | undefined>(undefined);
  useLive(['session', 'session.kill'], () => sessions.reload());

  const list = sessions.data;
  useEffect(() => {
    if (!list) return;
    let stop = false;
    mapLimit(list, 6, async (s) => [s.id, await decisionsOf(s.id, s.live)] as const).then(
      (pairs) => {
        if (!stop) setDecisions(new Map(pairs));
      },
      (e: unknown) => !stop && setDecisionError(errorText(e)),
    );
    return () => {
      stop = true;
    };
  }, [list]);

  const shown = (list ?? []).filter((s) => {
    if (!applied.decision) return true;
    const d = decisions.get(s.id);
    return d !== undefined && d[applied.decision as keyof DecisionCounts] > 0;
  });

  const apply = (e: FormEvent) => {
    e.preventDefault();
    navigate('sessions', { ...form });
  };
  const clear = () => {
    setForm({ subject: '', connection: '', protocol: '', decision: '', state: '' });
    navigate('sessions');
  };
  const set = (k: keyof Filters) => (e: { target: { value: string } }) => setForm({ ...form, [k]: e.target.value });
  const subjects = [...new Set((list ?? []).map((s) => s.subject))].sort();
  const connections = [...new Set((list ?? []).map((s) => s.connection))].sort();

  return (
    <section>
      <PageTitle title="Sessions">Sessions</PageTitle>
      <p className="lead">Live and past agent sessions. Open one to replay it.</p>
      <Announcer message={message} />
      <form className="filters" onSubmit={apply} aria-label="Filter sessions">
        <div className="field">
          <label htmlFor="f-subject">Agent</label>
          <input id="f-subject" type="text" list="subjects" value={form.subject} onChange={set('subject')} />
          <datalist id="subjects">
            {subjects.map((s) => (
              <option key={s} value={s} />
            ))}
          </datalist>
        </div>
        <div className="field">
          <label htmlFor="f-connection">Connection</label>
          <input id="f-connection" type="text" list="connections" value={form.connection} onChange={set('connection')} />
          <datalist id="connections">
            {connections.map((s) => (
              <option key={s} value={s} />
            ))}
          </datalist>
        </div>
        <div className="field">
          <label htmlFor="f-protocol">Protocol</label>
          <select id="f-protocol" value={form.protocol} onChange={set('protocol')}>
            <option value="">Any</option>
            {PROTOCOLS.map((p) => (
              <option key={p} value={p}>
                {p}
              </option>
            ))}
          </select>
        </div>
        <div className="field">
          <label htmlFor="f-decision">Decision</label>
          <select id="f-decision" value={form.decision} onChange={set('decision')} aria-describedby="f-decision-hint">
            <option value="">Any</option>
            <option value="allow">Had allowed commands</option>
            <option value="deny">Had denied commands</option>
            <option value="review">Had reviewed commands</option>
          </select>
        </div>
        <div className="field">
          <label htmlFor="f-state">State</label>
          <select id="f-state" value={form.state} onChange={set('state')}>
            <option value="">Live and ended</option>
            <option value="live">Live</option>
            <option value="ended">Ended</option>
          </select>
        </div>
        <div className="field buttons">
          <button type="submit" className="primary">
            Apply
          </button>
          <button type="button" className="secondary" onClick={clear}>
            Clear
          </button>
        </div>
        <p id="f-decision-hint" className="hint full">
          The decision filter looks at the {PAGE} most recent sessions that match the other filters.
        </p>
      </form>
      <ErrorBox>{sessions.error ?? decisionError}</ErrorBox>
      {list && shown.length === 0 && <p className="empty">No session matches.</p>}
      {shown.length > 0 && (
        <div className="table-wrap">
          <table className="sessions">
            <caption className="visually-hidden">Sessions, newest first</caption>
            <thead>
              <tr>
                <th scope="col">Started</th>
                <th scope="col">Agent</th>
                <th scope="col">Connection</th>
                <th scope="col">Protocol</th>
                <th scope="col">Length</th>
                <th scope="col">Commands</th>
                <th scope="col">State</th>
                <th scope="col">
                  <span className="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {shown.map((s) => (
                <SessionRow key={s.id} s={s} now={now} decisions={decisions.get(s.id)} onKilled={(m) => (setMessage(m), sessions.reload())} />
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

function SessionRow({ s, now, decisions: d, onKilled }: { s: SessionInfo; now: number; decisions: DecisionCounts | undefined; onKilled: (msg: string) => void }) {
  const me = useMe();
  const uid = useId();
  const [killing, setKilling] = useState(false);
  const [reason, setReason] = useState('');
  const [error, setError] = useState<string | undefined>(undefined);
  const [busy, setBusy] = useState(false);
  const length = s.ended_at ? new Date(s.ended_at).getTime() - new Date(s.started_at).getTime() : since(s.started_at, now);
  const kill = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    try {
      await apiSend('POST', `/api/sessions/${encodeURIComponent(s.id)}/kill`, reason.trim() ? { reason: reason.trim() } : {});
      setKilling(false);
      onKilled(`Killed ${s.subject}'s session on ${s.connection}.`);
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <tr>
      <td>
        <a href={href(`sessions/${s.id}`)} aria-label={`Replay ${s.subject}'s ${s.protocol} session on ${s.connection}, started ${dateTime(s.started_at)}`}>
          {dateTime(s.started_at)}
        </a>
      </td>
      <td>{s.subject}</td>
      <td>{s.connection}</td>
      <td>{s.protocol}</td>
      <td>{duration(length)}</td>
      <td>
        {d ? (
          <span className="counts">
            {d.allow > 0 && <span className="badge badge-allow">{d.allow} allowed</span>}
            {d.deny > 0 && <span className="badge badge-deny">{d.deny} denied</span>}
            {d.review > 0 && <span className="badge badge-review">{d.review} reviewed</span>}
            {d.allow + d.deny === 0 && <span className="muted">none</span>}
          </span>
        ) : (
          <span className="muted">…</span>
        )}
      </td>
      <td>{s.live ? <span className="badge state-live">live</span> : <span title={s.end_reason ?? undefined}>ended{s.end_reason ? `: ${s.end_reason}` : ''}</span>}</td>
      <td>
        {s.live && hasRole(me, 'admin') && !killing && (
          <button type="button" className="deny small" onClick={() => setKilling(true)} aria-label={`Kill ${s.subject}'s session on ${s.connection}`}>
            Kill…
          </button>
        )}
        {killing && (
          <form className="row-form" onSubmit={(e) => void kill(e)}>
            <label className="visually-hidden" htmlFor={`${uid}-r`}>
              Reason for killing {s.subject}&apos;s session
            </label>
            <input id={`${uid}-r`} type="text" placeholder="Reason" autoFocus value={reason} onChange={(e) => setReason(e.target.value)} />
            <button type="submit" className="deny small" disabled={busy}>
              Kill session
            </button>
            <button type="button" className="secondary small" onClick={() => setKilling(false)}>
              Cancel
            </button>
            {error && (
              <p className="error" role="alert">
                {error}
              </p>
            )}
          </form>
        )}
      </td>
    </tr>
  );
}
