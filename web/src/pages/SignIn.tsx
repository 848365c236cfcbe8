import { useEffect, useState } from 'react';
import { beginSignIn, fetchConsoleConfig, useAuth, type ConsoleConfig, type Provider } from '../auth';
import { ErrorBox } from '../components/ui';

export function SignIn() {
  const { notice } = useAuth();
  const [config, setConfig] = useState<ConsoleConfig | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    document.title = 'Sign in · Gatehouse';
    fetchConsoleConfig().then(setConfig, (e: unknown) => setError((e as Error).message));
  }, []);

  const go = (p: Provider) => {
    setBusy(true);
    beginSignIn(p).catch((e: unknown) => {
      setBusy(false);
      setError((e as Error).message);
    });
  };

  return (
    <main className="signin" id="main">
      <div className="signin-card">
        <p className="brand-large" aria-hidden="true">
          Gatehouse
        </p>
        <h1>Sign in to the console</h1>
        <p>Approve or deny what agents ask to do, grant and revoke access, replay sessions and check the audit log.</p>
        {notice && (
          <p className="notice" role="status">
            {notice}
          </p>
        )}
        <ErrorBox>{error ?? config?.error}</ErrorBox>
        {!config && !error && <p>Loading…</p>}
        {config?.providers.map((p) => (
          <div key={p.id} className="provider">
            <button type="button" className="primary wide" disabled={busy} onClick={() => go(p)}>
              Sign in with {p.label}
            </button>
            {p.demo && <p className="hint">Demo mode: the development issuer lets you pick who you are. Never use it in production.</p>}
          </div>
        ))}
      </div>
    </main>
  );
}
