'use client';
import type { Me } from '@rdmaq/shared';
import { useSearchParams } from 'next/navigation';
import { type FormEvent, useEffect, useState } from 'react';
import { ApiError, api, safeNext } from '@/lib/api';

/**
 * Operator sign-in. The hub answers with an httpOnly session cookie; this page never sees a token. While
 * no account exists yet the hub asks for the one-time setup token it printed, and the first admin is made.
 */
export function LoginForm() {
  const params = useSearchParams();
  const next = safeNext(params.get('next'));
  const [setup, setSetup] = useState<boolean | null>(null);
  const [name, setName] = useState('');
  const [password, setPassword] = useState('');
  const [token, setToken] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    api<{ needed: boolean }>('/api/auth/setup')
      .then((r) => setSetup(r.needed))
      .catch(() => setSetup(false));
  }, []);

  const submit = async (ev: FormEvent) => {
    ev.preventDefault();
    setBusy(true);
    setError(null);
    try {
      if (setup) await api<Me>('/api/auth/setup', { method: 'POST', body: { token, name, password } });
      else await api<Me>('/api/auth/login', { method: 'POST', body: { name, password } });
      // A full navigation so the live socket opens with the new cookie.
      window.location.assign(next);
    } catch (err) {
      setError(
        err instanceof ApiError && err.code === 'ERR_RDMAQ_BAD_CREDENTIALS'
          ? 'Wrong user name or password.'
          : (err as Error).message,
      );
      setBusy(false);
    }
  };

  return (
    <form className="panel login" onSubmit={submit} aria-labelledby="login-h">
      <h1 id="login-h">
        <span className="brand-mark" aria-hidden="true">
          ◆
        </span>{' '}
        rdmaq
      </h1>
      <p className="muted" style={{ textAlign: 'center', marginTop: 0 }}>
        {setup ? 'Create the first administrator account' : 'Sign in to the cluster dashboard'}
      </p>
      {setup && (
        <div className="field">
          <label htmlFor="token">Setup token (printed by the dashboard server at first start)</label>
          <input
            id="token"
            value={token}
            onChange={(e) => setToken(e.target.value)}
            autoComplete="off"
            required
          />
        </div>
      )}
      <div className="field">
        <label htmlFor="name">User name</label>
        <input
          id="name"
          name="username"
          value={name}
          onChange={(e) => setName(e.target.value)}
          autoComplete="username"
          required
        />
      </div>
      <div className="field">
        <label htmlFor="password">Password</label>
        <input
          id="password"
          name="password"
          type="password"
          value={password}
          onChange={(e) => setPassword(e.target.value)}
          autoComplete={setup ? 'new-password' : 'current-password'}
          minLength={setup ? 10 : undefined}
          required
        />
      </div>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      <button className="btn" type="submit" disabled={busy}>
        {busy ? 'Signing in…' : setup ? 'Create account' : 'Sign in'}
      </button>
    </form>
  );
}
