'use client';
import Link from 'next/link';
import { useRouter } from 'next/navigation';
import type { ReactNode } from 'react';
import '@/components/admin/admin.css';

/** Where a lost operator most likely wants to go. */
const PLACES = [
  { href: '/', label: 'Overview' },
  { href: '/alerts', label: 'Alerts' },
  { href: '/rules', label: 'Rules' },
];

/**
 * The themed body of not-found, error and forbidden pages: what happened, what to do, and a way out
 * (back, or one of the main pages).
 */
export function ErrorView({
  code,
  title,
  children,
  retry,
  testId = 'error-page',
}: {
  code: string;
  title: string;
  children?: ReactNode;
  /** Shown as "Try again" (error boundaries pass their `reset`). */
  retry?: () => void;
  testId?: string;
}) {
  const router = useRouter();
  return (
    <section className="panel error-page" aria-labelledby="error-h" data-testid={testId}>
      <p className="error-code mono" aria-hidden="true">
        {code}
      </p>
      <h1 id="error-h">{title}</h1>
      <div className="error-text">{children}</div>
      <div className="error-actions">
        {retry && (
          <button type="button" className="btn" onClick={retry}>
            Try again
          </button>
        )}
        <button
          type="button"
          className="btn btn-ghost"
          onClick={() => (window.history.length > 1 ? router.back() : router.push('/'))}
        >
          ← Back
        </button>
        <nav aria-label="Go to">
          <ul className="error-places">
            {PLACES.map((p) => (
              <li key={p.href}>
                <Link href={p.href}>{p.label}</Link>
              </li>
            ))}
          </ul>
        </nav>
      </div>
    </section>
  );
}

/** Not-found body: names the path that was asked for. */
export function NotFoundView({ what }: { what?: string }) {
  return (
    <ErrorView code="404" title="Page not found" testId="not-found">
      <p>{what ?? 'There is no page at this address.'} It may have been moved, or the link is mistyped.</p>
    </ErrorView>
  );
}

/** Error-boundary body for one route segment (`where` names it: "this node page", …). */
export function SegmentError({
  error,
  reset,
  where,
}: {
  error: Error & { digest?: string };
  reset: () => void;
  where: string;
}) {
  return (
    <ErrorView code="error" title={`Something went wrong on ${where}`} retry={reset}>
      <p>
        The page failed while drawing; the hub and its data are not affected. Try again, or go back.
        {error.digest && (
          <>
            {' '}
            The server log has the details under <span className="mono">{error.digest}</span>.
          </>
        )}
      </p>
      {error.message && !error.digest && <p className="mono muted">{error.message.slice(0, 300)}</p>}
    </ErrorView>
  );
}
