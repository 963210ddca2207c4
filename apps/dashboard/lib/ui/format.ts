/**
 * Pure number formatting for the dashboard. Every figure on screen goes through one of these so units are
 * consistent (ns → µs/ms, bytes → KiB/MiB, throughput in bit/s as NICs are rated) and missing data reads
 * as "—" instead of NaN or 0 (an absent figure must never look like a measured zero).
 */

export const MISSING = '—';

function finite(v: number | null | undefined): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

/** Three significant digits without trailing noise: 3.14, 31.4, 314, 3140. */
function sig3(v: number): string {
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

/** Events per second: "0", "12.3/s", "4.5 k/s", "1.2 M/s". */
export function formatRate(perSecond: number | null | undefined): string {
  if (!finite(perSecond) || perSecond < 0) return MISSING;
  if (perSecond < 1000) return `${sig3(perSecond)}/s`;
  if (perSecond < 1e6) return `${sig3(perSecond / 1e3)} k/s`;
  if (perSecond < 1e9) return `${sig3(perSecond / 1e6)} M/s`;
  return `${sig3(perSecond / 1e9)} G/s`;
}

/** Plain count with thin grouping: 1234567 → "1,234,567". */
export function formatCount(n: number | null | undefined): string {
  if (!finite(n)) return MISSING;
  return Math.round(n).toLocaleString('en-US');
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

/** Age of a timestamp relative to `now` (both ms since epoch): "5 s ago". */
export function formatAgo(tsMs: number | null | undefined, nowMs: number): string {
  if (!finite(tsMs)) return MISSING;
  const d = Math.max(0, (nowMs - tsMs) / 1000);
  return `${formatDurationS(d)} ago`;
}

/** Wall clock in UTC with seconds, as operators compare logs across hosts: "2026-11-25 16:47:11Z". */
export function formatTimestamp(tsMs: number | null | undefined): string {
  if (!finite(tsMs)) return MISSING;
  return `${new Date(tsMs).toISOString().slice(0, 19).replace('T', ' ')}Z`;
}

/** Chart axis tick: HH:MM:SS in UTC. */
export function formatClock(tsMs: number): string {
  if (!finite(tsMs)) return '';
  return new Date(tsMs).toISOString().slice(11, 19);
}

/** A rule threshold or alert value in the unit of its metric (`MetricName` in @rdmaq/shared live.ts). */
export function formatMetric(metric: string, v: number | null | undefined): string {
  if (!finite(v)) return MISSING;
  if (metric.startsWith('latency_')) return formatNs(v);
  if (metric === 'occupancy_ratio') return formatPercent(v);
  if (metric === 'bytes_rate') return formatBitRate(v);
  if (metric.endsWith('_rate')) return formatRate(v);
  if (metric === 'agent_offline') return `${formatDurationS(v)} offline`;
  if (metric === 'link_down') return v >= 1 ? 'down' : 'up';
  if (metric === 'link_stalled') return v >= 1 ? 'stalled' : 'moving';
  return String(v);
}
