'use client';
/**
 * Demo mode only, admins only: rehearse an incident on one host — cut it off, slow its path (tc tbf), kill
 * its agent, bring it back — and watch what the dashboard says. The hub forwards each action to the demo
 * process (POST /api/demo/chaos, audited); a production hub has no chaos socket and this panel never shows.
 */
import { useCallback, useEffect, useState } from 'react';
import { hasRole, useConnection } from '@/components/LiveProvider';
import { ApiError, api } from '@/lib/api';

interface ChaosNode {
  node: string;
  agent: 'running' | 'stopped';
  path: 'up' | 'cut';
  slowed: string | null;
}

const ACTIONS: Array<{ action: string; label: string; when: (n: ChaosNode) => boolean; danger?: boolean }> = [
  { action: 'cut', label: 'Cut off the network', when: (n) => n.path === 'up', danger: true },
  { action: 'restore', label: 'Restore the network', when: (n) => n.path === 'cut' },
  { action: 'slow', label: 'Slow to 20 Mbit/s', when: (n) => !n.slowed, danger: true },
  { action: 'unslow', label: 'Remove the slowdown', when: (n) => !!n.slowed },
  { action: 'kill', label: 'Kill the agent (-9)', when: (n) => n.agent === 'running', danger: true },
  { action: 'restart', label: 'Restart the agent', when: (n) => n.agent === 'stopped' },
];

export function ChaosPanel({ nodeId }: { nodeId: string }) {
  const { user } = useConnection();
  const admin = hasRole(user, 'admin');
  const [state, setState] = useState<ChaosNode | undefined>();
  const [busy, setBusy] = useState(false);
  const [message, setMessage] = useState<string | undefined>();

  const refresh = useCallback(async () => {
    try {
      const r = await api<{ enabled: boolean; nodes: ChaosNode[] }>('/api/demo/chaos');
      setState(r.enabled ? r.nodes.find((n) => n.node === nodeId) : undefined);
    } catch {
      setState(undefined);
    }
  }, [nodeId]);
  useEffect(() => {
    if (admin) void refresh();
  }, [admin, refresh]);

  if (!admin || !state) return null;
  const act = async (action: string) => {
    setBusy(true);
    setMessage(undefined);
    try {
      const r = await api<{ nodes: ChaosNode[] }>('/api/demo/chaos', {
        method: 'POST',
        body: { action, node: nodeId, ...(action === 'slow' ? { rate: '20mbit' } : {}) },
      });
      setState(r.nodes.find((n) => n.node === nodeId));
      setMessage(`${action}: done — watch this page and the overview`);
    } catch (err) {
      setMessage(err instanceof ApiError ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <section className="panel" aria-labelledby="chaos-h" data-testid="chaos-panel">
      <div className="panel-head">
        <h2 id="chaos-h">Chaos (demo only)</h2>
        <span className="muted">
          agent {state.agent} · network {state.path}
          {state.slowed ? ` · slowed to ${state.slowed}` : ''}
        </span>
      </div>
      <div className="actions">
        {ACTIONS.filter((a) => a.when(state)).map((a) => (
          <button
            key={a.action}
            type="button"
            className={`btn btn-small${a.danger ? ' btn-danger' : ''}`}
            disabled={busy}
            onClick={() => void act(a.action)}
          >
            {a.label}
          </button>
        ))}
      </div>
      {message && (
        <p className="muted" role="status">
          {message}
        </p>
      )}
    </section>
  );
}
