/**
 * Pure number formatting for the dashboard. Every figure on screen goes through one of these so units are
 * consistent (ns → µs/ms, bytes → KiB/MiB, throughput in bit/s as NICs are rated) and missing data reads
 * as "—" instead of NaN or 0 (an absent figure must never look like a measured zero).
 */

import { formatDurationS, MISSING } from '@rdmaq/shared/format';

// The units themselves live in @rdmaq/shared (format.ts), shared with the hub's alert texts and webhook.
export {
  formatBitRate,
  formatBytes,
  formatDurationS,
  formatMetric,
  formatNs,
  formatPercent,
  formatRate,
  MISSING,
} from '@rdmaq/shared/format';

function finite(v: number | null | undefined): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

/** Plain count with thin grouping: 1234567 → "1,234,567". */
export function formatCount(n: number | null | undefined): string {
  if (!finite(n)) return MISSING;
  return Math.round(n).toLocaleString('en-US');
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
