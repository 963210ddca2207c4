/**
 * History of one series — a link end or a host — at most `points` buckets over [from, to], from the source
 * that covers the range: the 1 s rings in memory, else 1-minute roll-ups within their retention, else
 * 1-hour roll-ups. One query for both kinds: a series spec says which ring fields and roll-up columns it
 * has and how a bucket of them becomes a point.
 */
import type { HistoryPoint, HostPoint } from '@rdmaq/shared';
import { decodeInto, type HistAcc, quantiles, toSorted } from '../hist.js';
import { HF, LF, type Ring } from './ring.js';
import type { Rollups, SeriesKind } from './rollups.js';

export type Resolution = 1 | 60 | 3600;

/** A bucket of 1 s ring points: per field the mean and max of its finite values (NaN when none). */
export interface RingBucket {
  /** Seconds in the bucket. */
  n: number;
  /** Seconds whose flag (link up) was set. */
  flagged: number;
  mean(field: number): number;
  max(field: number): number;
}

export interface SeriesSpec<P> {
  kind: SeriesKind;
  /** Roll-up columns read and summed per bucket; a column named `hist` is merged as a histogram. */
  columns: readonly string[];
  fromRing(ts: number, b: RingBucket): P;
  /** `sums` in the order of `columns` (the `hist` slot unused). */
  fromRows(ts: number, sums: Float64Array, hist: HistAcc | undefined): P;
}

export interface History<P> {
  resolutionS: Resolution;
  stepMs: number;
  points: P[];
}

/** Which source covers a range starting at `from`. */
export function pickResolution(
  from: number,
  now: number,
  memoryS: number,
  minuteRetentionDays: number,
): Resolution {
  if (from >= now - memoryS * 1000) return 1;
  if (from >= now - minuteRetentionDays * 86_400_000) return 60;
  return 3600;
}

export function history<P>(
  spec: SeriesSpec<P>,
  source: Resolution,
  ring: Ring | undefined,
  rollups: Rollups,
  key: string,
  from: number,
  to: number,
  points: number,
): History<P> {
  if (source === 1) {
    const stepS = Math.max(1, Math.ceil((to - from) / 1000 / points));
    return {
      resolutionS: 1,
      stepMs: stepS * 1000,
      points: ring ? fromRing(spec, ring, from, to, stepS) : [],
    };
  }
  const res = source * 1000;
  const stepMs = Math.max(1, Math.ceil((to - from) / res / points)) * res;
  const base = Math.floor(from / res) * res;
  const rows = rollups.rows(spec.kind, source, key, spec.columns, base, to);
  const histAt = spec.columns.indexOf('hist');
  const out: P[] = [];
  const sums = new Float64Array(spec.columns.length);
  let i = 0;
  while (i < rows.length) {
    const b = base + Math.floor(((rows[i]!.ts as number) - base) / stepMs) * stepMs;
    sums.fill(0);
    const h: HistAcc | undefined = histAt >= 0 ? new Map() : undefined;
    while (i < rows.length && (rows[i]!.ts as number) < b + stepMs) {
      const r = rows[i]!;
      for (let c = 0; c < spec.columns.length; c++) {
        if (c === histAt) decodeInto(h!, r.hist as Buffer | null);
        else sums[c]! += r[spec.columns[c]!] as number;
      }
      i++;
    }
    out.push(spec.fromRows(b, sums, h));
  }
  return { resolutionS: source, stepMs, points: out };
}

