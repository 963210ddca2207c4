'use client';
import type { Alert } from '@rdmaq/shared';
import Link from 'next/link';
import { usePathname } from 'next/navigation';
import { type ReactNode, useMemo } from 'react';
import { AdminNavItems } from '@/components/admin/AdminNav';
import { api } from '@/lib/api';
import { formatAgo, formatDurationS, formatTimestamp } from '@/lib/format';
import { useConnection, useLiveView } from './LiveProvider';
import { ThemeToggle } from './ThemeToggle';
import { useNow } from './useNow';

const NAV = [
  { href: '/', label: 'Overview' },
  { href: '/alerts', label: 'Alerts' },
];

/**
 * The top bar's freshness: "live · updated 1 s ago" while frames arrive, "stale · no update for 12 s" by
 * itself when the hub goes quiet (the page pings it every second, so silence means trouble), "reconnecting"
 * when the socket dropped.
 */
function ConnectionState() {
  const { status, stale, lastFrameAt } = useConnection();
  const now = useNow(1000);
  const last = lastFrameAt();
  const age = last > 0 ? Math.max(0, (now - last) / 1000) : null;
  const shown = status === 'open' && stale ? 'stale' : status;
  const label =
    shown === 'open' ? 'live' : shown === 'stale' ? 'stale' : shown === 'unauthorized' ? 'signed out' : shown;
  const detail =
    age === null
      ? ''
      : shown === 'open'
        ? `updated ${age < 1.5 ? 'now' : `${Math.round(age)} s ago`}`
        : `no update for ${formatDurationS(age)}`;
  return (
    <span
      className={`conn conn-${shown}`}
      role="status"
      data-testid="connection"
      data-state={shown}
      title={last > 0 ? `last frame from the hub: ${formatTimestamp(last)}` : 'no frame from the hub yet'}
    >
      <span className="dot" aria-hidden="true" />
      {label}
      {detail && <span className="conn-age"> · {detail}</span>}
    </span>
  );
}

export function Shell({ children }: { children: ReactNode }) {
  const path = usePathname();
  const { user } = useConnection();
  return (
    <>
      <a href="#main" className="skip">
        Skip to content
      </a>
      <header className="topbar">
        <Link href="/" className="brand" aria-label="rdmaq overview">
          <span className="brand-mark" aria-hidden="true">
            ◆
          </span>{' '}
          rdmaq
        </Link>
        <nav aria-label="Main">
          <ul>
            {NAV.map((n) => {
              const active = n.href === '/' ? path === '/' : path.startsWith(n.href);
              return (
                <li key={n.href}>
                  <Link href={n.href} aria-current={active ? 'page' : undefined}>
                    {n.label}
                    {n.href === '/alerts' && <FiringBadge />}
                  </Link>
                </li>
              );
            })}
            <AdminNavItems />
          </ul>
        </nav>
        <div className="topbar-right">
          <ConnectionState />
          {user && (
            <span className="user" title={`role: ${user.role}`}>
              {user.name} <span className="role">{user.role}</span>
            </span>
          )}
          <ThemeToggle />
          <button
            type="button"
            className="btn btn-ghost"
            onClick={async () => {
              await api('/api/auth/logout', { method: 'POST' }).catch(() => undefined);
              window.location.assign('/login');
            }}
          >
            Sign out
          </button>
        </div>
      </header>
      <AlertBanner />
      <main id="main" tabIndex={-1}>
        {children}
      </main>
    </>
  );
}

function useFiring(): { firing: Alert[]; ready: boolean } {
  const { state } = useLiveView<'alerts'>('alerts');
  const firing = useMemo(
    () =>
      (state?.active ?? [])
        .filter((a) => a.state === 'firing')
        .sort((a, b) => sevRank(b.severity) - sevRank(a.severity) || (a.firedAt ?? 0) - (b.firedAt ?? 0)),
    [state],
  );
  return { firing, ready: state !== undefined };
}

function sevRank(s: string): number {
  return s === 'critical' ? 2 : s === 'warning' ? 1 : 0;
}

function FiringBadge() {
  const { firing } = useFiring();
  if (firing.length === 0) return null;
  return (
    <span className="badge badge-crit" data-testid="firing-badge">
      {firing.length}
      <span className="sr-only"> firing</span>
    </span>
  );
}

/** Firing alerts on every page: the worst first, unacknowledged ones highlighted. */
function AlertBanner() {
  const { firing } = useFiring();
  const now = useNow();
  if (firing.length === 0) return null;
  const unacked = firing.filter((a) => !a.ack).length;
  const worst = firing[0]!;
  return (
    <section
      className={`banner banner-${worst.severity}`}
      aria-label="Firing alerts"
      role="status"
      data-testid="alert-banner"
    >
      <strong>
        {firing.length} alert{firing.length === 1 ? '' : 's'} firing
        {unacked < firing.length ? ` (${firing.length - unacked} acknowledged)` : ''}
      </strong>
      <ul className="banner-list">
        {firing.slice(0, 3).map((a) => (
          <li key={a.id} className={a.ack ? 'acked' : ''}>
            <span className={`sev sev-${a.severity}`}>{a.severity}</span> {a.summary}{' '}
            <span className="muted">since {formatAgo(a.firedAt, now)}</span>
            {a.ack && <span className="muted"> · ack by {a.ack.by}</span>}
          </li>
        ))}
        {firing.length > 3 && <li className="muted">and {firing.length - 3} more</li>}
      </ul>
      <Link href="/alerts" className="btn btn-small">
        Open alerts
      </Link>
    </section>
  );
}
