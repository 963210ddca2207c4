/**
 * Alert rules, their evaluation (every second), the pending → firing → resolved state machine with
 * hysteresis (`clear`), `for` and keep-firing-for, acknowledgements, silences and history.
 *
 * Evaluation is synchronous and cheap (one pass over the fleet per rule); notifications are handed to the
 * Notifier's queues and never awaited here, so a slow webhook cannot delay evaluation.
 */
import { createHash, randomBytes } from 'node:crypto';
import {
  type Alert,
  type AlertRule,
  AlertRuleSchema,
  alertSummary,
  describeZodError,
  formatMetric,
  type Matcher,
  MatcherSchema,
  PROVIDER_CLASSES,
  type ProviderClass,
  type Silence,
} from '@rdmaq/shared';
import { z } from 'zod';
import { badRequest, conflict, HubError, notFound } from './errors.js';
import type { Logger } from './log.js';
import type { Fleet, LinkEnd } from './model/fleet.js';
import { compileSafeRegex, MAX_PROGRAM, RegexError, type SafeRegex } from './regex.js';
import type { Store } from './store/store.js';

/**
 * Queue-latency p99 thresholds per provider class (ns): what is sick on an RDMA NIC is normal on kernel TCP.
 * One default rule per class (`link-latency-p99-<class>`, all named LinkLatencyP99High), each matching
 * `provider_class`, so every class's figures are an ordinary rule operators read and edit on the alerts page
 * and through /api/rules. Reasons in README.md (Alerts).
 */
export const LATENCY_P99_DEFAULTS: Record<ProviderClass, { threshold: number; clear: number }> = {
  rdma: { threshold: 500_000, clear: 250_000 },
  tcp: { threshold: 20_000_000, clear: 10_000_000 },
  shm: { threshold: 10_000_000, clear: 5_000_000 },
  other: { threshold: 20_000_000, clear: 10_000_000 },
};

/**
 * p99 over the last 30 s (30–35 s: 5 s slots), pending 45 s, keep-firing 30 s. `for` is longer than the
 * window on purpose: one slow second holds a window's p99 up for as long as it stays in the window (30–35 s),
 * so with `for` ≤ the window a single stall would fire. With 45 s, episodes under ~10 s never fire and a
 * lasting slowdown fires ~46 s after it began; it resolves 30–35 s (window) + 30 s after it ended.
 */
const latencyRule = (cls: ProviderClass): AlertRule => ({
  id: `link-latency-p99-${cls}`,
  name: 'LinkLatencyP99High',
  metric: 'latency_p99',
  comparison: '>',
  threshold: LATENCY_P99_DEFAULTS[cls].threshold,
  clear: LATENCY_P99_DEFAULTS[cls].clear,
  windowS: 30,
  forS: 45,
  keepFiringForS: 30,
  severity: 'warning',
  labels: {},
  enabled: true,
  // The agents' own links only: an application's bulk stream (an all-reduce moves MiBs per step) measures
  // its own bursts in queue latency, not the fabric's health — it is judged by down / stalled / ring-stuck.
  // To watch one application's latency, add a rule with match { app: '<name>' }.
  match: { provider_class: cls, origin: 'agent' },
});

/** The single latency rule installed before provider classes; replaced by the per-class ones on upgrade. */
const LEGACY_LATENCY_RULE: AlertRule = {
  id: 'link-latency-p99',
  name: 'LinkLatencyP99High',
  metric: 'latency_p99',
  comparison: '>',
  threshold: 1_000_000,
  clear: 500_000,
  windowS: 0,
  forS: 30,
  keepFiringForS: 60,
  severity: 'warning',
  labels: {},
  enabled: true,
  match: {},
};

/** Version of the default rule set in the `rules_seeded` setting (1: before provider classes). */
/** '2': latency rules per provider class; '3': LinkStalled. */
const RULES_VERSION = '6';
/** '6': latency rules judge the agents' links only (origin agent). */
/** '5': RingFullNoProgress. Each default rule added after the first seeding, with the version that added it. */
const RULES_ADDED_IN: Record<string, number> = { 'link-stalled': 3, 'ring-stuck': 5 };
/** Ring occupancy (fraction of capacity) from which a ring with no delivery counts as stuck. */
export const RING_STUCK_RATIO = 0.95;

