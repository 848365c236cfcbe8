import { useCallback, useEffect, useRef, useState, type FormEvent } from 'react';
import { apiGet, errorText, type Query } from '../api';
import { ErrorBox, PageTitle } from '../components/ui';
import { dateTime } from '../format';
import { useResource } from '../hooks';
import { useLive } from '../live';
import { href, navigate, useRoute } from '../router';
import type { AuditEvent, AuditVerify } from '../types';

const TYPES = [
  'command',
  'session.start',
  'session.end',
  'review.created',
  'review.approval',
  'review.approved',
  'review.denied',
  'review.consumed',
  'grant.requested',
  'grant.approved',
  'grant.denied',
  'grant.revoked',
  'grant.expired',
  'revocation.created',
  'revocation.removed',
  'policy.reload',
  'gateway.start',
  'gateway.stop',
];
const WINDOW = 300;
const EXPORT_PAGE = 10_000;

interface Filters {
  type: string;
  actor: string;
  connection: string;
  session: string;
}

export function AuditPage() {
  const { query } = useRoute();
  const applied: Filters = { type: query.get('type') ?? '', actor: query.get('actor') ?? '', connection: query.get('connection') ?? '', session: query.get('session') ?? '' };
  const fromParam = query.get('from');
  const key = JSON.stringify(applied);
  const [form, setForm] = useState<Filters>(applied);
  useEffect(() => setForm(applied), [key]);

  const verify = useResource(() => apiGet<AuditVerify>('/api/audit/verify'), 'verify');
  const head = verify.data?.events;
  const from = fromParam !== null ? Math.max(0, Number(fromParam) || 0) : head === undefined ? undefined : Math.max(0, head - WINDOW);

  const [rows, setRows] = useState<AuditEvent[]>([]);
  const [error, setError] = useState<string | undefined>(undefined);
  const [loading, setLoading] = useState(false);
  const [follow, setFollow] = useState(true);
  const [exporting, setExporting] = useState<string | undefined>(undefined);
  const last = useRef(0);
  const gen = useRef(0);

  const filterQuery = useCallback((): Query => ({ type: applied.type, actor: applied.actor, connection: applied.connection, session: applied.session }), [key]);

  useEffect(() => {
    if (from === undefined) return;
    const g = ++gen.current;
    setLoading(true);
    apiGet<AuditEvent[]>('/api/audit', { ...filterQuery(), after: from, limit: 1000 }).then(
      (page) => {
        if (g !== gen.current) return;
        setRows(page);
        last.current = page.length ? page[page.length - 1]!.seq : from;
        setError(undefined);
        setLoading(false);
      },
      (e: unknown) => {
        if (g !== gen.current) return;
        setError(errorText(e));
        setLoading(false);
      },
    );
  }, [from, filterQuery]);

  const newer = useCallback(async () => {
    const g = gen.current;
    try {
      const page = await apiGet<AuditEvent[]>('/api/audit', { ...filterQuery(), after: last.current, limit: 1000 });
      if (g !== gen.current || page.length === 0) return;
      last.current = page[page.length - 1]!.seq;
      setRows((r) => [...r, ...page]);
    } catch (e) {
      setError(errorText(e));
    }
  }, [filterQuery]);

  useEffect(() => {
    if (!follow || from === undefined) return;
    const t = setInterval(() => void newer(), 3000);
    return () => clearInterval(t);
  }, [follow, from, newer]);
  useLive(['review', 'grant', 'revocation', 'session'], () => {
    if (follow) void newer();
  });

  const apply = (e: FormEvent) => {
    e.preventDefault();
    navigate('audit', { ...form, from: fromParam ?? undefined });
  };
  const clear = () => navigate('audit');
  const older = () => navigate('audit', { ...applied, from: String(Math.max(0, (from ?? 0) - WINDOW)) });

  const exportJsonl = async () => {
    setExporting('Exporting…');
    try {
      const lines: string[] = [];
      let after = 0;
      for (;;) {
        const page = await apiGet<AuditEvent[]>('/api/audit', { ...filterQuery(), after, limit: EXPORT_PAGE });
        for (const e of page) lines.push(JSON.stringify(e));
        setExporting(`Exporting… ${lines.length} events`);
        if (page.length < EXPORT_PAGE) break;
        after = page[page.length - 1]!.seq;
      }
      const blob = new Blob(lines.length ? [`${lines.join('\n')}\n`] : [], { type: 'application/x-ndjson' });
      const url = URL.createObjectURL(blob);
      const a = document.createElement('a');
      a.href = url;
      a.download = `gatehouse-audit-${new Date().toISOString().replace(/[:.]/g, '-')}.jsonl`;
      document.body.appendChild(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
      setExporting(`Exported ${lines.length} events.`);
    } catch (e) {
      setExporting(undefined);
      setError(errorText(e));
    }
  };

  const set = (k: keyof Filters) => (e: { target: { value: string } }) => setForm({ ...form, [k]: e.target.value });
  const v = verify.data;

  return (
    <section>
      <PageTitle title="Audit">Audit log</PageTitle>
      <div className={`verify ${v ? (v.ok ? 'verify-ok' : 'verify-broken') : ''}`} role="status" aria-live="polite">
        <h2>Hash chain</h2>
        {verify.loading && !v && <p>Verifying…</p>}
        <ErrorBox>{verify.error}</ErrorBox>
        {v && (
          <p className="verify-result">
            {v.ok ? (
              <>
                <strong>Intact.</strong> {v.events} events verified, each carrying the hash of the one before; {v.checkpoints} signed checkpoint{v.checkpoints === 1 ? '' : 's'}.
              </>
            ) : (
              <>
                <strong>Broken</strong> at event #{v.first_broken}: the log was altered after it was written. {v.events} events, {v.checkpoints} checkpoints.
              </>
            )}
          </p>
        )}
        <button type="button" className="secondary small" onClick={() => verify.reload()} disabled={verify.loading}>
          Verify again
        </button>
      </div>

      <h2>Events</h2>
      <form className="filters" onSubmit={apply} aria-label="Filter audit events">
        <div className="field">
          <label htmlFor="a-type">Type</label>
          <input id="a-type" type="text" list="audit-types" value={form.type} onChange={set('type')} />
          <datalist id="audit-types">
            {TYPES.map((t) => (
              <option key={t} value={t} />
            ))}
          </datalist>
        </div>
        <div className="field">
          <label htmlFor="a-actor">Actor</label>
          <input id="a-actor" type="text" value={form.actor} onChange={set('actor')} />
        </div>
        <div className="field">
          <label htmlFor="a-connection">Connection</label>
          <input id="a-connection" type="text" value={form.connection} onChange={set('connection')} />
        </div>
        <div className="field">
          <label htmlFor="a-session">Session</label>
          <input id="a-session" type="text" value={form.session} onChange={set('session')} />
        </div>
        <div className="field buttons">
          <button type="submit" className="primary">
            Apply
          </button>
          <button type="button" className="secondary" onClick={clear}>
            Clear
          </button>
        </div>
      </form>
      <div className="toolbar">
        <label className="check">
          <input type="checkbox" checked={follow} onChange={(e) => setFollow(e.target.checked)} /> Follow new events
        </label>
        <button type="button" className="secondary small" onClick={older} disabled={from === undefined || from === 0}>
          Show older
        </button>
        <button type="button" className="primary small" onClick={() => void exportJsonl()} disabled={exporting === 'Exporting…'} aria-describedby="export-hint">
          Export JSON lines
        </button>
        <span id="export-hint" className="hint">
          every event that matches the filters, one JSON object per line
        </span>
        {exporting && (
          <span role="status" className="status-inline">
            {exporting}
          </span>
        )}
      </div>
      <ErrorBox>{error}</ErrorBox>
      <p className="hint">
        {from === undefined ? 'Loading…' : `Events after #${from}${loading ? ' (loading…)' : ''}, newest first: ${rows.length} shown.`}
      </p>
      {rows.length > 0 && (
        <div className="table-wrap">
          <table className="audit">
            <caption className="visually-hidden">Audit events, newest first</caption>
            <thead>
              <tr>
                <th scope="col">#</th>
                <th scope="col">Time</th>
                <th scope="col">Type</th>
                <th scope="col">Actor</th>
                <th scope="col">Connection</th>
                <th scope="col">Details</th>
              </tr>
            </thead>
            <tbody>
              {[...rows].reverse().map((e) => (
                <tr key={e.seq}>
                  <td>{e.seq}</td>
                  <td className="nowrap">{dateTime(e.ts)}</td>
                  <td>
                    <code>{e.type}</code>
                  </td>
                  <td>{e.actor ?? '—'}</td>
                  <td>{e.connection ?? '—'}</td>
                  <td>
                    <details>
                      <summary>{summary(e)}</summary>
                      {e.session_id && (
                        <p>
                          Session <a href={href(`sessions/${e.session_id}`)}>{e.session_id}</a>
                        </p>
                      )}
                      <pre className="code small">{JSON.stringify(e.data, null, 2)}</pre>
                      <p className="hash">
                        hash <code>{e.hash}</code>
                        <br />
                        previous <code>{e.prev_hash}</code>
                      </p>
                    </details>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

function summary(e: AuditEvent): string {
  const d = e.data;
  if (e.type === 'command') return `${String(d.effect ?? '')} ${String(d.command ?? '')}`.slice(0, 160);
  const s = JSON.stringify(d);
  return s.length > 160 ? `${s.slice(0, 157)}…` : s;
}
