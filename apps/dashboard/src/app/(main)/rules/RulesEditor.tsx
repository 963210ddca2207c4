'use client';
import type { AlertRule } from '@rdmaq/shared';
import { type FormEvent, useCallback, useEffect, useMemo, useState } from 'react';
import { ConfirmDialog } from '@/components/admin/ConfirmDialog';
import { api } from '@/lib/api';
import { formatDurationS, formatMetric } from '@/lib/format';
import { formatPairs, fromUnit, KNOWN_METRICS, parsePairs, toUnit, unitOf } from '@/lib/rule-units';
import '@/components/admin/admin.css';
import { atLeast, useMe } from '@/components/admin/useMe';

const COMPARISONS: AlertRule['comparison'][] = ['>', '>=', '<', '<='];
const SEVERITIES: AlertRule['severity'][] = ['info', 'warning', 'critical'];
/** Metrics that are a state (1 = down / stalled), shown as words rather than a comparison. */
const STATES = new Set(['link_down', 'link_stalled']);

const BLANK: AlertRule = {
  id: '',
  name: '',
  metric: 'latency_p99',
  comparison: '>',
  threshold: 1_000_000,
  clear: 500_000,
  forS: 30,
  keepFiringForS: 60,
  windowS: 30,
  severity: 'warning',
  labels: {},
  enabled: true,
  match: {},
};

/**
 * Alert rules: everyone reads them; operators create, edit (metric, comparison, threshold, clear, for,
 * keep firing for, window, severity, match, labels), enable/disable and delete them. The hub refuses
 * writes to viewers whatever this page shows.
 */
