'use client';
import './globals.css';
import '@/components/admin/admin.css';

/**
 * The last resort, when the root layout itself failed: it replaces the whole document, so it brings its
 * own <html> and styles, and plain links (the router may be what broke).
 */
export default function GlobalError({
  error,
  reset,
}: {
  error: Error & { digest?: string };
  reset: () => void;
}) {
  return (
    <html lang="en" data-theme="dark">
      <body>
        <div className="standalone">
          <section className="panel error-page" aria-labelledby="gerr-h" data-testid="error-page">
            <p className="error-code mono">error</p>
            <h1 id="gerr-h">The dashboard failed to load</h1>
            <p>
              Reload the page; if it keeps failing, check that the dashboard server is running and see its log
              {error.digest ? (
                <>
                  {' '}
                  under <span className="mono">{error.digest}</span>
                </>
              ) : null}
              .
            </p>
            <div className="error-actions">
              <button type="button" className="btn" onClick={reset}>
                Try again
              </button>
              <a href="/">Overview</a>
              <a href="/alerts">Alerts</a>
            </div>
          </section>
        </div>
      </body>
    </html>
  );
}