export const DEFAULT_RULES: AlertRule[] = [
  ...PROVIDER_CLASSES.map(latencyRule),
  {
    id: 'ring-occupancy',
    name: 'RingOccupancyHigh',
    metric: 'occupancy_ratio',
    comparison: '>',
    threshold: 0.9,
    clear: 0.7,
    windowS: 0,
    forS: 10,
    keepFiringForS: 30,
    severity: 'warning',
    labels: {},
    enabled: true,
    match: {},
  },
  {
    id: 'link-down',
    name: 'LinkDown',
    metric: 'link_down',
    comparison: '>=',
    threshold: 1,
    clear: 1,
    windowS: 0,
    forS: 5,
    keepFiringForS: 0,
    severity: 'critical',
    labels: {},
    enabled: true,
    match: {},
  },
  {
    // rdma-core's own verdict from both ends' heartbeats (5 s without progress while records wait); 10 s
    // more here, so a consumer that pauses briefly does not page anyone.
    id: 'link-stalled',
    name: 'LinkStalled',
    metric: 'link_stalled',
    comparison: '>=',
    threshold: 1,
    clear: 1,
    windowS: 0,
    forS: 10,
    keepFiringForS: 0,
    severity: 'critical',
    labels: {},
    enabled: true,
    match: {},
  },
  {
    // A ring ≥ 95 % full on either end (the sender's unacknowledged bytes, the receiver's ring) while no
    // record moves on that end, for 10 s: nothing gets through. Critical on BOTH ends, so each host's page
    // and the sender's application owner see it even when one agent can no longer report.
    id: 'ring-stuck',
    name: 'RingFullNoProgress',
    metric: 'ring_stuck',
    comparison: '>=',
    threshold: 10,
    clear: 1,
    windowS: 0,
    forS: 0,
    keepFiringForS: 0,
    severity: 'critical',
    labels: {},
    enabled: true,
    match: {},
  },
  {
    id: 'agent-offline',
    name: 'AgentOffline',
    metric: 'agent_offline',
    comparison: '>',
    // Seconds without a sample: fires as the hub's freshness.offlineAfterS default (10 s) judges the node
    // offline, so a cut-off host is named within ~11 s.
    threshold: 10,
    clear: 5,
    windowS: 0,
    forS: 0,
    keepFiringForS: 0,
    severity: 'critical',
    labels: {},
    enabled: true,
    match: {},
  },
  {
    id: 'error-rate',
    name: 'LinkErrors',
    metric: 'errors_rate',
    comparison: '>',
    threshold: 1,
    clear: 0.1,
    windowS: 0,
    forS: 30,
    keepFiringForS: 60,
    severity: 'warning',
    labels: {},
    enabled: true,
    match: {},
  },
];

const cmp = (op: AlertRule['comparison'], v: number, t: number) =>
  op === '>' ? v > t : op === '>=' ? v >= t : op === '<' ? v < t : v <= t;

const isLatency = (m: AlertRule['metric']) => m.startsWith('latency_');

/** A metric's value in its unit, for summaries and notifications: "61.2 ms", "95 %", "3.5/s" (shared format.ts). */
export function formatMetricValue(metric: AlertRule['metric'], v: number | null): string {
  return v === null || !Number.isFinite(v) ? 'no data' : formatMetric(metric, v);
}

interface SeriesValue {
  /** Link key or node id. */
  key: string;
  labels: () => Record<string, string>;
  value: number | null;
}

interface ActiveAlert {
  alert: Alert;
  keepUntil: number | null;
  /** A firing notification went out (so a resolved one must follow). */
  notified: boolean;
  sig: string;
  /** What is persisted (state, ack, notified, keep-firing deadline) as last written. */
  psig: string;
  seriesKey: string;
}

export interface AlertChanges {
  upserted: Alert[];
  removed: string[];
  resolved: Alert[];
  /** Alerts to notify now (newly firing and not silenced, or resolved after a firing notification). */
  notify: Alert[];
}

export interface AlertSink {
  notify(alerts: Alert[]): void;
}

const SilenceInputSchema = z.object({
  matchers: z.array(MatcherSchema).min(1).max(20),
  startsAt: z.number().int().nonnegative().optional(),
  endsAt: z.number().int().positive().optional(),
  durationS: z
    .number()
    .positive()
    .max(366 * 86_400)
    .optional(),
  comment: z.string().max(1024).default(''),
});

/** Most alert rules (each is evaluated over every link end every second). */
export const MAX_RULES = 500;
/** Most `labels` and `match` entries per rule. */
export const MAX_RULE_LABELS = 32;
/** Most silences kept (active or pending); each is checked against every active alert every second. */
export const MAX_SILENCES = 1000;
/** Budget of regex program steps (regex.ts) per silence: bounds what one silence costs per label value. */
export const MAX_SILENCE_REGEX_STEPS = 2 * MAX_PROGRAM;
const MAX_SILENCE_MS = 366 * 86_400_000;

type LabelPredicate = (labels: Record<string, string>) => boolean;

/**
 * A silence's matchers as one predicate. Regex matchers use the linear-time matcher (regex.ts), never
 * RegExp: label values are chosen by agents. Throws RegexError naming the matcher and the problem.
 */
export function compileMatchers(matchers: Matcher[]): LabelPredicate {
  let steps = 0;
  const preds = matchers.map((m) => {
    let test: (v: string) => boolean;
    if (m.isRegex) {
      let re: SafeRegex;
      try {
        re = compileSafeRegex(m.value);
      } catch (err) {
        throw new RegexError(`matcher ${m.name}: ${(err as Error).message}`);
      }
      steps += re.size;
      test = (v) => re.test(v);
    } else test = (v) => v === m.value;
    const negate = m.isEqual === false;
    return (labels: Record<string, string>) => test(labels[m.name] ?? '') !== negate;
  });
  if (steps > MAX_SILENCE_REGEX_STEPS) {
    throw new RegexError(
      `the regex matchers of one silence compile to ${steps} steps; at most ${MAX_SILENCE_REGEX_STEPS} (fewer or simpler patterns)`,
    );
  }
  return (labels) => preds.every((p) => p(labels));
}

