'use client';
import { type FormEvent, useCallback, useEffect, useState } from 'react';
import { ConfirmDialog } from '@/components/admin/ConfirmDialog';
import type { CreatedToken, TokenRow } from '@/components/admin/types';
import { useNow } from '@/components/useNow';
import { api } from '@/lib/api';
import { formatAgo, formatTimestamp } from '@/lib/format';

/** "node-1, rack2-*" or one per line → ["node-1", "rack2-*"]; empty → undefined (any node). */
export function parseNodes(text: string): string[] | undefined {
  const list = text
    .split(/[\s,]+/)
    .map((s) => s.trim())
    .filter(Boolean);
  return list.length ? list : undefined;
}

/** Agent tokens: create (the secret is shown once), list with last use and node binding, revoke. */
export function TokensAdmin() {
  const [tokens, setTokens] = useState<TokenRow[] | null>(null);
  const [err, setErr] = useState<string | null>(null);
  const [created, setCreated] = useState<CreatedToken | null>(null);
  const [revoking, setRevoking] = useState<TokenRow | null>(null);
  const [showRevoked, setShowRevoked] = useState(false);
  const now = useNow();
  const load = useCallback(() => {
    api<{ tokens: TokenRow[] }>('/api/agent-tokens')
      .then((r) => {
        setTokens(r.tokens);
        setErr(null);
      })
      .catch((e: Error) => setErr(e.message));
  }, []);
  useEffect(() => {
    load();
    // Last use moves while agents reconnect.
    const t = setInterval(load, 30_000);
    return () => clearInterval(t);
  }, [load]);
  const shown = (tokens ?? []).filter((t) => showRevoked || t.revokedAt === null).reverse();
  const revokedCount = (tokens ?? []).filter((t) => t.revokedAt !== null).length;

  return (
    <>
      <h1>Agent tokens</h1>
      <p className="muted">
        Each agent authenticates with a token (<span className="mono">hub.token</span> or{' '}
        <span className="mono">hub.tokenFile</span> in its config, or{' '}
        <span className="mono">RDMAQ_HUB_TOKEN</span>). Bind a token to the nodes it may speak for so a leaked
        one cannot impersonate other hosts; revoking it cuts its agents off at once.
      </p>
      {created ? (
        <Secret created={created} onDone={() => setCreated(null)} />
      ) : (
        <CreateToken
          onCreated={(t) => {
            setCreated(t);
            load();
          }}
        />
      )}
      <section className="panel" aria-labelledby="tokens-h">
        <div className="panel-head">
          <h2 id="tokens-h">Tokens</h2>
          {revokedCount > 0 && (
            <label className="check">
              <input
                type="checkbox"
                checked={showRevoked}
                onChange={(e) => setShowRevoked(e.target.checked)}
              />
              show {revokedCount} revoked
            </label>
          )}
        </div>
        {err && (
          <p className="error" role="alert">
            {err}
          </p>
        )}
        {tokens && shown.length === 0 && <p className="muted">No active tokens: create one above.</p>}
        {shown.length > 0 && (
          <div className="table-wrap">
            <table data-testid="tokens-table">
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Nodes</th>
                  <th scope="col">Created</th>
                  <th scope="col">Last used</th>
                  <th scope="col">Status</th>
                  <th scope="col">
                    <span className="sr-only">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {shown.map((t) => (
                  <tr key={t.id} data-token-id={t.id}>
                    <td>
                      {t.name}
                      <div className="muted mono">{t.id}</div>
                    </td>
                    <td className="mono">
                      {t.nodes.length === 0 ? (
                        <span className="error">none (unreadable binding)</span>
                      ) : t.nodes.includes('*') ? (
                        <span className="warn" title="this token may speak for any node id">
                          any node
                        </span>
                      ) : (
                        t.nodes.join(', ')
                      )}
                    </td>
                    <td title={formatTimestamp(t.createdAt)}>
                      {formatAgo(t.createdAt, now)}
                      <div className="muted">by {t.createdBy}</div>
                    </td>
                    <td title={t.lastUsedAt ? formatTimestamp(t.lastUsedAt) : undefined}>
                      {t.lastUsedAt ? formatAgo(t.lastUsedAt, now) : <span className="muted">never</span>}
                    </td>
                    <td>
                      {t.revokedAt === null ? (
                        <span className="pill pill-ok">active</span>
                      ) : (
                        <span className="pill pill-offline" title={formatTimestamp(t.revokedAt)}>
                          revoked {formatAgo(t.revokedAt, now)}
                        </span>
                      )}
                    </td>
                    <td>
                      {t.revokedAt === null && (
                        <button
                          type="button"
                          className="btn btn-small btn-danger"
                          onClick={() => setRevoking(t)}
                          aria-label={`Revoke token ${t.name}`}
                        >
                          Revoke
                        </button>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
      {revoking && (
        <ConfirmDialog
          title={`Revoke token “${revoking.name}”?`}
          confirmLabel="Revoke token"
          onClose={() => setRevoking(null)}
          onConfirm={async () => {
            await api(`/api/agent-tokens/${encodeURIComponent(revoking.id)}`, { method: 'DELETE' });
            load();
          }}
        >
          <p>
            Agents using it are disconnected now and refused when they reconnect. This cannot be undone: give
            those hosts a new token.
          </p>
        </ConfirmDialog>
      )}
    </>
  );
}

function CreateToken({ onCreated }: { onCreated: (t: CreatedToken) => void }) {
  const [name, setName] = useState('');
  const [nodes, setNodes] = useState('');
  const [busy, setBusy] = useState(false);
  const [err, setErr] = useState<string | null>(null);
  const submit = async (ev: FormEvent) => {
    ev.preventDefault();
    setBusy(true);
    setErr(null);
    try {
      const list = parseNodes(nodes);
      const t = await api<CreatedToken>('/api/agent-tokens', {
        method: 'POST',
        body: { name, ...(list ? { nodes: list } : {}) },
      });
      setName('');
      setNodes('');
      onCreated(t);
    } catch (e) {
      setErr((e as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <section className="panel" aria-labelledby="new-token-h">
      <h2 id="new-token-h">New token</h2>
      <form onSubmit={submit} className="inline-form" data-testid="token-form">
        <div className="field" style={{ minWidth: 200 }}>
          <label htmlFor="token-name">Name</label>
          <input
            id="token-name"
            value={name}
            maxLength={128}
            required
            placeholder="rack-12"
            onChange={(e) => setName(e.target.value)}
          />
        </div>
        <div className="field" style={{ flex: 1, minWidth: 260 }}>
          <label htmlFor="token-nodes">Nodes it may speak for (ids or patterns, comma-separated)</label>
          <input
            id="token-nodes"
            value={nodes}
            placeholder="node-3, rack12-*   (empty: any node)"
            onChange={(e) => setNodes(e.target.value)}
          />
        </div>
        <button type="submit" className="btn" disabled={busy}>
          Create token
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

/** Where agents connect: this page's host, /ws/agent. */
function agentUrl(): string {
  if (typeof window === 'undefined') return '/ws/agent';
  return `${window.location.protocol === 'https:' ? 'wss' : 'ws'}://${window.location.host}/ws/agent`;
}

/** The new token's secret: shown once (the hub keeps only its hash), with a copy button. */
function Secret({ created, onDone }: { created: CreatedToken; onDone: () => void }) {
  const [copied, setCopied] = useState<'yes' | 'no' | null>(null);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(created.token);
      setCopied('yes');
    } catch {
      // No clipboard (plain http on another host): select it so Ctrl+C works.
      const el = document.getElementById('token-secret');
      if (el) window.getSelection()?.selectAllChildren(el);
      setCopied('no');
    }
  };
  return (
    <section className="panel secret" aria-labelledby="secret-h" data-testid="token-created" role="status">
      <h2 id="secret-h">Token “{created.name}” created</h2>
      <p className="warn">
        <strong>Copy it now: it is shown only this once.</strong> The hub stores only a hash of it; if it is
        lost, revoke it and create another.
      </p>
      <div className="secret-value">
        <code id="token-secret" data-testid="token-secret">
          {created.token}
        </code>
        <button type="button" className="btn btn-small" onClick={copy}>
          Copy
        </button>
      </div>
      {copied === 'yes' && <p className="ok-text">Copied to the clipboard.</p>}
      {copied === 'no' && <p className="muted">The clipboard is not available here: press Ctrl+C to copy.</p>}
      <p className="muted">
        Nodes: <span className="mono">{created.nodes.join(', ')}</span>
      </p>
      {created.warning && <p className="warn">{created.warning}</p>}
      <p className="muted">
        Give it to the agent as <span className="mono">hub.tokenFile</span> (or{' '}
        <span className="mono">RDMAQ_HUB_TOKEN</span>) with <span className="mono">hub.url</span>{' '}
        <span className="mono">{agentUrl()}</span>.
      </p>
      <button type="button" className="btn btn-ghost" onClick={onDone}>
        I have copied it
      </button>
    </section>
  );
}
