'use client';
import type { Alert } from '@rdmaq/shared';
import { alertLinks } from '@rdmaq/shared/format';
import Link from 'next/link';

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
