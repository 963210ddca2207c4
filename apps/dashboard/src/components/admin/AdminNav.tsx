'use client';
import Link from 'next/link';
import { usePathname } from 'next/navigation';
import { atLeast, useMe } from './useMe';

/**
 * Header entries after Overview and Alerts: "Rules" for everyone (viewers read, operators edit) and
 * "Admin" for admins only (the hub refuses the admin API to anyone else anyway).
 */
export function AdminNavItems() {
  const path = usePathname();
  const { me } = useMe();
  const items = [{ href: '/rules', label: 'Rules' }];
  if (atLeast(me, 'admin')) items.push({ href: '/admin', label: 'Admin' });
  return (
    <>
      {items.map((n) => (
        // data-role: empty until the hub said who this is (tests wait on it before checking what is absent).
        <li key={n.href} data-role={me?.role ?? ''}>
          <Link
            href={n.href}
            aria-current={path === n.href || path.startsWith(`${n.href}/`) ? 'page' : undefined}
            data-testid={`nav-${n.label.toLowerCase()}`}
          >
            {n.label}
          </Link>
        </li>
      ))}
    </>
  );
}
