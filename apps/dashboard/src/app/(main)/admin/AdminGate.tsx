'use client';
import Link from 'next/link';
import { usePathname } from 'next/navigation';
import type { ReactNode } from 'react';
import { ErrorView } from '@/components/ErrorView';
import '@/components/admin/admin.css';
import { atLeast, useMe } from '@/components/admin/useMe';

const SECTIONS = [
  { href: '/admin', label: 'Overview' },
  { href: '/admin/tokens', label: 'Agent tokens' },
  { href: '/admin/users', label: 'Users' },
  { href: '/admin/audit', label: 'Audit trail' },
  { href: '/rules', label: 'Alert rules' },
];

/** Admin pages: a forbidden page for anyone but admins (no admin control is drawn), else a section nav. */
export function AdminGate({ children }: { children: ReactNode }) {
  const path = usePathname();
  const { me, error } = useMe();
  if (error) {
    return (
      <p className="error" role="alert">
        {error}
      </p>
    );
  }
  if (!me) return <p className="muted">Checking your role…</p>;
  if (!atLeast(me, 'admin')) {
    return (
      <ErrorView code="403" title="Admins only" testId="forbidden">
        <p>
          You are signed in as <strong>{me.name}</strong> with the <strong>{me.role}</strong> role. Agent
          tokens, users and the audit trail need the admin role; ask an admin to change your role.
        </p>
      </ErrorView>
    );
  }
  return (
    <>
      <nav aria-label="Admin sections">
        <ul className="subnav">
          {SECTIONS.map((s) => (
            <li key={s.href}>
              <Link href={s.href} aria-current={path === s.href ? 'page' : undefined}>
                {s.label}
              </Link>
            </li>
          ))}
        </ul>
      </nav>
      {children}
    </>
  );
}
