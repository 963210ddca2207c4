'use client';
import type { Alert, AlertRule, Matcher, Silence } from '@rdmaq/shared';
import { alertLinks, groupAlertsByHost } from '@rdmaq/shared/format';
import Link from 'next/link';
import { type FormEvent, Fragment, useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { AlertPages } from '@/components/AlertPages';
import { hasRole, useConnection, useLiveView } from '@/components/LiveProvider';
import { StatePill } from '@/components/StatePill';
import { useNow } from '@/components/useNow';
import { ApiError, api } from '@/lib/api';
import { formatAgo, formatDurationS, formatMetric, formatTimestamp } from '@/lib/format';

const SEV: Record<string, number> = { critical: 2, warning: 1, info: 0 };
/** Alerts of one host from which its group starts collapsed. */
const COLLAPSE_AT = 4;

/** The rule list (REST), shared by the rules table and the alert tables (which show values in the rule's unit). */
function useRules() {
  const [rules, setRules] = useState<AlertRule[] | null>(null);
  const [err, setErr] = useState<string | null>(null);
  const reload = useCallback(() => {
    api<{ rules: AlertRule[] }>('/api/rules')
      .then((r) => {
        setRules(r.rules);
        setErr(null);
      })
      .catch((e: Error) => setErr(e.message));
  }, []);
  useEffect(reload, [reload]);
  return { rules, err, setErr, reload };
}

/** Alerts page: firing / pending / resolved alerts with acknowledge, silences, and the rule list. */
export function AlertsView() {
  const { state, stale } = useLiveView<'alerts'>('alerts');
  const { user } = useConnection();
  const canAct = hasRole(user, 'operator');
  const [acking, setAcking] = useState<Alert | null>(null);
  const [silenceFor, setSilenceFor] = useState<Matcher[] | null>(null);
  const [silencesVersion, setSilencesVersion] = useState(0);
  const now = useNow();
  const rules = useRules();
  const metricOf = useMemo(() => new Map((rules.rules ?? []).map((r) => [r.id, r.metric])), [rules.rules]);

  const { firing, pending } = useMemo(() => {
    const act = [...(state?.active ?? [])].sort(
      (a, b) => SEV[b.severity]! - SEV[a.severity]! || a.activeAt - b.activeAt,
    );
    return {
      firing: act.filter((a) => a.state === 'firing'),
      pending: act.filter((a) => a.state === 'pending'),
    };
  }, [state]);

  return (
    <>
      <h1>Alerts</h1>
      {stale && state && <p className="stale">Reconnecting; the list may be out of date.</p>}
      {!canAct && user && (
        <p className="muted">
          You are signed in as a {user.role}: acknowledging and silencing need the operator role.
        </p>
      )}
      <AlertTable
        title={`Firing (${firing.length})`}
        id="firing"
        grouped
        alerts={firing}
        now={now}
        canAct={canAct}
        metricOf={metricOf}
        onAck={setAcking}
        onSilence={(a) => setSilenceFor(matchersFor(a))}
        empty="Nothing is firing."
      />
      <AlertTable
        title={`Pending (${pending.length})`}
        id="pending"
        grouped
        alerts={pending}
        now={now}
        canAct={canAct}
        metricOf={metricOf}
        onAck={setAcking}
        onSilence={(a) => setSilenceFor(matchersFor(a))}
        empty="Nothing pending."
      />
      <AlertTable
        title="Recently resolved"
        id="resolved"
        alerts={state?.recent ?? []}
        now={now}
        canAct={false}
        metricOf={metricOf}
        onAck={setAcking}
        onSilence={() => {}}
        empty="No alert resolved recently."
      />
      <Silences
        canAct={canAct}
        version={silencesVersion}
        prefill={silenceFor}
        onDone={() => {
          setSilenceFor(null);
          setSilencesVersion((v) => v + 1);
        }}
      />
      <Rules canAct={canAct} state={rules} />
      <History version={state} />
      {acking && <AckDialog alert={acking} onClose={() => setAcking(null)} />}
    </>
  );
}

function matchersFor(a: Alert): Matcher[] {
  const out: Matcher[] = [{ name: 'rule', value: a.ruleId, isRegex: false, isEqual: true }];
  for (const k of ['node', 'link'] as const) {
    const v = a.labels[k];
    if (v) out.push({ name: k, value: v, isRegex: false, isEqual: true });
  }
  return out;
}

function subjectOf(a: Alert): string {
  const l = a.labels;
  return [l.node, l.link && `link ${l.link}`, l.peer && `peer ${l.peer}`].filter(Boolean).join(' · ');
}

function AlertTable({
  title,
  id,
  grouped = false,
  alerts,
  now,
  canAct,
  metricOf,
  onAck,
  onSilence,
  empty,
}: {
  title: string;
  id: string;
  /** Group by the host that causes them (groupAlertsByHost), each group collapsible. */
  grouped?: boolean;
  alerts: readonly Alert[];
  now: number;
  canAct: boolean;
  metricOf: Map<string, string>;
  onAck: (a: Alert) => void;
  onSilence: (a: Alert) => void;
  empty: string;
}) {
  const resolved = id === 'resolved';
  const groups = useMemo(
    () => (grouped ? groupAlertsByHost(alerts) : [{ host: null, alerts: [...alerts] }]),
    [grouped, alerts],
  );
  // Groups of COLLAPSE_AT alerts or more start collapsed (one line per host at fault); the operator opens
  // the one to work on. `toggled` holds the groups the operator flipped.
  const [toggled, setToggled] = useState<ReadonlySet<string>>(new Set());
  const isOpen = (g: { host: string | null; alerts: readonly Alert[] }) =>
    g.host !== null && toggled.has(g.host) !== g.alerts.length < COLLAPSE_AT;
  const toggle = (h: string) =>
    setToggled((s) => {
      const n = new Set(s);
      if (n.has(h)) n.delete(h);
      else n.add(h);
      return n;
    });
  const cols = resolved ? 6 : 7;
  const row = (a: Alert) => {
    const metric = a.metric ?? metricOf.get(a.ruleId);
    return (
      <tr key={a.id + (a.resolvedAt ?? '')} data-alert-id={a.id}>
        <td>
          <span className={`sev sev-${a.severity}`}>{a.severity}</span>
        </td>
        <td>
          <StatePill state={a.state} label={a.ruleName} />
          <div>{a.summary}</div>
          <AlertPages alert={a} />
          {a.silencedBy.length > 0 && <div className="muted">silenced</div>}
        </td>
        <td>{subjectOf(a) || '—'}</td>
        <td className="num">
          {metric
            ? `${formatMetric(metric, a.value)} / ${formatMetric(metric, a.threshold)}`
            : `${a.value === null ? '—' : round(a.value)} / ${round(a.threshold)}`}
        </td>
        <td title={formatTimestamp(resolved ? a.resolvedAt : (a.firedAt ?? a.activeAt))}>
          {formatAgo(resolved ? a.resolvedAt : (a.firedAt ?? a.activeAt), now)}
        </td>
        <td>
          {a.ack ? (
            <>
              {a.ack.by} <span className="muted">{formatAgo(a.ack.at, now)}</span>
              {a.ack.comment && <div className="muted">“{a.ack.comment}”</div>}
            </>
          ) : (
            <span className="muted">no</span>
          )}
        </td>
        {!resolved && (
          <td>
            <div style={{ display: 'flex', gap: 6 }}>
              {a.ack ? (
                <UnackButton alert={a} disabled={!canAct} />
              ) : (
                <button
                  type="button"
                  className="btn btn-small"
                  disabled={!canAct}
                  onClick={() => onAck(a)}
                  aria-label={`Acknowledge ${a.ruleName} ${subjectOf(a)}`}
                >
                  Acknowledge
                </button>
              )}
              <button
                type="button"
                className="btn btn-small btn-ghost"
                disabled={!canAct}
                onClick={() => onSilence(a)}
                aria-label={`Silence ${a.ruleName} ${subjectOf(a)}`}
              >
                Silence…
              </button>
            </div>
          </td>
        )}
      </tr>
    );
  };
  return (
    <section className="panel" aria-labelledby={`${id}-h`}>
      <h2 id={`${id}-h`}>{title}</h2>
      {alerts.length === 0 ? (
        <p className="muted">{empty}</p>
      ) : (
        <div className="table-wrap">
          <table data-testid={`alerts-${id}`}>
            <thead>
              <tr>
                <th scope="col">Severity</th>
                <th scope="col">Alert</th>
                <th scope="col">Subject</th>
                <th scope="col" className="num">
                  Value / threshold
                </th>
                <th scope="col">{resolved ? 'Resolved' : 'Since'}</th>
                <th scope="col">Acknowledged</th>
                {!resolved && <th scope="col">Actions</th>}
              </tr>
            </thead>
            <tbody>
              {groups.map((g) =>
                g.host === null ? (
                  <Fragment key="(ungrouped)">
                    {groups.length > 1 && (
                      <tr className="alert-group">
                        <td colSpan={cols} className="muted">
                          Other alerts ({g.alerts.length}): no host in common with another alert
                        </td>
                      </tr>
                    )}
                    {g.alerts.map(row)}
                  </Fragment>
                ) : (
                  <Fragment key={g.host}>
                    <tr className="alert-group" data-testid="alert-group" data-host={g.host}>
                      <td colSpan={cols}>
                        <button
                          type="button"
                          className="btn btn-small btn-ghost"
                          aria-expanded={isOpen(g)}
                          onClick={() => toggle(g.host!)}
                        >
                          {isOpen(g) ? '▾' : '▸'} {g.host}: {g.alerts.length} alerts
                        </button>{' '}
                        <GroupSummary alerts={g.alerts} />{' '}
                        <Link href={alertLinks({ node: g.host }).node!}>node page</Link>
                      </td>
                    </tr>
                    {isOpen(g) && g.alerts.map(row)}
                  </Fragment>
                ),
              )}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

/** "3 critical, 4 warning · RingFullNoProgress ×6, AgentOffline" */
function GroupSummary({ alerts }: { alerts: readonly Alert[] }) {
  const sev = new Map<string, number>();
  const names = new Map<string, number>();
  for (const a of alerts) {
    sev.set(a.severity, (sev.get(a.severity) ?? 0) + 1);
    names.set(a.ruleName, (names.get(a.ruleName) ?? 0) + 1);
  }
  const bySev = [...sev].sort((a, b) => (SEV[b[0]] ?? 0) - (SEV[a[0]] ?? 0));
  return (
    <span className="muted">
      {bySev.map(([s, n], i) => (
        <Fragment key={s}>
          {i > 0 && ', '}
          <span className={`sev sev-${s}`}>
            {n} {s}
          </span>
        </Fragment>
      ))}{' '}
      · {[...names].map(([n, c]) => (c > 1 ? `${n} ×${c}` : n)).join(', ')}
    </span>
  );
}

function round(v: number): string {
  const a = Math.abs(v);
  return a >= 1000
    ? Math.round(v).toLocaleString('en-US')
    : a >= 1
      ? v.toFixed(2).replace(/\.?0+$/, '')
      : v.toPrecision(3);
}

function UnackButton({ alert, disabled }: { alert: Alert; disabled: boolean }) {
  const [err, setErr] = useState<string | null>(null);
  return (
    <>
      <button
        type="button"
        className="btn btn-small btn-ghost"
        disabled={disabled}
        onClick={() =>
          api(`/api/alerts/${encodeURIComponent(alert.id)}/ack`, { method: 'DELETE' }).catch((e: Error) =>
            setErr(e.message),
          )
        }
      >
        Unacknowledge
      </button>
      {err && <span className="error">{err}</span>}
    </>
  );
}

function AckDialog({ alert, onClose }: { alert: Alert; onClose: () => void }) {
  const ref = useRef<HTMLDialogElement>(null);
  const [comment, setComment] = useState('');
  const [err, setErr] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    ref.current?.showModal();
  }, []);
  const submit = async (ev: FormEvent) => {
    ev.preventDefault();
    setBusy(true);
    try {
      await api(`/api/alerts/${encodeURIComponent(alert.id)}/ack`, { method: 'POST', body: { comment } });
      onClose();
    } catch (e) {
      setErr((e as Error).message);
      setBusy(false);
    }
  };
  return (
    <dialog ref={ref} onClose={onClose} aria-labelledby="ack-h">
      <form onSubmit={submit}>
        <h2 id="ack-h">Acknowledge “{alert.ruleName}”</h2>
        <p>{alert.summary}</p>
        <div className="field">
          <label htmlFor="ack-comment">Comment (what you are doing about it)</label>
          <textarea
            id="ack-comment"
            rows={3}
            value={comment}
            maxLength={1000}
            onChange={(e) => setComment(e.target.value)}
          />
        </div>
        {err && (
          <p className="error" role="alert">
            {err}
          </p>
        )}
        <div style={{ display: 'flex', gap: 8, justifyContent: 'flex-end' }}>
          <button type="button" className="btn btn-ghost" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" className="btn" disabled={busy}>
            Acknowledge
          </button>
        </div>
      </form>
    </dialog>
  );
}

const DURATIONS = [
  { s: 3600, label: '1 hour' },
  { s: 4 * 3600, label: '4 hours' },
  { s: 24 * 3600, label: '1 day' },
  { s: 7 * 24 * 3600, label: '7 days' },
];

function Silences({
  canAct,
  version,
  prefill,
  onDone,
}: {
  canAct: boolean;
  version: number;
  prefill: Matcher[] | null;
  onDone: () => void;
}) {
  const [list, setList] = useState<Silence[] | null>(null);
  const [err, setErr] = useState<string | null>(null);
  const load = useCallback(() => {
    api<{ silences: Silence[] }>('/api/silences')
      .then((r) => setList(r.silences))
      .catch((e: Error) => setErr(e.message));
  }, []);
  useEffect(() => {
    load();
    const t = setInterval(load, 15_000);
    return () => clearInterval(t);
  }, [load, version]);
  const sorted = useMemo(
    () =>
      [...(list ?? [])].sort((a, b) =>
        a.status === b.status ? b.startsAt - a.startsAt : a.status === 'active' ? -1 : 1,
      ),
    [list],
  );
  const now = useNow();
  return (
    <section className="panel" aria-labelledby="sil-h">
      <h2 id="sil-h">Silences</h2>
      {canAct && <SilenceForm key={JSON.stringify(prefill)} prefill={prefill} onDone={onDone} />}
      {err && <p className="error">{err}</p>}
      {list && list.length === 0 ? (
        <p className="muted">No silences.</p>
      ) : (
        <div className="table-wrap">
          <table data-testid="silences">
            <thead>
              <tr>
                <th scope="col">Status</th>
                <th scope="col">Matchers</th>
                <th scope="col">Ends</th>
                <th scope="col">By / comment</th>
                <th scope="col">Actions</th>
              </tr>
            </thead>
            <tbody>
              {sorted.map((s) => (
                <tr key={s.id}>
                  <td>
                    <StatePill
                      state={s.status === 'active' ? 'ok' : s.status === 'pending' ? 'pending' : 'resolved'}
                      label={s.status}
                    />
                  </td>
                  <td className="mono">
                    {s.matchers
                      .map((m) => `${m.name}${m.isEqual ? '' : '!'}${m.isRegex ? '=~' : '='}"${m.value}"`)
                      .join(', ')}
                  </td>
                  <td title={formatTimestamp(s.endsAt)}>
                    {s.endsAt > now
                      ? `in ${formatDurationS((s.endsAt - now) / 1000)}`
                      : formatAgo(s.endsAt, now)}
                  </td>
                  <td>
                    {s.createdBy}
                    {s.comment && <div className="muted">{s.comment}</div>}
                  </td>
                  <td>
                    {s.status !== 'expired' && (
                      <button
                        type="button"
                        className="btn btn-small btn-danger"
                        disabled={!canAct}
                        onClick={() =>
                          api(`/api/silences/${encodeURIComponent(s.id)}`, { method: 'DELETE' })
                            .then(onDone)
                            .catch((e: Error) => setErr(e.message))
                        }
                      >
                        Expire
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
  );
}

function SilenceForm({ prefill, onDone }: { prefill: Matcher[] | null; onDone: () => void }) {
  const [matchers, setMatchers] = useState<Matcher[]>(
    prefill ?? [{ name: 'node', value: '', isRegex: false, isEqual: true }],
  );
  const [durationS, setDurationS] = useState(3600);
  const [comment, setComment] = useState('');
  const [err, setErr] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const set = (i: number, patch: Partial<Matcher>) =>
    setMatchers((ms) => ms.map((m, j) => (j === i ? { ...m, ...patch } : m)));
  const submit = async (ev: FormEvent) => {
    ev.preventDefault();
    setBusy(true);
    setErr(null);
    try {
      await api('/api/silences', { method: 'POST', body: { matchers, durationS, comment } });
      setComment('');
      onDone();
    } catch (e) {
      setErr(e instanceof ApiError ? e.message : String(e));
    } finally {
      setBusy(false);
    }
  };
  return (
    <form
      onSubmit={submit}
      aria-label="Create a silence"
      style={{ marginBottom: 14 }}
      data-testid="silence-form"
    >
      {matchers.map((m, i) => (
        <div className="inline-form" key={i} style={{ marginBottom: 6 }}>
          <div className="field">
            <label htmlFor={`m-name-${i}`}>Label</label>
            <input
              id={`m-name-${i}`}
              value={m.name}
              onChange={(e) => set(i, { name: e.target.value })}
              required
            />
          </div>
          <div className="field">
            <label htmlFor={`m-op-${i}`}>Match</label>
            <select
              id={`m-op-${i}`}
              value={`${m.isEqual ? '' : '!'}${m.isRegex ? '~' : '='}`}
              onChange={(e) =>
                set(i, { isEqual: !e.target.value.startsWith('!'), isRegex: e.target.value.endsWith('~') })
              }
            >
              <option value="=">=</option>
              <option value="!=">!=</option>
              <option value="~">=~ (regex)</option>
              <option value="!~">!~ (regex)</option>
            </select>
          </div>
          <div className="field">
            <label htmlFor={`m-val-${i}`}>Value</label>
            <input
              id={`m-val-${i}`}
              value={m.value}
              onChange={(e) => set(i, { value: e.target.value })}
              required
            />
          </div>
          {matchers.length > 1 && (
            <button
              type="button"
              className="btn btn-small btn-ghost"
              onClick={() => setMatchers((ms) => ms.filter((_, j) => j !== i))}
              aria-label={`Remove matcher ${i + 1}`}
            >
              ×
            </button>
          )}
        </div>
      ))}
      <div className="inline-form">
        <button
          type="button"
          className="btn btn-small btn-ghost"
          onClick={() => setMatchers((ms) => [...ms, { name: '', value: '', isRegex: false, isEqual: true }])}
        >
          + matcher
        </button>
        <div className="field">
          <label htmlFor="sil-dur">Duration</label>
          <select id="sil-dur" value={durationS} onChange={(e) => setDurationS(Number(e.target.value))}>
            {DURATIONS.map((d) => (
              <option key={d.s} value={d.s}>
                {d.label}
              </option>
            ))}
          </select>
        </div>
        <div className="field" style={{ flex: 1, minWidth: 200 }}>
          <label htmlFor="sil-comment">Comment</label>
          <input id="sil-comment" value={comment} onChange={(e) => setComment(e.target.value)} required />
        </div>
        <button type="submit" className="btn" disabled={busy}>
          Create silence
        </button>
      </div>
      {err && (
        <p className="error" role="alert">
          {err}
        </p>
      )}
    </form>
  );
}

function Rules({ canAct, state }: { canAct: boolean; state: ReturnType<typeof useRules> }) {
  const { rules, err, setErr, reload } = state;
  const toggle = (r: AlertRule) =>
    api(`/api/rules/${encodeURIComponent(r.id)}`, { method: 'PUT', body: { ...r, enabled: !r.enabled } })
      .then(reload)
      .catch((e: Error) => setErr(e.message));
  return (
    <section className="panel" aria-labelledby="rules-h">
      <h2 id="rules-h">Rules</h2>
      {err && <p className="error">{err}</p>}
      {rules && (
        <div className="table-wrap">
          <table data-testid="rules">
            <thead>
              <tr>
                <th scope="col">Rule</th>
                <th scope="col">Condition</th>
                <th scope="col">Clears at</th>
                <th scope="col">For / keep firing</th>
                <th scope="col">Severity</th>
                <th scope="col">Enabled</th>
              </tr>
            </thead>
            <tbody>
              {rules.map((r) => (
                <tr key={r.id}>
                  <td>
                    {r.name}
                    <div className="muted mono">{r.id}</div>
                  </td>
                  <td className="mono">
                    {r.metric}
                    {r.windowS > 0 ? ` over ${formatDurationS(r.windowS)}` : ''} {r.comparison}{' '}
                    {formatMetric(r.metric, r.threshold)}
                    {Object.keys(r.match).length > 0 && (
                      <div className="muted">
                        where{' '}
                        {Object.entries(r.match)
                          .map(([k, v]) => `${k}=${v}`)
                          .join(', ')}
                      </div>
                    )}
                  </td>
                  <td className="mono">{formatMetric(r.metric, r.clear)}</td>
                  <td>
                    {formatDurationS(r.forS)} / {formatDurationS(r.keepFiringForS)}
                  </td>
                  <td>
                    <span className={`sev sev-${r.severity}`}>{r.severity}</span>
                  </td>
                  <td>
                    {r.enabled ? 'yes' : 'no'}{' '}
                    <button
                      type="button"
                      className="btn btn-small btn-ghost"
                      disabled={!canAct}
                      onClick={() => toggle(r)}
                      aria-label={`${r.enabled ? 'Disable' : 'Enable'} rule ${r.name}`}
                    >
                      {r.enabled ? 'Disable' : 'Enable'}
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

interface AlertEvent {
  ts: number;
  alertId: string;
  ruleId: string;
  state: string;
  severity: string;
  labels: Record<string, string>;
  value: number | null;
  by?: string;
  comment?: string;
}

/** Every transition (pending, firing, resolved, ack, unack), newest first; reloaded when alerts change. */
function History({ version }: { version: unknown }) {
  const [events, setEvents] = useState<AlertEvent[] | null>(null);
  const [err, setErr] = useState<string | null>(null);
  useEffect(() => {
    const ctl = new AbortController();
    api<{ events: AlertEvent[] }>('/api/alerts/history?limit=50', { signal: ctl.signal })
      .then((r) => setEvents(r.events))
      .catch((e: Error) => {
        if (e.name !== 'AbortError') setErr(e.message);
      });
    return () => ctl.abort();
  }, [version]);
  return (
    <section className="panel" aria-labelledby="hist-h">
      <h2 id="hist-h">History</h2>
      {err && <p className="error">{err}</p>}
      {events && events.length === 0 && <p className="muted">No alert has changed state yet.</p>}
      {events && events.length > 0 && (
        <div className="table-wrap" style={{ maxHeight: 320, overflowY: 'auto' }}>
          <table data-testid="alert-history">
            <thead>
              <tr>
                <th scope="col">Time (UTC)</th>
                <th scope="col">Event</th>
                <th scope="col">Alert</th>
                <th scope="col">Subject</th>
                <th scope="col">By / comment</th>
              </tr>
            </thead>
            <tbody>
              {events.map((e, i) => (
                <tr key={`${e.ts}-${e.alertId}-${i}`}>
                  <td className="mono">{formatTimestamp(e.ts)}</td>
                  <td>
                    <StatePill state={e.state} />
                  </td>
                  <td>
                    <span className={`sev sev-${e.severity}`}>{e.severity}</span>{' '}
                    {e.labels.alertname ?? e.ruleId}
                  </td>
                  <td>
                    {[e.labels.node, e.labels.link && `link ${e.labels.link}`].filter(Boolean).join(' · ') ||
                      '—'}
                  </td>
                  <td>
                    {e.by ?? ''}
                    {e.comment && <div className="muted">{e.comment}</div>}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
