/**
 * Figures in their units, and the texts of alerts, shared by the hub (alert summaries, the webhook and the
 * Alertmanager payload) and the browser (every figure on screen), so an operator reads the same words
 * wherever an alert reaches them. Pure functions, no zod: the browser imports this module alone
 * (`@rdmaq/shared/format`).
 *
 * Units: latencies arrive in ns and are shown in ns/µs/ms/s; ratios in %; throughput (bytes/s) in decimal
 * bit/s as link speeds are quoted; other rates per second. A missing figure reads "—", never 0.
 */

export const MISSING = '—';

function finite(v: number | null | undefined): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

/** Three significant digits without trailing noise: 3.14, 31.4, 314, 3140. */
export function sig3(v: number): string {
  const a = Math.abs(v);
  if (a === 0) return '0';
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1).replace(/\.0$/, '');
  return v.toFixed(2).replace(/\.?0+$/, '');
}

/** Duration given in nanoseconds: "850 ns", "3.2 µs", "12.5 ms", "1.2 s". */
export function formatNs(ns: number | null | undefined): string {
  if (!finite(ns) || ns < 0) return MISSING;
  if (ns < 1_000) return `${sig3(ns)} ns`;
  if (ns < 1_000_000) return `${sig3(ns / 1_000)} µs`;
  if (ns < 1_000_000_000) return `${sig3(ns / 1_000_000)} ms`;
  return `${sig3(ns / 1_000_000_000)} s`;
}

const BYTE_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

/** Byte size in binary units: "512 B", "4 MiB". */
export function formatBytes(bytes: number | null | undefined): string {
  if (!finite(bytes) || bytes < 0) return MISSING;
  let v = bytes;
  let u = 0;
  while (v >= 1024 && u < BYTE_UNITS.length - 1) {
    v /= 1024;
    u++;
  }
  return `${sig3(v)} ${BYTE_UNITS[u]}`;
}

const BIT_UNITS = ['bit/s', 'kbit/s', 'Mbit/s', 'Gbit/s', 'Tbit/s'];

/** Throughput given in bytes per second, shown in decimal bits per second as link speeds are quoted. */
export function formatBitRate(bytesPerSecond: number | null | undefined): string {
  if (!finite(bytesPerSecond) || bytesPerSecond < 0) return MISSING;
  let v = bytesPerSecond * 8;
  let u = 0;
  while (v >= 1000 && u < BIT_UNITS.length - 1) {
    v /= 1000;
    u++;
  }
  return `${sig3(v)} ${BIT_UNITS[u]}`;
}

/** Events per second: "0/s", "12.3/s", "4.5 k/s", "1.2 M/s". */
export function formatRate(perSecond: number | null | undefined): string {
  if (!finite(perSecond) || perSecond < 0) return MISSING;
  if (perSecond < 1000) return `${sig3(perSecond)}/s`;
  if (perSecond < 1e6) return `${sig3(perSecond / 1e3)} k/s`;
  if (perSecond < 1e9) return `${sig3(perSecond / 1e6)} M/s`;
  return `${sig3(perSecond / 1e9)} G/s`;
}

/** Fraction 0..1 as a percentage: 0.123 → "12.3 %". */
export function formatPercent(fraction: number | null | undefined): string {
  if (!finite(fraction)) return MISSING;
  return `${sig3(fraction * 100)} %`;
}

/** Seconds of uptime or age: "45 s", "12 min", "3 h 5 min", "2 d 4 h". */
export function formatDurationS(seconds: number | null | undefined): string {
  if (!finite(seconds) || seconds < 0) return MISSING;
  const s = Math.floor(seconds);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 24) return m % 60 ? `${h} h ${m % 60} min` : `${h} h`;
  const d = Math.floor(h / 24);
  return h % 24 ? `${d} d ${h % 24} h` : `${d} d`;
}

/**
 * An alert value or rule threshold in the unit of its metric (`MetricName` in live.ts): "136 ms", "95 %",
 * "8 Gbit/s", "3.5/s", "45 s". Unknown metrics print the number with three significant digits.
 */
