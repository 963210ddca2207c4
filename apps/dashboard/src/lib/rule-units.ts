/**
 * Units in which the rules page shows and takes thresholds. The hub stores raw values (ns, ratio, bytes/s,
 * seconds); the form converts so nobody types 1000000 for 1 ms or 0.9 for 90 %.
 */
export interface RuleUnit {
  /** Shown next to the number. */
  label: string;
  /** Raw value of one unit (µs → 1000 ns). */
  scale: number;
  /** Step of the number input, in the unit. */
  step: number;
}

/** Metrics a rule may watch (the hub's MetricNameSchema; rules already using others are listed too). */
export const KNOWN_METRICS = [
  'latency_p50',
  'latency_p99',
  'latency_p999',
  'records_rate',
  'bytes_rate',
  'completions_rate',
  'backpressure_rate',
  'errors_rate',
  'occupancy_ratio',
  'link_down',
  'link_stalled',
  'agent_offline',
] as const;

export function unitOf(metric: string): RuleUnit {
  if (metric.startsWith('latency_')) return { label: 'µs', scale: 1000, step: 1 };
  if (metric === 'occupancy_ratio') return { label: '%', scale: 0.01, step: 1 };
  if (metric === 'bytes_rate') return { label: 'Gbit/s', scale: 1e9 / 8, step: 0.1 };
  if (metric.endsWith('_rate')) return { label: 'per s', scale: 1, step: 0.1 };
  if (metric === 'link_down' || metric === 'link_stalled') return { label: '(1 = yes)', scale: 1, step: 1 };
  // agent_offline, ring_stuck and anything counted in seconds
  return { label: 's', scale: 1, step: 1 };
}

/** Raw → the unit, without float noise (0.8 / 0.01 → 80, not 80.00000000000001). */
export function toUnit(metric: string, raw: number): number {
  return Number((raw / unitOf(metric).scale).toPrecision(12));
}

export function fromUnit(metric: string, v: number): number {
  return Number((v * unitOf(metric).scale).toPrecision(12));
}

/** "node=a1, direction=rx" ⇄ {node: "a1", direction: "rx"}; throws naming a malformed pair. */
export function parsePairs(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of text.split(/[,\n]+/)) {
    const p = part.trim();
    if (!p) continue;
    const i = p.indexOf('=');
    if (i <= 0) throw new Error(`“${p}” is not label=value`);
    out[p.slice(0, i).trim()] = p.slice(i + 1).trim();
  }
  return out;
}

export function formatPairs(m: Record<string, string>): string {
  return Object.entries(m)
    .map(([k, v]) => `${k}=${v}`)
    .join(', ');
}