export class AlertEngine {
  private rules: AlertRule[] = [];
  private readonly active = new Map<string, ActiveAlert>();
  /** rule id → series key → alert id, so unchanged healthy series cost no hashing. */
  private readonly bySeries = new Map<string, Map<string, string>>();
  /** Link key → agent time (ms) since which its ring has been full with nothing moving (`ring_stuck`). */
  private readonly stuckSince = new Map<string, number>();
  private readonly recent: Alert[] = [];
  private silences: Silence[] = [];
  /** Silence id → its matchers compiled; null for a stored silence invalid under the current rules. */
  private readonly silenceMatch = new Map<string, LabelPredicate | null>();
  private pendingChanges: AlertChanges = { upserted: [], removed: [], resolved: [], notify: [] };
  private readonly insertEvent;
  private readonly stmts;

  constructor(
    private readonly store: Store,
    private readonly fleet: Fleet,
    private readonly log: Logger,
    private readonly now: () => number,
    private readonly sink: AlertSink,
  ) {
    const db = store.db;
    this.insertEvent = db.prepare(
      'INSERT INTO alert_events (ts, alert_id, rule_id, state, severity, labels, value, by, comment) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
    );
    this.stmts = {
      upsertActive: db.prepare(
        'INSERT OR REPLACE INTO alerts_active (id, rule_id, series_key, json, notified, keep_until) VALUES (?, ?, ?, ?, ?, ?)',
      ),
      deleteActive: store.destructive('DELETE FROM alerts_active WHERE id = ?'),
    };
    // Active alerts (with their acks, keep-firing deadlines and whether they were notified) survive a
    // restart: no duplicate notifications, no lost acknowledgements.
    for (const r of db.prepare('SELECT * FROM alerts_active').all() as Array<{
      id: string;
      rule_id: string;
      series_key: string;
      json: string;
      notified: number;
      keep_until: number | null;
    }>) {
      const alert = JSON.parse(r.json) as Alert;
      const a: ActiveAlert = {
        alert,
        keepUntil: r.keep_until,
        notified: r.notified === 1,
        sig: '',
        psig: `${alert.state}|${alert.ack?.at ?? ''}|${r.notified === 1}|${r.keep_until ?? ''}`,
        seriesKey: r.series_key,
      };
      this.active.set(r.id, a);
      let byKey = this.bySeries.get(r.rule_id);
      if (!byKey) {
        byKey = new Map();
        this.bySeries.set(r.rule_id, byKey);
      }
      byKey.set(r.series_key, r.id);
    }
    const seeded = store.getSetting('rules_seeded');
    if (!seeded) {
      db.transaction(() => {
        for (const r of DEFAULT_RULES) this.saveRule(r, 'system');
        store.setSetting('rules_seeded', RULES_VERSION);
      })();
    } else if (seeded === '1') {
      this.upgradeLatencyRules();
    }
    if (seeded && seeded !== RULES_VERSION) {
      this.upgradeAgentOfflineRule();
      this.upgradeLatencyRulesToAgentLinks();
      this.addNewDefaultRules(seeded);
    }
    this.loadRules();
    this.silences = (
      db
        .prepare('SELECT * FROM silences WHERE ends_at > ? ORDER BY created_at')
        .all(this.now() - 7 * 86_400_000) as Array<{
        id: string;
        matchers: string;
        starts_at: number;
        ends_at: number;
        created_by: string;
        comment: string;
      }>
    ).map((r) => {
      const s: Silence = {
        id: r.id,
        matchers: [],
        startsAt: r.starts_at,
        endsAt: r.ends_at,
        createdBy: r.created_by,
        comment: r.comment,
        status: 'active',
      };
      // A silence stored before the matching rules tightened (a backtracking pattern, say) must not hang
      // the start or the evaluation: it is kept, listed with the reason, and silences nothing.
      try {
        const parsed = z.array(MatcherSchema).min(1).safeParse(JSON.parse(r.matchers));
        if (!parsed.success) throw new RegexError(describeZodError(parsed.error));
        s.matchers = parsed.data;
        this.silenceMatch.set(s.id, compileMatchers(s.matchers));
      } catch (err) {
        s.invalid = `${(err as Error).message}; this silence silences nothing: expire it and create a new one`;
        if (!s.matchers.length)
          s.matchers = [{ name: '(invalid)', value: '', isRegex: false, isEqual: true }];
        this.silenceMatch.set(s.id, null);
        this.log.error({ silence: s.id, reason: s.invalid }, 'stored silence is invalid: skipped');
      }
      return s;
    });
  }

