'use client';
import { useCallback, useEffect, useState } from 'react';
import { type AuditEntry, describeAction } from '@/components/admin/types';
import { useNow } from '@/components/useNow';
import { api } from '@/lib/api';
import { formatAgo, formatTimestamp } from '@/lib/format';

const PAGE = 50;

/** The audit trail, newest first, a page at a time (cursor pagination: `before` = the previous page's `next`). */
export function AuditView() {
  /** Cursors of the pages shown so far; the last is the current page's (undefined = newest). */
  const [cursors, setCursors] = useState<Array<number | undefined>>([undefined]);
  const [page, setPage] = useState<{ entries: AuditEntry[]; next?: number } | null>(null);
  const [err, setErr] = useState<string | null>(null);
  const now = useNow();
  const cursor = cursors.at(-1);
  const load = useCallback(() => {
    const q = new URLSearchParams({ limit: String(PAGE) });
    if (cursor !== undefined) q.set('before', String(cursor));
    api<{ entries: AuditEntry[]; next?: number }>(`/api/audit?${q}`)
      .then((r) => {
        setPage(r);
        setErr(null);
      })
      .catch((e: Error) => setErr(e.message));
  }, [cursor]);
  useEffect(load, [load]);

  return (
    <>
      <h1>Audit trail</h1>
      <p className="muted">
        Every change made through the dashboard or its API: agent tokens, users, alert rules, silences,
        acknowledgements, password changes. Secrets are never recorded.
      </p>
      <section className="panel" aria-labelledby="audit-h">
        <div className="panel-head">
          <h2 id="audit-h">
            {cursors.length === 1 ? 'Latest' : `Page ${cursors.length}`}
            {page ? ` · ${page.entries.length} entries` : ''}
          </h2>
          <button type="button" className="btn btn-small btn-ghost" onClick={load}>
            Refresh
          </button>
        </div>
        {err && (
          <p className="error" role="alert">
            {err}
          </p>
        )}
        {page && page.entries.length === 0 && <p className="muted">Nothing recorded yet.</p>}
        {page && page.entries.length > 0 && (
          <div className="table-wrap">
            <table data-testid="audit-table">
              <thead>
                <tr>
                  <th scope="col">When</th>
                  <th scope="col">Who</th>
                  <th scope="col">What</th>
                  <th scope="col">Action</th>
                  <th scope="col">Details</th>
                  <th scope="col">From</th>
                </tr>
              </thead>
              <tbody>
                {page.entries.map((e) => (
                  <tr key={e.id} data-action={e.action}>
                    <td title={formatTimestamp(e.ts)} style={{ whiteSpace: 'nowrap' }}>
                      {formatTimestamp(e.ts)}
                      <div className="muted">{formatAgo(e.ts, now)}</div>
                    </td>
                    <td>
                      {e.user || '—'}
                      {e.role && <span className="role">{e.role}</span>}
                    </td>
                    <td>{describeAction(e)}</td>
                    <td className="mono">{e.action}</td>
                    <td className="detail-json">
                      {Object.keys(e.detail).length ? JSON.stringify(e.detail) : ''}
                    </td>
                    <td className="mono muted">{e.address ?? ''}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
        <div className="pager">
          <button
            type="button"
            className="btn btn-small btn-ghost"
            disabled={cursors.length === 1}
            onClick={() => setCursors((c) => c.slice(0, -1))}
          >
            ← Newer
          </button>
          <button
            type="button"
            className="btn btn-small btn-ghost"
            disabled={page?.next === undefined}
            onClick={() => page?.next !== undefined && setCursors((c) => [...c, page.next])}
          >
            Older →
          </button>
        </div>
      </section>
    </>
  );
}
