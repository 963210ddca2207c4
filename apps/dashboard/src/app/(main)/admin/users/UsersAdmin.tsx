'use client';
import type { Role } from '@rdmaq/shared';
import { type FormEvent, useCallback, useEffect, useRef, useState } from 'react';
import { ConfirmDialog } from '@/components/admin/ConfirmDialog';
import type { UserRow } from '@/components/admin/types';
import { useMe } from '@/components/admin/useMe';
import { useNow } from '@/components/useNow';
import { api } from '@/lib/api';
import { formatAgo, formatTimestamp } from '@/lib/format';

const ROLES: Role[] = ['viewer', 'operator', 'admin'];
const ROLE_HELP: Record<Role, string> = {
  viewer: 'reads everything',
  operator: 'also acknowledges, silences and edits alert rules',
  admin: 'also manages users, agent tokens and reads the audit trail',
};

/** Users and roles: create, change role, reset password, delete (never yourself: the hub keeps one admin). */
export function UsersAdmin() {
  const { me } = useMe();
  const [users, setUsers] = useState<UserRow[] | null>(null);
  const [err, setErr] = useState<string | null>(null);
  const [note, setNote] = useState<string | null>(null);
  const [deleting, setDeleting] = useState<UserRow | null>(null);
  const [resetting, setResetting] = useState<UserRow | null>(null);
  const now = useNow();
  const load = useCallback(() => {
    api<{ users: UserRow[] }>('/api/users')
      .then((r) => setUsers(r.users))
      .catch((e: Error) => setErr(e.message));
  }, []);
  useEffect(load, [load]);
  const setRole = async (u: UserRow, role: Role) => {
    setErr(null);
    setNote(null);
    try {
      await api(`/api/users/${encodeURIComponent(u.name)}`, { method: 'PATCH', body: { role } });
      setNote(`${u.name} is now ${role}.`);
    } catch (e) {
      setErr((e as Error).message);
    }
    load();
  };

  return (
    <>
      <h1>Users</h1>
      <p className="muted">
        {ROLES.map((r, i) => (
          <span key={r}>
            {i > 0 && ' · '}
            <strong>{r}</strong> {ROLE_HELP[r]}
          </span>
        ))}
      </p>
      <CreateUser
        onCreated={(name) => {
          setNote(`User ${name} created.`);
          load();
        }}
      />
      <section className="panel" aria-labelledby="users-h">
        <h2 id="users-h">Users</h2>
        {err && (
          <p className="error" role="alert">
            {err}
          </p>
        )}
        {note && (
          <p className="ok-text" role="status">
            {note}
          </p>
        )}
        {users && (
          <div className="table-wrap">
            <table data-testid="users-table">
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Role</th>
                  <th scope="col">Created</th>
                  <th scope="col">
                    <span className="sr-only">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {users.map((u) => {
                  const self = u.name === me?.name;
                  return (
                    <tr key={u.name} data-user={u.name}>
                      <td>
                        {u.name}
                        {self && <span className="muted"> (you)</span>}
                      </td>
                      <td>
                        <select
                          aria-label={`Role of ${u.name}`}
                          value={u.role}
                          disabled={self}
                          title={self ? 'you cannot change your own role' : undefined}
                          onChange={(e) => setRole(u, e.target.value as Role)}
                        >
                          {ROLES.map((r) => (
                            <option key={r} value={r}>
                              {r}
                            </option>
                          ))}
                        </select>
                      </td>
                      <td title={formatTimestamp(u.createdAt)}>{formatAgo(u.createdAt, now)}</td>
                      <td style={{ whiteSpace: 'nowrap' }}>
                        <button
                          type="button"
                          className="btn btn-small btn-ghost"
                          onClick={() => setResetting(u)}
                          aria-label={`Reset the password of ${u.name}`}
                        >
                          Reset password
                        </button>{' '}
                        <button
                          type="button"
                          className="btn btn-small btn-danger"
                          disabled={self}
                          title={self ? 'you cannot delete yourself' : undefined}
                          onClick={() => setDeleting(u)}
                          aria-label={`Delete user ${u.name}`}
                        >
                          Delete
                        </button>
                      </td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
        )}
      </section>
      {deleting && (
        <ConfirmDialog
          title={`Delete user “${deleting.name}”?`}
          confirmLabel="Delete user"
          onClose={() => setDeleting(null)}
          onConfirm={async () => {
            await api(`/api/users/${encodeURIComponent(deleting.name)}`, { method: 'DELETE' });
            setNote(`User ${deleting.name} deleted.`);
            load();
          }}
        >
          <p>Their sessions end with the account. The audit trail keeps what they did.</p>
        </ConfirmDialog>
      )}
      {resetting && (
        <ResetPassword
          user={resetting}
          onClose={() => setResetting(null)}
          onDone={() => setNote(`Password of ${resetting.name} reset; their sessions were ended.`)}
        />
      )}
    </>
  );
}

function CreateUser({ onCreated }: { onCreated: (name: string) => void }) {
  const [name, setName] = useState('');
  const [password, setPassword] = useState('');
  const [role, setRole] = useState<Role>('viewer');
  const [busy, setBusy] = useState(false);
  const [err, setErr] = useState<string | null>(null);
  const submit = async (ev: FormEvent) => {
    ev.preventDefault();
    setBusy(true);
    setErr(null);
    try {
      await api('/api/users', { method: 'POST', body: { name, password, role } });
      setName('');
      setPassword('');
      onCreated(name);
    } catch (e) {
      setErr((e as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <section className="panel" aria-labelledby="new-user-h">
      <h2 id="new-user-h">New user</h2>
      <form onSubmit={submit} className="inline-form" data-testid="user-form">
        <div className="field">
          <label htmlFor="user-name">Name</label>
          <input
            id="user-name"
            value={name}
            required
            maxLength={64}
            pattern="[A-Za-z0-9._@\-]+"
            title="letters, digits and . _ @ -"
            autoComplete="off"
            onChange={(e) => setName(e.target.value)}
          />
        </div>
        <div className="field">
          <label htmlFor="user-password">Password (at least 12 characters)</label>
          <input
            id="user-password"
            type="password"
            value={password}
            required
            minLength={12}
            autoComplete="new-password"
            onChange={(e) => setPassword(e.target.value)}
          />
        </div>
        <div className="field">
          <label htmlFor="user-role">Role</label>
          <select id="user-role" value={role} onChange={(e) => setRole(e.target.value as Role)}>
            {ROLES.map((r) => (
              <option key={r} value={r}>
                {r}
              </option>
            ))}
          </select>
        </div>
        <button type="submit" className="btn" disabled={busy}>
          Create user
        </button>
      </form>
      {err && (
        <p className="error" role="alert">
          {err}
        </p>
      )}
    </section>
  );
}

function ResetPassword({
  user,
  onClose,
  onDone,
}: {
  user: UserRow;
  onClose: () => void;
  onDone: () => void;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState(false);
  const [err, setErr] = useState<string | null>(null);
  useEffect(() => {
    ref.current?.showModal();
  }, []);
  const submit = async (ev: FormEvent) => {
    ev.preventDefault();
    setBusy(true);
    setErr(null);
    try {
      await api(`/api/users/${encodeURIComponent(user.name)}`, { method: 'PATCH', body: { password } });
      onDone();
      onClose();
    } catch (e) {
      setErr((e as Error).message);
      setBusy(false);
    }
  };
  return (
    <dialog ref={ref} onClose={onClose} aria-labelledby="reset-h">
      <form onSubmit={submit}>
        <h2 id="reset-h">Reset the password of “{user.name}”</h2>
        <p className="muted">Their sessions end; tell them the new password another way.</p>
        <div className="field">
          <label htmlFor="reset-password">New password (at least 12 characters)</label>
          <input
            id="reset-password"
            type="password"
            value={password}
            required
            minLength={12}
            autoComplete="new-password"
            onChange={(e) => setPassword(e.target.value)}
          />
        </div>
        {err && (
          <p className="error" role="alert">
            {err}
          </p>
        )}
        <div className="dialog-actions">
          <button type="button" className="btn btn-ghost" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" className="btn" disabled={busy}>
            Reset password
          </button>
        </div>
      </form>
    </dialog>
  );
}