  /**
   * Databases seeded before provider classes have one latency rule for every link (p99 > 1 ms on the last
   * sample: it fired on every healthy TCP link). Untouched by operators, it is replaced by the per-class
   * rules (keeping its enabled flag); edited or deleted, it is left alone and the per-class rules are added
   * disabled, for an operator to enable. Rules that already exist under the new ids are never overwritten.
   */
  private upgradeLatencyRules(): void {
    const db = this.store.db;
    db.transaction(() => {
      const row = db.prepare('SELECT json FROM alert_rules WHERE id = ?').get(LEGACY_LATENCY_RULE.id) as
        | { json: string }
        | undefined;
      let enabled = false;
      if (row) {
        const old = AlertRuleSchema.safeParse(JSON.parse(row.json));
        const canon = (r: AlertRule) =>
          JSON.stringify(
            Object.keys(r)
              .sort()
              .map((k) => [k, k === 'enabled' ? true : r[k as keyof AlertRule]]),
          );
        const same = old.success && canon(old.data) === canon(LEGACY_LATENCY_RULE);
        if (same) {
          enabled = old.data.enabled;
          this.store.destructive('DELETE FROM alert_rules WHERE id = ?').run(LEGACY_LATENCY_RULE.id);
        } else {
          this.log.warn(
            { rule: LEGACY_LATENCY_RULE.id },
            'the latency rule was edited here: kept; the per-provider-class latency rules are added disabled',
          );
        }
      }
      const exists = db.prepare('SELECT 1 FROM alert_rules WHERE id = ?');
      for (const r of DEFAULT_RULES) {
        if (!r.id.startsWith('link-latency-p99-') || exists.get(r.id)) continue;
        this.saveRule({ ...r, enabled }, 'system');
      }
      this.store.setSetting('rules_seeded', RULES_VERSION);
    })();
  }

  /**
   * AgentOffline's default went from 30 s to 10 s (stores seeded before rules version 5): a stored rule
   * still exactly at the old default is moved to the new one; one an operator changed is left alone.
   */
  private upgradeAgentOfflineRule(): void {
    const row = this.store.db.prepare('SELECT json FROM alert_rules WHERE id = ?').get('agent-offline') as
      | { json: string }
      | undefined;
    if (!row) return;
    const r = AlertRuleSchema.parse(JSON.parse(row.json));
    const def = DEFAULT_RULES.find((d) => d.id === 'agent-offline');
    if (!def || r.threshold !== 30 || r.clear !== 5 || r.forS !== 0) return;
    this.saveRule({ ...r, threshold: def.threshold, clear: def.clear }, 'system');
  }

  /**
   * Rules version 6: the per-class latency rules an operator left as installed (match exactly
   * { provider_class }) judge the agents' links only; edited ones stay as they are.
   */
  private upgradeLatencyRulesToAgentLinks(): void {
    for (const def of DEFAULT_RULES.filter((r) => r.id.startsWith('link-latency-p99-'))) {
      const row = this.store.db.prepare('SELECT json FROM alert_rules WHERE id = ?').get(def.id) as
        | { json: string }
        | undefined;
      if (!row) continue;
      const r = AlertRuleSchema.parse(JSON.parse(row.json));
      const keys = Object.keys(r.match);
      if (keys.length !== 1 || r.match.provider_class !== def.match.provider_class) continue;
      this.saveRule({ ...r, match: { ...r.match, origin: 'agent' } }, 'system');
    }
  }

  /**
   * Default rules added since the store was seeded (LinkStalled in 3, RingFullNoProgress in 5): each added
   * once, by the first start of a version that has it, never overwriting (and never again after an operator
   * deleted it).
   */
  private addNewDefaultRules(seeded: string): void {
    const db = this.store.db;
    const from = Number(seeded) || 1;
    db.transaction(() => {
      const exists = db.prepare('SELECT 1 FROM alert_rules WHERE id = ?');
      for (const r of DEFAULT_RULES) {
        const since = RULES_ADDED_IN[r.id];
        if (since === undefined || since <= from || exists.get(r.id)) continue;
        this.saveRule(r, 'system');
      }
      this.store.setSetting('rules_seeded', RULES_VERSION);
    })();
  }

  private loadRules(): void {
    this.rules = (
      this.store.db.prepare('SELECT json FROM alert_rules ORDER BY id').all() as Array<{ json: string }>
    ).map((r) => AlertRuleSchema.parse(JSON.parse(r.json)));
  }

  private saveRule(r: AlertRule, by: string): void {
    this.store.db
      .prepare(
        `INSERT INTO alert_rules (id, json, updated_at, updated_by) VALUES (?, ?, ?, ?)
         ON CONFLICT(id) DO UPDATE SET json = excluded.json, updated_at = excluded.updated_at, updated_by = excluded.updated_by`,
      )
      .run(r.id, JSON.stringify(r), this.now(), by);
  }

  listRules(): AlertRule[] {
    return this.rules;
  }

  parseRule(body: unknown): AlertRule {
    const r = AlertRuleSchema.safeParse(body);
    if (!r.success) throw badRequest(`rule: ${describeZodError(r.error)}`);
    const rule = r.data;
    for (const k of ['labels', 'match'] as const) {
      if (Object.keys(rule[k]).length > MAX_RULE_LABELS)
        throw badRequest(`rule: ${k}: at most ${MAX_RULE_LABELS} entries`);
    }
    if (rule.windowS > 0 && !isLatency(rule.metric)) {
      throw badRequest(`rule: windowS applies to latency metrics only; use 0 for ${rule.metric}`);
    }
    if (rule.windowS > this.fleet.latencyWindowS) {
      throw badRequest(
        `rule: windowS ${rule.windowS} exceeds the ${this.fleet.latencyWindowS} s of latency histograms the hub keeps (history.latencyWindowS)`,
      );
    }
    return rule;
  }