export function formatMetric(metric: string, v: number | null | undefined): string {
  if (!finite(v)) return MISSING;
  if (metric.startsWith('latency_')) return formatNs(v);
  if (metric === 'occupancy_ratio') return formatPercent(v);
  if (metric === 'bytes_rate') return formatBitRate(v);
  if (metric.endsWith('_rate')) return formatRate(v);
  if (metric === 'agent_offline' || metric === 'ring_stuck') return formatDurationS(v);
  if (metric === 'link_down') return v >= 1 ? 'down' : 'up';
  if (metric === 'link_stalled') return v >= 1 ? 'stalled' : 'moving';
  return sig3(v);
}

/** What each metric measures, in words (alert descriptions, rule tables). */
export const METRIC_TITLE: Record<string, string> = {
  latency_p50: 'queue latency p50',
  latency_p99: 'queue latency p99',
  latency_p999: 'queue latency p99.9',
  records_rate: 'records',
  bytes_rate: 'throughput',
  completions_rate: 'completions',
  backpressure_rate: 'back-pressure events',
  errors_rate: 'errors',
  occupancy_ratio: 'ring occupancy',
  link_down: 'link state',
  link_stalled: 'link progress',
  ring_stuck: 'time the ring has been full with nothing delivered',
  agent_offline: 'time since the agent was last heard',
};

// ───────────────────────────── alert texts and links ─────────────────────────────

/** The parts of an alert rule its texts need. */
export interface AlertTextRule {
  name: string;
  metric: string;
  comparison: '>' | '>=' | '<' | '<=';
  threshold: number;
  clear: number;
  windowS?: number;
}

/** Where an alert is, in words: "link l0 a1 → b1 (tx end on a1, tcp;ofi_rxm, class tcp)" or "node a1". */
export function alertSubject(labels: Record<string, string>): string {
  if (!labels.link) return `node ${labels.node ?? '?'}`;
  const node = labels.node ?? '?';
  const peer = labels.peer ?? '?';
  const flow = labels.direction === 'rx' ? `${peer} → ${node}` : `${node} → ${peer}`;
  const dir = labels.direction ? `${labels.direction} end on ${node}` : `on ${node}`;
  const prov = labels.provider ? `, ${labels.provider}` : '';
  const cls = labels.provider_class ? `, class ${labels.provider_class}` : '';
  return `link ${labels.link} ${flow} (${dir}${prov}${cls})`;
}

const above = (c: AlertTextRule['comparison']) => c === '>' || c === '>=';

/**
 * One line, the alert's summary everywhere (UI, webhook `annotations.summary`, Alertmanager):
 * "LinkLatencyP99High: latency_p99 over 30 s > 20 ms (clears below 10 ms) on link l0 a1 → b1 (…): value 61.2 ms".
 */
export function alertSummary(
  rule: AlertTextRule,
  labels: Record<string, string>,
  value: number | null | undefined,
): string {
  const metric =
    rule.metric.startsWith('latency_') && (rule.windowS ?? 0) > 0
      ? `${rule.metric} over ${rule.windowS} s`
      : rule.metric;
  const f = (v: number | null | undefined) => formatMetric(rule.metric, v);
  const subject = alertSubject(labels);
  if (rule.metric === 'link_down' || rule.metric === 'link_stalled')
    return `${rule.name}: ${subject} is ${finite(value) ? f(value) : 'of unknown state'}`;
  if (rule.metric === 'ring_stuck')
    return `${rule.name}: ring ≥ 95 % full with nothing delivered for ${f(value)} (alert at ${f(rule.threshold)}) on ${subject}`;
  return `${rule.name}: ${metric} ${rule.comparison} ${f(rule.threshold)} (clears ${above(rule.comparison) ? 'below' : 'above'} ${f(rule.clear)}) on ${subject}: value ${finite(value) ? f(value) : 'no data'}`;
}

/** Pages of the dashboard an alert concerns (absolute when `base` is the dashboard's external URL). */
export interface AlertLinks {
  /** The link end's page, `/links/<node>~<link>`, for link alerts. */
  link?: string;
  /** The page of the node the alert is on, `/nodes/<id>`. */
  node?: string;
  /** The page of the link's other host, for link alerts. */
  peer?: string;
}

export function alertLinks(labels: Record<string, string>, base = ''): AlertLinks {
  const b = base.replace(/\/+$/, '');
  const out: AlertLinks = {};
  if (labels.node && labels.link) {
    out.link = `${b}/links/${encodeURIComponent(labels.link_key ?? `${labels.node}~${labels.link}`)}`;
  }
  if (labels.node) out.node = `${b}/nodes/${encodeURIComponent(labels.node)}`;
  if (labels.link && labels.peer) out.peer = `${b}/nodes/${encodeURIComponent(labels.peer)}`;
  return out;
}

