import { useEffect, useRef, type ReactNode } from 'react';

export function ErrorBox({ children }: { children: ReactNode }) {
  if (!children) return null;
  return (
    <p className="error" role="alert">
      {children}
    </p>
  );
}

export function Notice({ children }: { children: ReactNode }) {
  return <p className="notice">{children}</p>;
}

const EFFECT_LABEL: Record<string, string> = { allow: 'Allowed', deny: 'Denied', review: 'Review', mask: 'Masked' };

/** A decision, in words and colour (the colour is never the only cue). */
export function Effect({ effect }: { effect: string }) {
  return <span className={`badge badge-${effect}`}>{EFFECT_LABEL[effect] ?? effect}</span>;
}

export function StateBadge({ state }: { state: string }) {
  return <span className={`badge state-${state}`}>{state}</span>;
}

/** The page heading; it takes focus when the page changes, so screen readers announce it. */
export function PageTitle({ children, title }: { children: ReactNode; title: string }) {
  const ref = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    document.title = `${title} · Gatehouse`;
    ref.current?.focus({ preventScroll: true });
  }, [title]);
  return (
    <h1 ref={ref} tabIndex={-1}>
      {children}
    </h1>
  );
}

/** A live region for short announcements ("Approved", "New review from agent-a"). */
export function Announcer({ message }: { message: string }) {
  return (
    <div className="visually-hidden" role="status" aria-live="polite" aria-atomic="true">
      {message}
    </div>
  );
}

export function Code({ children }: { children: string }) {
  return (
    <pre className="code">
      <code>{children}</code>
    </pre>
  );
}