  createRule(body: unknown, by: string): AlertRule {
    const rule = this.parseRule(body);
    if (this.rules.some((r) => r.id === rule.id))
      throw conflict(`rule ${rule.id} exists; PUT /api/rules/${rule.id}`);
    if (this.rules.length >= MAX_RULES) {
      throw new HubError('ERR_RDMAQ_LIMIT', `rule: at most ${MAX_RULES} rules; delete unused ones`, 409);
    }
    this.saveRule(rule, by);
    this.loadRules();
    return rule;
  }

  updateRule(id: string, body: unknown, by: string): AlertRule {
    if (!this.rules.some((r) => r.id === id)) throw notFound(`no rule ${id}`);
    const rule = this.parseRule(body);
    if (rule.id !== id) throw badRequest(`rule id in the body (${rule.id}) differs from the URL (${id})`);
    this.saveRule(rule, by);
    this.loadRules();
    return rule;
  }

  deleteRule(id: string): void {
    if (this.store.destructive('DELETE FROM alert_rules WHERE id = ?').run(id).changes === 0) {
      throw notFound(`no rule ${id}`);
    }
    this.loadRules();
  }

  // ───────────────────────────── evaluation ─────────────────────────────

  private static linkLabels(l: LinkEnd): Record<string, string> {
    return {
      node: l.node,
      link: l.id,
      link_key: l.key,
      peer: l.peer,
      direction: l.direction,
      transport: l.transport,
      provider: l.provider,
      provider_class: l.providerClass,
      origin: l.app === undefined ? 'agent' : 'app',
      ...(l.app !== undefined ? { app: l.app } : {}),
    };
  }

  /** One label of a link end without building them all (rule matching runs for every link every second). */
  private static linkLabel(l: LinkEnd, name: string): string | undefined {
    switch (name) {
      case 'node':
        return l.node;
      case 'link':
        return l.id;
      case 'link_key':
        return l.key;
      case 'peer':
        return l.peer;
      case 'direction':
        return l.direction;
      case 'transport':
        return l.transport;
      case 'provider':
        return l.provider;
      case 'provider_class':
        return l.providerClass;
      case 'origin':
        return l.app === undefined ? 'agent' : 'app';
      case 'app':
        return l.app;
      default:
        return undefined;
    }
  }

  /**
   * The rule's series: one per link end (or node). Labels are built lazily: evaluation touches every link
   * every second, but labels and fingerprints are needed only for series that are or become active.
   */
  private series(rule: AlertRule, now: number): SeriesValue[] {
    const out: SeriesValue[] = [];
    const filtered = Object.keys(rule.match).length > 0;
    const matchOk = (labels: Record<string, string>) => {
      for (const k in rule.match) if (labels[k] !== rule.match[k]) return false;
      return true;
    };
    if (rule.metric === 'agent_offline') {
      for (const n of this.fleet.nodes.values()) {
        const labels = () => ({ node: n.id, hostname: n.hostname });
        if (filtered && !matchOk(labels())) continue;
        out.push({
          key: n.id,
          labels,
          // Seconds since its last sample once the node is not fresh (connected or not: a cut-off host's
          // connection can look open for minutes).
          value: this.fleet.freshnessOf(n, now) === 'fresh' ? 0 : (now - n.lastDataAt) / 1000,
        });
      }
      return out;
    }
    if (rule.metric === 'ring_stuck') return this.ringStuckSeries(filtered ? matchOk : undefined, now);
    for (const l of this.fleet.links.values()) {
      const n = this.fleet.nodes.get(l.node);
      // Figures of a stale or offline agent are frozen; agent-offline speaks for it.
      if (!n || this.fleet.freshnessOf(n, now) !== 'fresh') continue;
      // An end whose peer went silent (down, its ring filling, its latency frozen…): the peer's agent-offline
      // alert names the host at fault (inhibition, as Alertmanager's inhibit rules do), so a cut-off host
      // raises one alert, not several per peer.
      const peer = this.fleet.nodes.get(l.peerNode ?? l.peer);
      if (peer && this.fleet.freshnessOf(peer, now) !== 'fresh') continue;
      if (filtered) {
        let ok = true;
        for (const k in rule.match) {
          if (AlertEngine.linkLabel(l, k) !== rule.match[k]) {
            ok = false;
            break;
          }
        }
        if (!ok) continue;
      }
      let v: number;
      switch (rule.metric) {
        case 'latency_p50':
          v = rule.windowS > 0 ? this.fleet.windowQuantile(l, rule.windowS, 0.5, now) : l.p50;
          break;
        case 'latency_p99':
          v = rule.windowS > 0 ? this.fleet.windowQuantile(l, rule.windowS, 0.99, now) : l.p99;
          break;
        case 'latency_p999':
          v = rule.windowS > 0 ? this.fleet.windowQuantile(l, rule.windowS, 0.999, now) : l.p999;
          break;
        case 'records_rate':
          v = l.recordsPerS;
          break;
        case 'bytes_rate':
          v = l.bytesPerS;
          break;
        case 'completions_rate':
          v = l.completionsPerS;
          break;
        case 'backpressure_rate':
          v = l.backpressurePerS;
          break;
        case 'errors_rate':
          v = l.errorsPerS;
          break;
        case 'occupancy_ratio':
          v = l.capacityBytes > 0 ? l.occupancyBytes / l.capacityBytes : Number.NaN;
          break;
        case 'link_down':
          v = l.state === 'down' ? 1 : 0;
          break;
        case 'link_stalled':
          v = l.state === 'stalled' ? 1 : 0;
          break;
        default:
          v = Number.NaN;
      }
      out.push({ key: l.key, labels: () => AlertEngine.linkLabels(l), value: Number.isFinite(v) ? v : null });
    }
    return out;
  }

