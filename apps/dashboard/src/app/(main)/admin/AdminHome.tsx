'use client';
import Link from 'next/link';
import { useEffect, useState } from 'react';
import type { AuditEntry, TokenRow, UserRow } from '@/components/admin/types';
import { describeAction } from '@/components/admin/types';
import { useNow } from '@/components/useNow';
import { api } from '@/lib/api';
import { formatAgo } from '@/lib/format';

/** The admin index: what each section holds, and the latest changes. */
export function AdminHome() {
  const [tokens, setTokens] = useState<TokenRow[] | null>(null);
  const [users, setUsers] = useState<UserRow[] | null>(null);
  const [recent, setRecent] = useState<AuditEntry[] | null>(null);
  const [err, setErr] = useState<string | null>(null);
  const now = useNow();
  useEffect(() => {
    const fail = (e: Error) => setErr(e.message);
    api<{ tokens: TokenRow[] }>('/api/agent-tokens')
      .then((r) => setTokens(r.tokens))
      .catch(fail);
    api<{ users: UserRow[] }>('/api/users')
      .then((r) => setUsers(r.users))
      .catch(fail);
    api<{ entries: AuditEntry[] }>('/api/audit?limit=8')
      .then((r) => setRecent(r.entries))
      .catch(fail);
  }, []);
  const active = tokens?.filter((t) => t.revokedAt === null) ?? [];
  return (
    <>
      <h1>Admin</h1>
      {err && (
        <p className="error" role="alert">
          {err}
        </p>
      )}
      <div className="cards" style={{ marginBottom: 16 }}>
        <Link href="/admin/tokens" className="card" data-testid="card-tokens">
          <strong>Agent tokens</strong>
          <span className="muted">
            {tokens ? `${active.length} active, ${tokens.length - active.length} revoked` : '…'} · create one
            for each host or rack, revoke a leaked one
          </span>
        </Link>
        <Link href="/admin/users" className="card" data-testid="card-users">
          <strong>Users</strong>
          <span className="muted">
            {users ? `${users.length} (${users.filter((u) => u.role === 'admin').length} admin)` : '…'} ·
            roles: viewer reads, operator acts on alerts and rules, admin manages access
          </span>
        </Link>
        <Link href="/admin/audit" className="card" data-testid="card-audit">
          <strong>Audit trail</strong>
          <span className="muted">who changed what and when</span>
        </Link>
        <Link href="/rules" className="card" data-testid="card-rules">
          <strong>Alert rules</strong>
          <span className="muted">metric, threshold, hysteresis, for, severity, match</span>
        </Link>
      </div>
      <section className="panel" aria-labelledby="recent-h">
        <div className="panel-head">
          <h2 id="recent-h">Latest changes</h2>
          <Link href="/admin/audit">All →</Link>
        </div>
        {recent && recent.length === 0 && <p className="muted">Nothing recorded yet.</p>}
        {recent && recent.length > 0 && (
          <ul style={{ margin: 0, paddingLeft: 18 }}>
            {recent.map((e) => (
              <li key={e.id}>
                <strong>{e.user || '—'}</strong> {describeAction(e)}{' '}
                <span className="muted">{formatAgo(e.ts, now)}</span>
              </li>
            ))}
          </ul>
        )}
      </section>
    </>
  );
}
