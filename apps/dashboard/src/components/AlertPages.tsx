'use client';
import type { Alert } from '@rdmaq/shared';
import { alertLinks } from '@rdmaq/shared/format';
import Link from 'next/link';
import { StatePill } from './StatePill';

/** Links to the pages an alert concerns: its link end, its node, and the link's other host. */
export function AlertPages({ alert }: { alert: Alert }) {
  const p = alertLinks(alert.labels);
  if (!p.link && !p.node) return null;
  return (
    <div className="alert-pages" style={{ fontSize: 12 }}>
      {p.link && (
        <Link href={p.link} data-testid="alert-link-page">
          link {alert.labels.link}
        </Link>
      )}
      {p.link && p.node && ' · '}
      {p.node && (
        <Link href={p.node} data-testid="alert-node-page">
          node {alert.labels.node}
        </Link>
      )}
      {p.peer && (
        <>
          {' · '}
          <Link href={p.peer}>peer {alert.labels.peer}</Link>
        </>
      )}
    </div>
  );
}

/** The alerts firing on one link end or node, each with links to its pages (link and node views). */
export function AlertList({ alerts }: { alerts: readonly Alert[] }) {
  return (
    <section className="panel" aria-labelledby="la-h">
      <h2 id="la-h">Active alerts here</h2>
      <ul style={{ margin: 0, paddingLeft: 18 }}>
        {alerts.map((a) => (
          <li key={a.id}>
            <span className={`sev sev-${a.severity}`}>{a.severity}</span> <StatePill state={a.state} />{' '}
            {a.summary} <Link href={`/alerts?id=${encodeURIComponent(a.id)}`}>on the alerts page</Link>
            <AlertPages alert={a} />
          </li>
        ))}
      </ul>
    </section>
  );
}
