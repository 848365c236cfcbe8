import { useId, useState } from 'react';
import { apiGet, apiSend, errorText } from '../api';
import { Announcer, ErrorBox, PageTitle, StateBadge } from '../components/ui';
import { dateTime, duration, since } from '../format';
import { hasRole, useMe, useNow, useResource } from '../hooks';
import { useLive } from '../live';
import type { Grant } from '../types';

export function GrantsPage({ id }: { id: string | undefined }) {
  const grants = useResource(() => apiGet<Grant[]>('/api/grants', { limit: 300 }), 'grants');
  const [message, setMessage] = useState('');
  const now = useNow(1000);
  useLive(['grant'], () => grants.reload());

  const done = (msg: string) => {
    setMessage(msg);
    grants.reload();
  };

  const all = grants.data ?? [];
  const pending = all.filter((g) => g.state === 'pending');
  const active = all.filter((g) => g.state === 'approved' && g.ends_at !== null && new Date(g.ends_at).getTime() > now);
  const past = all.filter((g) => !pending.includes(g) && !active.includes(g)).slice(0, 30);

  return (
    <section>
      <PageTitle title="Grants">Access grants</PageTitle>
      <p className="lead">Just-in-time access windows agents asked for. A window starts when it is approved; revoking it ends the agent&apos;s sessions that depend on it.</p>
      <Announcer message={message} />
      {message && (
        <p className="status" aria-hidden="true">
          {message}
        </p>
      )}
      <ErrorBox>{grants.error}</ErrorBox>

      <h2>Requests</h2>
      {grants.data && pending.length === 0 && <p className="empty">No grant request is waiting.</p>}
      {pending.length > 0 && (
        <div className="table-wrap">
          <table>
            <caption className="visually-hidden">Grant requests waiting for a decision</caption>
            <thead>
              <tr>
                <th scope="col">Agent</th>
                <th scope="col">Connection</th>
                <th scope="col">For</th>
                <th scope="col">Their reason</th>
                <th scope="col">Waiting</th>
                <th scope="col">Decision</th>
              </tr>
            </thead>
            <tbody>
              {pending.map((g) => (
                <tr key={g.id} className={g.id === id ? 'highlight' : undefined}>
                  <td>{g.subject}</td>
                  <td>{g.connection}</td>
                  <td>{duration(g.duration_seconds * 1000)}</td>
                  <td>{g.reason}</td>
                  <td>
                    <time dateTime={g.requested_at}>{duration(since(g.requested_at, now))}</time>
                  </td>
                  <td>
                    <GrantDecision grant={g} onDone={done} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}

      <h2>Active windows</h2>
      {grants.data && active.length === 0 && <p className="empty">No access window is open.</p>}
      {active.length > 0 && (
        <div className="table-wrap">
          <table>
            <caption className="visually-hidden">Open access windows</caption>
            <thead>
              <tr>
                <th scope="col">Agent</th>
                <th scope="col">Connection</th>
                <th scope="col">Approved by</th>
                <th scope="col">Ends</th>
                <th scope="col">Time left</th>
                <th scope="col">Revoke</th>
              </tr>
            </thead>
            <tbody>
              {active.map((g) => (
                <tr key={g.id} className={g.id === id ? 'highlight' : undefined}>
                  <td>{g.subject}</td>
                  <td>{g.connection}</td>
                  <td>{g.decided_by ?? '—'}</td>
                  <td>{dateTime(g.ends_at)}</td>
                  <td>
                    <time className="countdown" dateTime={g.ends_at ?? undefined}>
                      {duration(-since(g.ends_at, now))}
                    </time>
                  </td>
                  <td>
                    <GrantRevoke grant={g} onDone={done} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}

      <h2>Recent</h2>
      {grants.data && past.length === 0 && <p className="empty">No past grants.</p>}
      {past.length > 0 && (
        <div className="table-wrap">
          <table>
            <caption className="visually-hidden">Recent grants</caption>
            <thead>
              <tr>
                <th scope="col">Requested</th>
                <th scope="col">Agent</th>
                <th scope="col">Connection</th>
                <th scope="col">State</th>
                <th scope="col">By</th>
                <th scope="col">Reason</th>
              </tr>
            </thead>
            <tbody>
              {past.map((g) => (
                <tr key={g.id}>
                  <td>{dateTime(g.requested_at)}</td>
                  <td>{g.subject}</td>
                  <td>{g.connection}</td>
                  <td>
                    <StateBadge state={g.state === 'approved' ? 'ended' : g.state} />
                  </td>
                  <td>{g.revoked_by ?? g.decided_by ?? '—'}</td>
                  <td>{g.decision_reason ?? g.reason}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

function GrantDecision({ grant: g, onDone }: { grant: Grant; onDone: (msg: string) => void }) {
  const me = useMe();
  const uid = useId();
  const [reason, setReason] = useState('');
  const [error, setError] = useState<string | undefined>(undefined);
  const [busy, setBusy] = useState(false);
  if (!hasRole(me, 'approver')) return <span className="muted">—</span>;
  const label = `${g.subject} on ${g.connection}`;
  const decide = async (action: 'approve' | 'deny') => {
    if (action === 'deny' && reason.trim() === '') {
      setError('Give a reason for the denial.');
      return;
    }
    setBusy(true);
    setError(undefined);
    try {
      await apiSend('POST', `/api/grants/${encodeURIComponent(g.id)}/${action}`, reason.trim() ? { reason: reason.trim() } : {});
      onDone(action === 'approve' ? `Approved access for ${label} for ${duration(g.duration_seconds * 1000)}.` : `Denied access for ${label}.`);
    } catch (e) {
      setError(errorText(e));
    } finally {
      setBusy(false);
    }
  };
  return (
    <div className="row-form">
      <label className="visually-hidden" htmlFor={`${uid}-r`}>
        Reason for {label}
      </label>
      <input id={`${uid}-r`} type="text" placeholder="Reason" value={reason} onChange={(e) => setReason(e.target.value)} />
      <button type="button" className="approve small" disabled={busy} onClick={() => void decide('approve')} aria-label={`Approve ${label}`}>
        Approve
      </button>
      <button type="button" className="deny small" disabled={busy} onClick={() => void decide('deny')} aria-label={`Deny ${label}`}>
        Deny
      </button>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
    </div>
  );
}

function GrantRevoke({ grant: g, onDone }: { grant: Grant; onDone: (msg: string) => void }) {
  const me = useMe();
  const uid = useId();
  const [reason, setReason] = useState('');
  const [error, setError] = useState<string | undefined>(undefined);
  const [busy, setBusy] = useState(false);
  if (!hasRole(me, 'approver') && !hasRole(me, 'admin')) return <span className="muted">—</span>;
  const label = `${g.subject} on ${g.connection}`;
  const revoke = async () => {
    setBusy(true);
    setError(undefined);
    try {
      await apiSend('DELETE', `/api/grants/${encodeURIComponent(g.id)}${reason.trim() ? `?reason=${encodeURIComponent(reason.trim())}` : ''}`);
      onDone(`Revoked access for ${label}; its sessions end now.`);
    } catch (e) {
      setError(errorText(e));
    } finally {
      setBusy(false);
    }
  };
  return (
    <div className="row-form">
      <label className="visually-hidden" htmlFor={`${uid}-r`}>
        Reason for revoking {label}
      </label>
      <input id={`${uid}-r`} type="text" placeholder="Reason" value={reason} onChange={(e) => setReason(e.target.value)} />
      <button type="button" className="deny small" disabled={busy} onClick={() => void revoke()} aria-label={`Revoke ${label}`}>
        Revoke
      </button>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
    </div>
  );
}