  /** Whether a node's figures are current (the hub's freshness: connected and sampling). */
  private freshFigures(node: string, now: number): boolean {
    const n = this.fleet.nodes.get(node);
    return n !== undefined && this.fleet.freshnessOf(n, now) === 'fresh';
  }

  /**
   * Seconds (agent clock, from its samples) this end's ring has been ≥ RING_STUCK_RATIO full while no record
   * moved on it: the sender's unacknowledged bytes with nothing accepted, or the receiver's ring with nothing
   * delivered. 0 when it is not.
   */
  private endStuckS(l: LinkEnd): number {
    const full = l.capacityBytes > 0 && l.occupancyBytes >= RING_STUCK_RATIO * l.capacityBytes;
    if (!full || l.recordsPerS > 0) {
      this.stuckSince.delete(l.key);
      return 0;
    }
    let since = this.stuckSince.get(l.key);
    if (since === undefined || since > l.ts) {
      since = l.ts;
      this.stuckSince.set(l.key, since);
    }
    return (l.ts - since) / 1000;
  }

  /**
   * `ring_stuck` per link END, judged on both ends: an end's value is the longer stuck time of itself and its
   * other end (`<peer>~<id>`): a consumer that stops consuming while both hosts report alerts on the
   * receiver's end AND the sender's (its mirror stays full), and each host's page shows it. While either
   * host is not fresh the link is left out: the silent host's agent-offline alert speaks for it.
   */
  private ringStuckSeries(
    match: ((labels: Record<string, string>) => boolean) | undefined,
    now: number,
  ): SeriesValue[] {
    const own = new Map<string, number>();
    for (const l of this.fleet.links.values()) {
      if (this.freshFigures(l.node, now)) own.set(l.key, this.endStuckS(l));
    }
    for (const k of this.stuckSince.keys()) if (!own.has(k)) this.stuckSince.delete(k);
    const out: SeriesValue[] = [];
    for (const l of this.fleet.links.values()) {
      const mine = own.get(l.key);
      const theirs = own.get(`${l.peer}~${l.id}`);
      if (mine === undefined && theirs === undefined) continue;
      // A ring stuck because one of its hosts went silent is that host's agent-offline alert, not two
      // more per link (inhibition: a cut-off host raises one alert that names it).
      if (!this.freshFigures(l.node, now) || !this.freshFigures(l.peerNode ?? l.peer, now)) continue;
      const labels = () => AlertEngine.linkLabels(l);
      if (match && !match(labels())) continue;
      out.push({ key: l.key, labels, value: Math.max(mine ?? 0, theirs ?? 0) });
    }
    return out;
  }

  private fingerprint(ruleId: string, labels: Record<string, string>): string {
    const keys = Object.keys(labels).sort();
    const h = createHash('sha1').update(ruleId);
    for (const k of keys) h.update(`\0${k}=${labels[k]}`);
    return h.digest('hex').slice(0, 16);
  }

  private summary(rule: AlertRule, labels: Record<string, string>, value: number | null): string {
    return alertSummary(rule, labels, value);
  }

  private event(a: Alert, state: string, by?: string, comment?: string): void {
    this.insertEvent.run(
      this.now(),
      a.id,
      a.ruleId,
      state,
      a.severity,
      JSON.stringify(a.labels),
      a.value,
      by ?? null,
      comment ?? null,
    );
  }

