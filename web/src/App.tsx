import { useEffect, useState, type MouseEvent } from 'react';
import { apiGet, errorText } from './api';
import { completeSignIn, signOut, useAuth } from './auth';
import { ErrorBox } from './components/ui';
import { hasRole, MeContext, type Me } from './hooks';
import { useLiveState } from './live';
import { href, navigate, useRoute } from './router';
import { AuditPage } from './pages/Audit';
import { GrantsPage } from './pages/Grants';
import { ReviewsPage } from './pages/Reviews';
import { SessionReplay } from './pages/SessionReplay';
import { SessionsPage } from './pages/Sessions';
import { SignIn } from './pages/SignIn';

interface Page {
  id: string;
  label: string;
  role: 'approver' | 'auditor';
}

/** Approvers see reviews and grants, auditors sessions and audit, admins everything (admin implies both). */
const PAGES: Page[] = [
  { id: 'reviews', label: 'Reviews', role: 'approver' },
  { id: 'grants', label: 'Grants', role: 'approver' },
  { id: 'sessions', label: 'Sessions', role: 'auditor' },
  { id: 'audit', label: 'Audit', role: 'auditor' },
];

export function App() {
  const { session } = useAuth();
  const [callbackDone, setCallbackDone] = useState(false);
  const [me, setMe] = useState<Me | undefined>(undefined);
  const [meError, setMeError] = useState<string | undefined>(undefined);

  useEffect(() => {
    void completeSignIn().finally(() => setCallbackDone(true));
  }, []);

  useEffect(() => {
    setMe(undefined);
    setMeError(undefined);
    if (!session) return;
    apiGet<Me>('/api/whoami').then(setMe, (e: unknown) => setMeError(errorText(e)));
  }, [session]);

  useEffect(() => {
    if (!session) return;
    const t = setTimeout(() => signOut('Your sign-in has expired. Sign in again.'), Math.max(0, session.expiresAt - Date.now()));
    return () => clearTimeout(t);
  }, [session]);

  if (!callbackDone) return <p className="loading">Signing in…</p>;
  if (!session) return <SignIn />;
  if (meError) {
    return (
      <main className="signin">
        <ErrorBox>{meError}</ErrorBox>
        <button type="button" onClick={() => signOut()}>
          Sign out
        </button>
      </main>
    );
  }
  if (!me) return <p className="loading">Loading…</p>;
  return (
    <MeContext.Provider value={me}>
      <Shell me={me} />
    </MeContext.Provider>
  );
}

function Shell({ me }: { me: Me }) {
  const route = useRoute();
  const pages = PAGES.filter((p) => hasRole(me, p.role));
  const current = route.path[0];
  const page = PAGES.find((p) => p.id === current);

  useEffect(() => {
    if (!page && pages[0]) navigate(pages[0].id, undefined, true);
  }, [page, pages]);

  const skip = (e: MouseEvent) => {
    e.preventDefault();
    document.getElementById('main')?.focus();
  };

  return (
    <>
      <a className="skip-link" href="#main" onClick={skip}>
        Skip to content
      </a>
      <header className="top">
        <div className="brand" aria-label="Gatehouse console">
          Gatehouse
        </div>
        <nav aria-label="Main">
          <ul>
            {pages.map((p) => (
              <li key={p.id}>
                <a href={href(p.id)} aria-current={p.id === current ? 'page' : undefined}>
                  {p.label}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <LiveIndicator />
        <div className="user">
          <span className="who" title={me.identity.iss}>
            {me.identity.sub}
          </span>
          <span className="roles">{me.roles.filter((r) => r !== 'agent').join(', ') || 'no console role'}</span>
          <button type="button" className="secondary small" onClick={() => signOut('You signed out.')}>
            Sign out
          </button>
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        {pages.length === 0 ? (
          <NoRole me={me} />
        ) : !page ? null : !hasRole(me, page.role) ? (
          <Forbidden page={page} />
        ) : page.id === 'reviews' ? (
          <ReviewsPage id={route.path[1]} />
        ) : page.id === 'grants' ? (
          <GrantsPage id={route.path[1]} />
        ) : page.id === 'sessions' ? (
          route.path[1] ? (
            <SessionReplay id={route.path[1]} />
          ) : (
            <SessionsPage query={route.query} />
          )
        ) : (
          <AuditPage />
        )}
      </main>
    </>
  );
}

function LiveIndicator() {
  const state = useLiveState();
  const text = state === 'live' ? 'Live' : state === 'off' ? 'Not live' : state === 'connecting' ? 'Connecting…' : 'Reconnecting…';
  return (
    <div className={`live live-${state}`} title="Live updates from the gateway">
      <span aria-hidden="true" className="dot" />
      {text}
    </div>
  );
}

function NoRole({ me }: { me: Me }) {
  return (
    <section>
      <h1>No console role</h1>
      <p>
        You are signed in as <strong>{me.identity.sub}</strong> (groups: {me.identity.groups.join(', ') || 'none'}), but the gateway gives you no console role. An administrator can add your
        group or subject to <code>roles:</code> in <code>gatehouse.yaml</code>: <code>approver</code> for reviews and grants, <code>auditor</code> for sessions and audit, <code>admin</code> for
        everything.
      </p>
    </section>
  );
}

function Forbidden({ page }: { page: Page }) {
  return (
    <section>
      <h1>{page.label}</h1>
      <p className="notice">This page needs the {page.role} role, which you do not have.</p>
    </section>
  );
}