export function RulesEditor() {
  const { me } = useMe();
  const canEdit = atLeast(me, 'operator');
  const [rules, setRules] = useState<AlertRule[] | null>(null);
  const [err, setErr] = useState<string | null>(null);
  const [editing, setEditing] = useState<{ rule: AlertRule; isNew: boolean } | null>(null);
  const [deleting, setDeleting] = useState<AlertRule | null>(null);
  const [note, setNote] = useState<string | null>(null);
  const load = useCallback(() => {
    api<{ rules: AlertRule[] }>('/api/rules')
      .then((r) => {
        setRules(r.rules);
        setErr(null);
      })
      .catch((e: Error) => setErr(e.message));
  }, []);
  useEffect(load, [load]);
  const metrics = useMemo(
    () => [...new Set<string>([...KNOWN_METRICS, ...(rules ?? []).map((r) => r.metric)])],
    [rules],
  );
  const toggle = async (r: AlertRule) => {
    try {
      await api(`/api/rules/${encodeURIComponent(r.id)}`, {
        method: 'PUT',
        body: { ...r, enabled: !r.enabled },
      });
      setNote(`${r.name} ${r.enabled ? 'disabled' : 'enabled'}.`);
    } catch (e) {
      setErr((e as Error).message);
    }
    load();
  };

  return (
    <>
      <h1>Alert rules</h1>
      {me && !canEdit && (
        <p className="muted" data-testid="rules-readonly">
          You are signed in as a {me.role}: you can read the rules; editing them needs the operator role.
        </p>
      )}
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
      {canEdit && editing && (
        <RuleForm
          key={editing.rule.id || 'new'}
          initial={editing.rule}
          isNew={editing.isNew}
          metrics={metrics}
          onCancel={() => setEditing(null)}
          onSaved={(r) => {
            setEditing(null);
            setNote(`Rule ${r.name} saved.`);
            load();
          }}
        />
      )}
      <section className="panel" aria-labelledby="rules-list-h">
        <div className="panel-head">
          <h2 id="rules-list-h">Rules{rules ? ` (${rules.length})` : ''}</h2>
          {canEdit && !editing && (
            <button
              type="button"
              className="btn btn-small"
              onClick={() => setEditing({ rule: BLANK, isNew: true })}
            >
              New rule
            </button>
          )}
        </div>
        {rules && (
          <div className="table-wrap">
            <table data-testid="rules-table">
              <thead>
                <tr>
                  <th scope="col">Rule</th>
                  <th scope="col">Fires when</th>
                  <th scope="col">Clears when</th>
                  <th scope="col">For / keep firing</th>
                  <th scope="col">Severity</th>
                  <th scope="col">Enabled</th>
                  {canEdit && (
                    <th scope="col">
                      <span className="sr-only">Actions</span>
                    </th>
                  )}
                </tr>
              </thead>
              <tbody>
                {rules.map((r) => (
                  <tr key={r.id} data-rule={r.id}>
                    <td>
                      {r.name}
                      <div className="muted mono">{r.id}</div>
                    </td>
                    <td className="mono">
                      {STATES.has(r.metric) ? (
                        `${r.metric}: ${formatMetric(r.metric, 1)}`
                      ) : (
                        <>
                          {r.metric}
                          {r.windowS > 0 ? ` over ${formatDurationS(r.windowS)}` : ''} {r.comparison}{' '}
                          {formatMetric(r.metric, r.threshold)}
                        </>
                      )}
                      {Object.keys(r.match).length > 0 && (
                        <div className="muted">where {formatPairs(r.match)}</div>
                      )}
                    </td>
                    <td className="mono">
                      {STATES.has(r.metric)
                        ? formatMetric(r.metric, 0)
                        : `${invert(r.comparison)} ${formatMetric(r.metric, r.clear)}`}
                    </td>
                    <td>
                      {formatDurationS(r.forS)} / {formatDurationS(r.keepFiringForS)}
                    </td>
                    <td>
                      <span className={`sev sev-${r.severity}`}>{r.severity}</span>
                    </td>
                    <td>{r.enabled ? 'yes' : <span className="muted">no</span>}</td>
                    {canEdit && (
                      <td style={{ whiteSpace: 'nowrap' }}>
                        <button
                          type="button"
                          className="btn btn-small btn-ghost"
                          onClick={() => setEditing({ rule: r, isNew: false })}
                          aria-label={`Edit rule ${r.name}`}
                        >
                          Edit
                        </button>{' '}
                        <button
                          type="button"
                          className="btn btn-small btn-ghost"
                          onClick={() => toggle(r)}
                          aria-label={`${r.enabled ? 'Disable' : 'Enable'} rule ${r.name}`}
                        >
                          {r.enabled ? 'Disable' : 'Enable'}
                        </button>{' '}
                        <button
                          type="button"
                          className="btn btn-small btn-danger"
                          onClick={() => setDeleting(r)}
                          aria-label={`Delete rule ${r.name}`}
                        >
                          Delete
                        </button>
                      </td>
                    )}
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
      {deleting && (
        <ConfirmDialog
          title={`Delete rule “${deleting.name}”?`}
          confirmLabel="Delete rule"
          onClose={() => setDeleting(null)}
          onConfirm={async () => {
            await api(`/api/rules/${encodeURIComponent(deleting.id)}`, { method: 'DELETE' });
            setNote(`Rule ${deleting.name} deleted.`);
            load();
          }}
        >
          <p>
            Its alerts resolve. A built-in rule (link down, agent offline, …) comes back at the next restart;
            disable it instead to keep it off.
          </p>
        </ConfirmDialog>
      )}
    </>
  );
}

/** The clear condition as it reads: `> 0.9` clears when `≤ 0.7`. */
function invert(c: AlertRule['comparison']): string {
  return c === '>' ? '≤' : c === '>=' ? '<' : c === '<' ? '≥' : '>';
}

function RuleForm({
  initial,
  isNew,
  metrics,
  onCancel,
  onSaved,
}: {
  initial: AlertRule;
  isNew: boolean;
  metrics: string[];
  onCancel: () => void;
  onSaved: (r: AlertRule) => void;
}) {
  const [r, setR] = useState<AlertRule>(initial);
  // Thresholds are edited in the metric's unit (µs, %, Gbit/s, s) as text, so typing "0." is possible.
  const [threshold, setThreshold] = useState(String(toUnit(initial.metric, initial.threshold)));
  const [clear, setClear] = useState(String(toUnit(initial.metric, initial.clear)));
  const [match, setMatch] = useState(formatPairs(initial.match));
  const [labels, setLabels] = useState(formatPairs(initial.labels));
  const [busy, setBusy] = useState(false);
  const [err, setErr] = useState<string | null>(null);
  const unit = unitOf(r.metric);
  const set = <K extends keyof AlertRule>(k: K, v: AlertRule[K]) => setR((x) => ({ ...x, [k]: v }));
  const num = (s: string) => (s.trim() === '' ? Number.NaN : Number(s));
  const rawThreshold = fromUnit(r.metric, num(threshold));
  const rawClear = fromUnit(r.metric, num(clear));
  const latency = r.metric.startsWith('latency_');

  const submit = async (ev: FormEvent) => {
    ev.preventDefault();
    setErr(null);
    let body: AlertRule;
    try {
      if (!Number.isFinite(rawThreshold)) throw new Error('threshold: give a number');
      if (!Number.isFinite(rawClear)) throw new Error('clear: give a number');
      body = {
        ...r,
        threshold: rawThreshold,
        clear: rawClear,
        windowS: latency ? r.windowS : 0,
        match: parsePairs(match),
        labels: parsePairs(labels),
      };
    } catch (e) {
      setErr((e as Error).message);
      return;
    }
    setBusy(true);
    try {
      const saved = isNew
        ? await api<AlertRule>('/api/rules', { method: 'POST', body })
        : await api<AlertRule>(`/api/rules/${encodeURIComponent(r.id)}`, { method: 'PUT', body });
      onSaved(saved);
    } catch (e) {
      setErr((e as Error).message);
      setBusy(false);
    }
  };

  return (
    <section className="panel" aria-labelledby="rule-form-h">
      <h2 id="rule-form-h">{isNew ? 'New rule' : `Edit ${initial.name}`}</h2>
      <form onSubmit={submit} data-testid="rule-form">
        <div className="form-grid">
          <div className="field">
            <label htmlFor="rule-id">Id (a-z, 0-9, _ and -)</label>
            <input
              id="rule-id"
              value={r.id}
              required
              readOnly={!isNew}
              maxLength={64}
              pattern="[a-z0-9][a-z0-9_\-]*"
              onChange={(e) => set('id', e.target.value)}
            />
          </div>
          <div className="field">
            <label htmlFor="rule-name">Name (alertname)</label>
            <input
              id="rule-name"
              value={r.name}
              required
              maxLength={128}
              onChange={(e) => set('name', e.target.value)}
            />
          </div>
          <div className="field">
            <label htmlFor="rule-metric">Metric</label>
            <select
              id="rule-metric"
              value={r.metric}
              onChange={(e) => {
                const m = e.target.value as AlertRule['metric'];
                // Keep the raw values; show them in the new metric's unit.
                setThreshold(String(toUnit(m, Number.isFinite(rawThreshold) ? rawThreshold : 0)));
                setClear(String(toUnit(m, Number.isFinite(rawClear) ? rawClear : 0)));
                set('metric', m);
              }}
            >
              {metrics.map((m) => (
                <option key={m} value={m}>
                  {m}
                </option>
              ))}
            </select>
          </div>
          <div className="field">
            <label htmlFor="rule-cmp">Comparison</label>
            <select
              id="rule-cmp"
              value={r.comparison}
              onChange={(e) => set('comparison', e.target.value as AlertRule['comparison'])}
            >
              {COMPARISONS.map((c) => (
                <option key={c} value={c}>
                  {c}
                </option>
              ))}
            </select>
          </div>
          <div className="field">
            <label htmlFor="rule-threshold">Threshold ({unit.label})</label>
            <input
              id="rule-threshold"
              type="number"
              step="any"
              required
              value={threshold}
              onChange={(e) => setThreshold(e.target.value)}
            />
            <span className="muted" data-testid="threshold-preview">
              = {formatMetric(r.metric, rawThreshold)}
            </span>
          </div>
          <div className="field">
            <label htmlFor="rule-clear">Clears past ({unit.label}, hysteresis)</label>
            <input
              id="rule-clear"
              type="number"
              step="any"
              required
              value={clear}
              onChange={(e) => setClear(e.target.value)}
            />
            <span className="muted">
              resolves once not {r.comparison} {formatMetric(r.metric, rawClear)}
            </span>
          </div>
          <div className="field">
            <label htmlFor="rule-for">For (s, pending before firing)</label>
            <input
              id="rule-for"
              type="number"
              min={0}
              max={86400}
              required
              value={r.forS}
              onChange={(e) => set('forS', Number(e.target.value))}
            />
          </div>
          <div className="field">
            <label htmlFor="rule-keep">Keep firing for (s)</label>
            <input
              id="rule-keep"
              type="number"
              min={0}
              max={86400}
              required
              value={r.keepFiringForS}
              onChange={(e) => set('keepFiringForS', Number(e.target.value))}
            />
          </div>
          <div className="field">
            <label htmlFor="rule-window">Window (s, latency only; 0 = each sample)</label>
            <input
              id="rule-window"
              type="number"
              min={0}
              max={3600}
              step={1}
              disabled={!latency}
              value={latency ? r.windowS : 0}
              onChange={(e) => set('windowS', Number(e.target.value))}
            />
          </div>
          <div className="field">
            <label htmlFor="rule-sev">Severity</label>
            <select
              id="rule-sev"
              value={r.severity}
              onChange={(e) => set('severity', e.target.value as AlertRule['severity'])}
            >
              {SEVERITIES.map((s) => (
                <option key={s} value={s}>
                  {s}
                </option>
              ))}
            </select>
          </div>
          <div className="field">
            <label htmlFor="rule-match">Only where (label=value, comma-separated)</label>
            <input
              id="rule-match"
              value={match}
              placeholder="provider_class=verbs, direction=rx"
              onChange={(e) => setMatch(e.target.value)}
            />
          </div>
          <div className="field">
            <label htmlFor="rule-labels">Extra labels on its alerts</label>
            <input
              id="rule-labels"
              value={labels}
              placeholder="team=storage"
              onChange={(e) => setLabels(e.target.value)}
            />
          </div>
        </div>
        <label className="check" style={{ marginBottom: 12 }}>
          <input type="checkbox" checked={r.enabled} onChange={(e) => set('enabled', e.target.checked)} />{' '}
          Enabled
        </label>
        {err && (
          <p className="error" role="alert">
            {err}
          </p>
        )}
        <div className="dialog-actions" style={{ justifyContent: 'flex-start' }}>
          <button type="submit" className="btn" disabled={busy}>
            {isNew ? 'Create rule' : 'Save rule'}
          </button>
          <button type="button" className="btn btn-ghost" onClick={onCancel}>
            Cancel
          </button>
        </div>
      </form>
    </section>
  );
}