  /** One evaluation round; returns what changed (also accumulated for `takeChanges`). */
  evaluate(now = this.now()): AlertChanges {
    const ch: AlertChanges = { upserted: [], removed: [], resolved: [], notify: [] };
    const seen = new Set<string>();
    const activeSilences: Array<{ id: string; match: LabelPredicate }> = [];
    for (const s of this.silences) {
      const match = this.silenceMatch.get(s.id);
      if (match && s.startsAt <= now && s.endsAt > now) activeSilences.push({ id: s.id, match });
    }
    const store = this.store.db;
    store.transaction(() => {
      for (const rule of this.rules) {
        if (!rule.enabled) continue;
        let byKey = this.bySeries.get(rule.id);
        if (!byKey) {
          byKey = new Map();
          this.bySeries.set(rule.id, byKey);
        }
        for (const s of this.series(rule, now)) {
          const cond = s.value !== null && cmp(rule.comparison, s.value, rule.threshold);
          const still = s.value !== null && cmp(rule.comparison, s.value, rule.clear);
          const known = byKey.get(s.key);
          let a = known === undefined ? undefined : this.active.get(known);
          if (!a) {
            if (!cond) continue;
            const labels = {
              alertname: rule.name,
              rule: rule.id,
              severity: rule.severity,
              ...rule.labels,
              ...s.labels(),
            };
            const fp = this.fingerprint(rule.id, labels);
            a = {
              alert: {
                id: fp,
                ruleId: rule.id,
                ruleName: rule.name,
                state: 'pending',
                severity: rule.severity,
                labels,
                summary: this.summary(rule, labels, s.value),
                metric: rule.metric,
                value: s.value,
                threshold: rule.threshold,
                activeAt: now,
                firedAt: null,
                resolvedAt: null,
                ack: null,
                silencedBy: [],
              },
              keepUntil: null,
              notified: false,
              sig: '',
              psig: '',
              seriesKey: s.key,
            };
            this.active.set(fp, a);
            byKey.set(s.key, fp);
            this.event(a.alert, 'pending');
          }
          const id = a.alert.id;
          seen.add(id);
          const al = a.alert;
          al.value = s.value;
          al.summary = this.summary(rule, al.labels, s.value);
          al.metric = rule.metric;
          if (al.state === 'pending') {
            if (!cond) {
              this.forget(a);
              ch.removed.push(id);
              this.event(al, 'inactive');
              continue;
            }
            if (now - al.activeAt >= rule.forS * 1000) {
              al.state = 'firing';
              al.firedAt = now;
              this.event(al, 'firing');
              this.log.info(
                { alert: al.id, rule: rule.id, labels: al.labels, value: s.value },
                'alert firing',
              );
            }
          } else if (al.state === 'firing') {
            if (still) a.keepUntil = null;
            else {
              a.keepUntil ??= now + rule.keepFiringForS * 1000;
              if (now >= a.keepUntil) {
                this.resolve(a, now, ch);
              }
            }
          }
        }
      }
      // Series that vanished (link closed, rule deleted or disabled) end their alerts. An alert on a node
      // whose agent is away (or not back yet after a hub restart) stays as it is: its figures are unknown
      // and agent-offline speaks for it.
      const live = new Set(this.rules.filter((r) => r.enabled).map((r) => r.id));
      for (const [id, a] of this.active) {
        if (seen.has(id)) continue;
        const node = a.alert.labels.node;
        const nn = node === undefined ? undefined : this.fleet.nodes.get(node);
        if (
          live.has(a.alert.ruleId) &&
          node !== undefined &&
          (!nn || this.fleet.freshnessOf(nn, now) !== 'fresh')
        )
          continue;
        if (a.alert.state === 'pending') {
          this.forget(a);
          ch.removed.push(id);
          this.event(a.alert, 'inactive');
        } else this.resolve(a, now, ch);
      }
      for (const a of this.active.values()) {
        const al = a.alert;
        al.silencedBy = activeSilences.filter((s) => s.match(al.labels)).map((s) => s.id);
        if (al.state === 'firing' && !a.notified && al.silencedBy.length === 0) {
          a.notified = true;
          ch.notify.push(structuredClone(al));
        }
        const sig = `${al.state}|${al.value}|${al.ack?.at ?? ''}|${al.silencedBy.join(',')}`;
        if (sig !== a.sig) {
          a.sig = sig;
          ch.upserted.push(structuredClone(al));
        }
        this.persist(a);
      }
    })();
    if (ch.notify.length) this.sink.notify(ch.notify);
    this.pendingChanges.upserted.push(...ch.upserted);
    this.pendingChanges.removed.push(...ch.removed);
    this.pendingChanges.resolved.push(...ch.resolved);
    return ch;
  }

  private forget(a: ActiveAlert): void {
    this.active.delete(a.alert.id);
    this.bySeries.get(a.alert.ruleId)?.delete(a.seriesKey);
    this.stmts.deleteActive.run(a.alert.id);
  }

  /** Writes an active alert when what survives a restart changed (not on every value change). */
  private persist(a: ActiveAlert): void {
    const psig = `${a.alert.state}|${a.alert.ack?.at ?? ''}|${a.notified}|${a.keepUntil ?? ''}`;
    if (psig === a.psig) return;
    a.psig = psig;
    this.stmts.upsertActive.run(
      a.alert.id,
      a.alert.ruleId,
      a.seriesKey,
      JSON.stringify(a.alert),
      a.notified ? 1 : 0,
      a.keepUntil,
    );
  }

  private resolve(a: ActiveAlert, now: number, ch: AlertChanges): void {
    const al = a.alert;
    al.state = 'resolved';
    al.resolvedAt = now;
    this.forget(a);
    this.event(al, 'resolved');
    const copy = structuredClone(al);
    ch.removed.push(al.id);
    ch.resolved.push(copy);
    this.recent.unshift(copy);
    if (this.recent.length > 100) this.recent.pop();
    if (a.notified) ch.notify.push(copy);
  }

  /** Changes since the previous call (for the live hub), merged. */
  takeChanges(): AlertChanges {
    const c = this.pendingChanges;
    this.pendingChanges = { upserted: [], removed: [], resolved: [], notify: [] };
    return c;
  }

