/** Sparse histogram helpers for the hub: Map accumulators and a compact BLOB encoding for SQLite. */
import { type SparseBuckets, sparseQuantile } from '@rdmaq/shared';

export type HistAcc = Map<number, number>;

export function addSparse(acc: HistAcc, buckets: SparseBuckets): void {
  for (const [i, n] of buckets) if (n > 0) acc.set(i, (acc.get(i) ?? 0) + n);
}

export function toSorted(acc: HistAcc): SparseBuckets {
  return [...acc.entries()].sort((a, b) => a[0] - b[0]);
}

/** Float64 pairs [index, count, …], little endian: 16 bytes per non-empty bucket. */
export function encodeHist(acc: HistAcc): Buffer | null {
  if (acc.size === 0) return null;
  const buf = Buffer.allocUnsafe(acc.size * 16);
  let o = 0;
  for (const [i, n] of toSorted(acc)) {
    buf.writeDoubleLE(i, o);
    buf.writeDoubleLE(n, o + 8);
    o += 16;
  }
  return buf;
}

export function decodeInto(acc: HistAcc, blob: Buffer | null | undefined): void {
  if (!blob) return;
  for (let o = 0; o + 16 <= blob.length; o += 16) {
    const i = blob.readDoubleLE(o);
    acc.set(i, (acc.get(i) ?? 0) + blob.readDoubleLE(o + 8));
  }
}

/** Bucket-wise sum of two encoded histograms (registered as the SQLite function merge_hist). */
export function mergeBlobs(a: Buffer | null, b: Buffer | null): Buffer | null {
  if (!a) return b;
  if (!b) return a;
  const acc: HistAcc = new Map();
  decodeInto(acc, a);
  decodeInto(acc, b);
  return encodeHist(acc);
}

export function quantiles(sorted: SparseBuckets): { p50: number; p99: number; p999: number } {
  return {
    p50: sparseQuantile(sorted, 0.5),
    p99: sparseQuantile(sorted, 0.99),
    p999: sparseQuantile(sorted, 0.999),
  };
}

/** Sorts wire buckets by index when an agent sent them out of order (cheap check first). */
export function ensureSorted(b: SparseBuckets): SparseBuckets {
  for (let i = 1; i < b.length; i++) {
    if (b[i]![0] < b[i - 1]![0]) return [...b].sort((x, y) => x[0] - y[0]);
  }
  return b;
}

/** Index of the bucket holding quantile q (nearest rank, as sparseQuantile), -1 when empty. */
export function quantileIndex(sorted: SparseBuckets, q: number): number {
  let total = 0;
  for (const [, n] of sorted) total += n;
  if (total === 0) return -1;
  const rank = Math.max(1, Math.ceil(q * total));
  let seen = 0;
  for (const [i, n] of sorted) {
    seen += n;
    if (seen >= rank) return i;
  }
  return sorted[sorted.length - 1]![0];
}
