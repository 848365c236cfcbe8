import { useEffect, useId, useRef, useState } from 'react';
import { apiGet, apiSend, errorText } from '../api';
import { Announcer, Code, ErrorBox, PageTitle, StateBadge } from '../components/ui';
import { dateTime, duration, since } from '../format';
import { hasRole, useMe, useNow, useResource } from '../hooks';
import { useLive } from '../live';
import { href } from '../router';
import type { Review } from '../types';

export function ReviewsPage({ id }: { id: string | undefined }) {
  const pending = useResource(() => apiGet<Review[]>('/api/reviews', { state: 'pending', limit: 200 }), 'pending');
  const recent = useResource(() => apiGet<Review[]>('/api/reviews', { limit: 30 }), 'recent');
  const single = useResource(() => (id ? apiGet<Review>(`/api/reviews/${encodeURIComponent(id)}`) : Promise.resolve(undefined)), id ?? '');
  const [message, setMessage] = useState('');
  const known = useRef<Set<string> | undefined>(undefined);
  const now = useNow(1000);

  useLive(['review'], () => {
    pending.reload();
    recent.reload();
    if (id) single.reload();
  });

  const list = pending.data;
  useEffect(() => {
    if (!list) return;
    const ids = new Set(list.map((r) => r.id));
    if (known.current) {
      const fresh = list.filter((r) => !known.current!.has(r.id));
      if (fresh.length === 1) setMessage(`New review: ${fresh[0]!.subject} on ${fresh[0]!.connection}`);
      else if (fresh.length > 1) setMessage(`${fresh.length} new reviews`);
    }
    known.current = ids;
  }, [list]);

  const done = (msg: string) => {
    setMessage(msg);
    pending.reload();
    recent.reload();
    if (id) single.reload();
  };

  const decided = (recent.data ?? []).filter((r) => r.state !== 'pending');
  const shown = id && single.data?.state !== 'pending' ? single.data : undefined;

  return (
    <section aria-labelledby="reviews-title">
      <PageTitle title="Reviews">
        <span id="reviews-title">Pending reviews</span>
      </PageTitle>
      <p className="lead">Commands agents are waiting on. New ones appear here by themselves; an approval lets the agent&apos;s command run at once.</p>
      <Announcer message={message} />
      {message && (
        <p className="status" aria-hidden="true">
          {message}
        </p>
      )}
      {shown && (
        <div className="focus-review">
          <h2>Review {shown.id}</h2>
          <ReviewCard review={shown} now={now} onDone={done} />
          <p>
            <a href={href('reviews')}>All pending reviews</a>
          </p>
        </div>
      )}
      <ErrorBox>{pending.error}</ErrorBox>
      {list && list.length === 0 && <p className="empty">No command is waiting for review.</p>}
      {list && list.length > 0 && (
        <ul className="cards" aria-label="Pending reviews" aria-busy={pending.loading}>
          {list.map((r) => (
            <li key={r.id}>
              <ReviewCard review={r} now={now} onDone={done} highlight={r.id === id} />
            </li>
          ))}
        </ul>
      )}
      <h2>Recently decided</h2>
      <ErrorBox>{recent.error}</ErrorBox>
      {decided.length === 0 ? (
        <p className="empty">Nothing decided recently.</p>
      ) : (
        <div className="table-wrap">
          <table>
            <caption className="visually-hidden">Recently decided reviews</caption>
            <thead>
              <tr>
                <th scope="col">Requested</th>
                <th scope="col">Agent</th>
                <th scope="col">Connection</th>
                <th scope="col">Command</th>
                <th scope="col">State</th>
                <th scope="col">By</th>
                <th scope="col">Reason</th>
              </tr>
            </thead>
            <tbody>
              {decided.map((r) => (
                <tr key={r.id}>
                  <td>{dateTime(r.created_at)}</td>
                  <td>{r.subject}</td>
                  <td>{r.connection}</td>
                  <td>
                    <code className="truncate" title={r.command}>
                      {r.command}
                    </code>
                  </td>
                  <td>
                    <StateBadge state={r.state} />
                  </td>
                  <td>{r.decided_by ?? '—'}</td>
                  <td>{r.decision_reason ?? '—'}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

function ReviewCard({ review: r, now, onDone, highlight }: { review: Review; now: number; onDone: (msg: string) => void; highlight?: boolean }) {
  const me = useMe();
  const uid = useId();
  const titleId = `${uid}-title`;
  const reasonId = `${uid}-reason`;
  const errId = `${uid}-error`;
  const [reason, setReason] = useState('');
  const [error, setError] = useState<string | undefined>(undefined);
  const [busy, setBusy] = useState(false);
  const textarea = useRef<HTMLTextAreaElement>(null);
  const own = r.subject === me.identity.sub;
  const named = r.approvers.groups.length > 0 || r.approvers.subjects.length > 0;
  const namesMe = !named || r.approvers.subjects.includes(me.identity.sub) || r.approvers.groups.some((g) => me.identity.groups.includes(g));
  const pendingForApprover = r.state === 'pending' && hasRole(me, 'approver');
  const canDecide = pendingForApprover && namesMe && !own;

  const decide = async (action: 'approve' | 'deny') => {
    if (action === 'deny' && reason.trim() === '') {
      setError('Give a reason for the denial: the agent sees it.');
      textarea.current?.focus();
      return;
    }
    setBusy(true);
    setError(undefined);
    try {
      await apiSend('POST', `/api/reviews/${encodeURIComponent(r.id)}/${action}`, reason.trim() ? { reason: reason.trim() } : {});
      onDone(action === 'approve' ? `Approved: ${r.subject}'s command on ${r.connection} runs now.` : `Denied: ${r.subject} was told why.`);
    } catch (e) {
      setError(errorText(e));
    } finally {
      setBusy(false);
    }
  };

  const approvers = [...r.approvers.groups.map((g) => `group ${g}`), ...r.approvers.subjects].join(', ') || 'any approver';
  return (
    <article className={`card review${highlight ? ' highlight' : ''}`} aria-labelledby={titleId}>
      <header className="card-head">
        <h3 id={titleId}>
          {r.subject} → {r.connection}
        </h3>
        {r.state === 'pending' ? (
          <span className="waiting">
            waiting <time dateTime={r.created_at}>{duration(since(r.created_at, now))}</time>
          </span>
        ) : (
          <StateBadge state={r.state} />
        )}
      </header>
      <Code>{r.command}</Code>
      <dl className="facts">
        <dt>Agent</dt>
        <dd>
          {r.subject}
          {r.client_id && r.client_id !== r.subject ? ` (client ${r.client_id})` : ''}
        </dd>
        <dt>Connection</dt>
        <dd>
          {r.connection} <span className="muted">({r.protocol})</span>
        </dd>
        <dt>Rule</dt>
        <dd>
          <code>{r.rule}</code>
          {r.rule_reason ? `: ${r.rule_reason}` : ''}
        </dd>
        {r.justification && (
          <>
            <dt>Agent&apos;s reason</dt>
            <dd>{r.justification}</dd>
          </>
        )}
        <dt>Approvers</dt>
        <dd>
          {approvers}; {r.approvals.length} of {r.approvers.min_approvals} approval{r.approvers.min_approvals === 1 ? '' : 's'}
          {r.approvals.length > 0 ? ` (${r.approvals.map((a) => a.by).join(', ')})` : ''}
        </dd>
        <dt>Requested</dt>
        <dd>{dateTime(r.created_at)}</dd>
        {r.decided_by && (
          <>
            <dt>Decided by</dt>
            <dd>
              {r.decided_by}
              {r.decision_reason ? `: ${r.decision_reason}` : ''}
            </dd>
          </>
        )}
        {r.session_id && (
          <>
            <dt>Session</dt>
            <dd>{hasRole(me, 'auditor') ? <a href={href(`sessions/${r.session_id}`)}>{r.session_id}</a> : r.session_id}</dd>
          </>
        )}
      </dl>
      {pendingForApprover && !canDecide && (
        <p className="notice">{own ? 'This is your own request: someone else has to decide it.' : 'The rule names other approvers; a decision from you would be refused.'}</p>
      )}
      {canDecide && (
        <form className="decision" onSubmit={(e) => e.preventDefault()}>
          <label htmlFor={reasonId}>
            Reason <span className="hint">(required to deny; the agent sees it)</span>
          </label>
          <textarea
            id={reasonId}
            ref={textarea}
            rows={2}
            value={reason}
            onChange={(e) => setReason(e.target.value)}
            aria-invalid={error !== undefined && reason.trim() === '' ? true : undefined}
            aria-describedby={error ? errId : undefined}
          />
          <div className="actions">
            <button type="button" className="approve" disabled={busy} onClick={() => void decide('approve')} aria-describedby={titleId}>
              Approve
            </button>
            <button type="button" className="deny" disabled={busy} onClick={() => void decide('deny')} aria-describedby={titleId}>
              Deny
            </button>
          </div>
          {error && (
            <p className="error" role="alert" id={errId}>
              {error}
            </p>
          )}
        </form>
      )}
    </article>
  );
}