/** The fields of an alert its description reads. */
export interface AlertLike {
  ruleName: string;
  state: string;
  severity: string;
  labels: Record<string, string>;
  summary: string;
  value: number | null;
  threshold: number;
  metric?: string | undefined;
}

/**
 * A few sentences for a human (webhook and Alertmanager `annotations.description`): what is wrong in the
 * metric's unit, where, and the pages to open.
 */
export function alertDescription(a: AlertLike, base = ''): string {
  const metric = a.metric ?? a.labels.metric ?? '';
  const title = METRIC_TITLE[metric] ?? metric ?? 'value';
  const f = (v: number | null) => (metric ? formatMetric(metric, v) : v === null ? MISSING : sig3(v));
  const where = alertSubject(a.labels);
  const links = alertLinks(a.labels, base);
  const lead =
    metric === 'ring_stuck'
      ? `The ring of ${where} has been full (≥ 95 %) with no record delivered for ${f(a.value)} (alert at ${f(a.threshold)}): the receiver is not consuming or the path delivers nothing. Both ends alert.`
      : metric === 'agent_offline'
        ? `The agent of node ${a.labels.node ?? '?'} has not been heard for ${f(a.value)} (alert at ${f(a.threshold)}); its figures are stale.`
        : metric === 'link_down' || metric === 'link_stalled'
          ? `${where} is ${f(a.value)}.`
          : `${title[0]?.toUpperCase() ?? ''}${title.slice(1)} is ${f(a.value)} on ${where} (threshold ${f(a.threshold)}).`;
  const pages = [
    links.link && `link page: ${links.link}`,
    links.node && `node page: ${links.node}`,
    links.peer && `peer page: ${links.peer}`,
  ].filter(Boolean);
  return `${a.severity.toUpperCase()} ${a.ruleName} (${a.state}). ${lead}${pages.length ? ` Open the ${pages.join('; ')}.` : ''}`;
}

// ───────────────────────────── grouping ─────────────────────────────

export interface AlertGroup<A> {
  /** The host the alerts have in common (null: alerts that share no host with another alert). */
  host: string | null;
  alerts: A[];
}

/**
 * Groups alerts by the host that causes them: each alert names one or two hosts (its node, and the peer of a
 * link); it joins the group of whichever of them the most alerts name (ties: its own node), so six link alerts
 * whose node or peer is node-2 land in one group "node-2" even though three of them sit on other nodes.
 * Hosts with fewer than `min` alerts are not grouped: their alerts come back in one `host: null` group,
 * listed last. Groups keep the alerts' order; the busiest group comes first.
 */
export function groupAlertsByHost<A extends { labels: Record<string, string> }>(
  alerts: readonly A[],
  min = 2,
): AlertGroup<A>[] {
  const hostsOf = (a: A) => {
    const h: string[] = [];
    if (a.labels.node) h.push(a.labels.node);
    if (a.labels.link && a.labels.peer && a.labels.peer !== a.labels.node) h.push(a.labels.peer);
    return h;
  };
  const count = new Map<string, number>();
  for (const a of alerts) for (const h of hostsOf(a)) count.set(h, (count.get(h) ?? 0) + 1);
  const byHost = new Map<string, A[]>();
  const order: string[] = [];
  for (const a of alerts) {
    let best: string | undefined;
    for (const h of hostsOf(a)) if (best === undefined || count.get(h)! > count.get(best)!) best = h;
    const key = best ?? '';
    let g = byHost.get(key);
    if (!g) {
      g = [];
      byHost.set(key, g);
      order.push(key);
    }
    g.push(a);
  }
  const groups: AlertGroup<A>[] = [];
  const rest: A[] = [];
  for (const h of order) {
    const g = byHost.get(h)!;
    if (h && g.length >= min) groups.push({ host: h, alerts: g });
    else rest.push(...g);
  }
  groups.sort((a, b) => b.alerts.length - a.alerts.length);
  if (rest.length) {
    // Keep the caller's order among the ungrouped ones.
    const idx = new Map(alerts.map((a, i) => [a, i]));
    rest.sort((a, b) => idx.get(a)! - idx.get(b)!);
    groups.push({ host: null, alerts: rest });
  }
  return groups;
}