  activeAlerts(): Alert[] {
    return [...this.active.values()].map((a) => a.alert);
  }

  firing(): Alert[] {
    return this.activeAlerts().filter((a) => a.state === 'firing');
  }

  recentResolved(): Alert[] {
    return this.recent;
  }

  counts(): { firing: number; pending: number } {
    let firing = 0;
    let pending = 0;
    for (const a of this.active.values()) {
      if (a.alert.state === 'firing') firing++;
      else pending++;
    }
    return { firing, pending };
  }

  ack(id: string, by: string, comment: unknown): Alert {
    const a = this.active.get(id);
    if (!a) throw notFound(`no active alert ${id}`);
    const text = typeof comment === 'string' ? comment.slice(0, 1024) : '';
    a.alert.ack = { by, at: this.now(), comment: text };
    this.event(a.alert, 'ack', by, text);
    this.touch(a);
    return a.alert;
  }

  unack(id: string, by: string): Alert {
    const a = this.active.get(id);
    if (!a) throw notFound(`no active alert ${id}`);
    a.alert.ack = null;
    this.event(a.alert, 'unack', by);
    this.touch(a);
    return a.alert;
  }

  private touch(a: ActiveAlert): void {
    a.sig = '';
    this.persist(a);
    this.pendingChanges.upserted.push(structuredClone(a.alert));
  }

  history(limit: number, before?: number) {
    return (
      this.store.db
        .prepare(
          'SELECT ts, alert_id, rule_id, state, severity, labels, value, by, comment FROM alert_events WHERE ts < ? ORDER BY id DESC LIMIT ?',
        )
        .all(before ?? Number.MAX_SAFE_INTEGER, Math.min(Math.max(1, limit), 1000)) as Array<{
        ts: number;
        alert_id: string;
        rule_id: string;
        state: string;
        severity: string;
        labels: string;
        value: number | null;
        by: string | null;
        comment: string | null;
      }>
    ).map((r) => ({
      ts: r.ts,
      alertId: r.alert_id,
      ruleId: r.rule_id,
      state: r.state,
      severity: r.severity,
      labels: JSON.parse(r.labels) as Record<string, string>,
      value: r.value,
      ...(r.by ? { by: r.by } : {}),
      ...(r.comment ? { comment: r.comment } : {}),
    }));
  }

  // ───────────────────────────── silences ─────────────────────────────

  private status(s: Silence, now: number): Silence {
    return { ...s, status: s.endsAt <= now ? 'expired' : s.startsAt > now ? 'pending' : 'active' };
  }

  listSilences(): Silence[] {
    const now = this.now();
    return this.silences.filter((s) => s.endsAt > now - 7 * 86_400_000).map((s) => this.status(s, now));
  }

  createSilence(body: unknown, by: string): Silence {
    const r = SilenceInputSchema.safeParse(body);
    if (!r.success) throw badRequest(`silence: ${describeZodError(r.error)}`);
    const now = this.now();
    const startsAt = r.data.startsAt ?? now;
    const endsAt = r.data.endsAt ?? (r.data.durationS ? startsAt + r.data.durationS * 1000 : undefined);
    if (endsAt === undefined) throw badRequest('silence: give endsAt (ms) or durationS');
    if (endsAt <= startsAt) throw badRequest('silence: endsAt must be after startsAt');
    if (endsAt - startsAt > MAX_SILENCE_MS) throw badRequest('silence: at most 366 days long');
    let match: LabelPredicate;
    try {
      match = compileMatchers(r.data.matchers);
    } catch (err) {
      if (err instanceof RegexError) throw badRequest(`silence: ${err.message}`);
      throw err;
    }
    if (this.silences.filter((x) => x.endsAt > now).length >= MAX_SILENCES) {
      throw new HubError(
        'ERR_RDMAQ_LIMIT',
        `silence: ${MAX_SILENCES} silences are active or pending already; expire some first`,
        409,
      );
    }
    const s: Silence = {
      id: randomBytes(8).toString('hex'),
      matchers: r.data.matchers,
      startsAt,
      endsAt,
      createdBy: by,
      comment: r.data.comment,
      status: 'active',
    };
    this.store.db
      .prepare(
        'INSERT INTO silences (id, matchers, starts_at, ends_at, created_by, comment, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
      )
      .run(s.id, JSON.stringify(s.matchers), s.startsAt, s.endsAt, by, s.comment, now);
    // Silences expired for more than the week the list shows leave memory.
    this.silences = this.silences.filter((x) => {
      const keep = x.endsAt > now - 7 * 86_400_000;
      if (!keep) this.silenceMatch.delete(x.id);
      return keep;
    });
    this.silences.push(s);
    this.silenceMatch.set(s.id, match);
    return this.status(s, now);
  }

  /** Expires a silence now (kept for history). */
  expireSilence(id: string): Silence {
    const s = this.silences.find((x) => x.id === id);
    if (!s) throw notFound(`no silence ${id}`);
    const now = this.now();
    if (s.endsAt > now) {
      s.endsAt = now;
      this.store.destructive('UPDATE silences SET ends_at = ? WHERE id = ?').run(now, id);
    }
    return this.status(s, now);
  }
}