function fromRing<P>(spec: SeriesSpec<P>, ring: Ring, from: number, to: number, stepS: number): P[] {
  const out: P[] = [];
  const fields = ring.fields;
  // Per field: sum, count and max of the finite values of the current bucket.
  const sum = new Float64Array(fields);
  const cnt = new Float64Array(fields);
  const mx = new Float64Array(fields);
  const b: RingBucket = {
    n: 0,
    flagged: 0,
    mean: (f) => sum[f]! / cnt[f]!,
    max: (f) => (cnt[f]! > 0 ? mx[f]! : Number.NaN),
  };
  let bucket = -1;
  const emit = () => {
    if (b.n > 0) out.push(spec.fromRing(bucket * 1000, b));
  };
  const fromSec = Math.floor(from / 1000);
  ring.each(fromSec, Math.floor(to / 1000), (sec, slot, flag) => {
    const start = fromSec + Math.floor((sec - fromSec) / stepS) * stepS;
    if (start !== bucket) {
      emit();
      bucket = start;
      sum.fill(0);
      cnt.fill(0);
      mx.fill(Number.NEGATIVE_INFINITY);
      b.n = 0;
      b.flagged = 0;
    }
    b.n++;
    if (flag) b.flagged++;
    for (let f = 0; f < fields; f++) {
      const x = ring.get(slot, f);
      if (Number.isFinite(x)) {
        sum[f]! += x;
        cnt[f]! += 1;
        if (x > mx[f]!) mx[f] = x;
      }
    }
  });
  emit();
  return out;
}

/** A figure, or null (a gap in a chart) when there is none. */
export const nullable = (v: number): number | null => (Number.isFinite(v) ? v : null);
/** Rates to 0.01/s: enough for any chart. */
export const n2 = (v: number): number | null => (Number.isFinite(v) ? Math.round(v * 100) / 100 : null);

const LINK_COLUMNS = [
  'seconds',
  'up_s',
  'records',
  'bytes',
  'completions',
  'backpressure',
  'errors',
  'occ_sum',
  'samples',
  'hist',
] as const;
const LC = Object.fromEntries(LINK_COLUMNS.map((c, i) => [c, i])) as Record<
  (typeof LINK_COLUMNS)[number],
  number
>;

/** A link end: rates, occupancy and queue-latency quantiles, and the share of the bucket it was up. */
export const LINK_SERIES: SeriesSpec<HistoryPoint> = {
  kind: 'link',
  columns: LINK_COLUMNS,
  fromRing: (ts, b) => ({
    ts,
    recordsPerS: n2(b.mean(LF.records)),
    bytesPerS: n2(b.mean(LF.bytes)),
    completionsPerS: n2(b.mean(LF.completions)),
    backpressurePerS: n2(b.mean(LF.backpressure)),
    errorsPerS: n2(b.mean(LF.errors)),
    occupancyBytes: n2(b.mean(LF.occ)),
    p50Ns: n2(b.mean(LF.p50)),
    // No per-second histograms are kept in memory: tail quantiles take the bucket's worst second.
    p99Ns: nullable(b.max(LF.p99)),
    p999Ns: nullable(b.max(LF.p999)),
    upRatio: b.flagged / b.n,
  }),
  fromRows: (ts, s, h) => {
    const seconds = s[LC.seconds]!;
    const rate = (x: number) => (seconds > 0 ? n2(x / seconds) : null);
    const q = quantiles(toSorted(h!));
    const samples = s[LC.samples]!;
    return {
      ts,
      recordsPerS: rate(s[LC.records]!),
      bytesPerS: rate(s[LC.bytes]!),
      completionsPerS: rate(s[LC.completions]!),
      backpressurePerS: rate(s[LC.backpressure]!),
      errorsPerS: rate(s[LC.errors]!),
      occupancyBytes: samples ? s[LC.occ_sum]! / samples : null,
      p50Ns: nullable(q.p50),
      p99Ns: nullable(q.p99),
      p999Ns: nullable(q.p999),
      upRatio: rate(s[LC.up_s]!),
    };
  },
};
/** A host: the agent's CPU, RSS and event-loop lag, averaged over the bucket. */
export const HOST_SERIES: SeriesSpec<HostPoint> = {
  kind: 'host',
  columns: ['samples', 'cpu_sum', 'rss_sum', 'lag_sum'],
  fromRing: (ts, b) => ({
    ts,
    cpuPercent: b.mean(HF.cpu),
    rssBytes: b.mean(HF.rss),
    eventLoopLagMs: b.mean(HF.lag),
  }),
  fromRows: (ts, s) => ({
    ts,
    cpuPercent: s[1]! / s[0]!,
    rssBytes: s[2]! / s[0]!,
    eventLoopLagMs: s[3]! / s[0]!,
  }),
};
