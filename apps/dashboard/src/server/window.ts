/**
 * The recent queue-latency histogram of one link end, in 5 s slots, so the hub can answer "p99 over the last
 * 30 s" (alert rules with `windowS`) and hand out the buckets themselves (`GET /api/latency`). Each sample's
 * histogram delta is added to the slot of its timestamp; the 1 s rings keep only per-second quantiles, and
 * a tail quantile over a window cannot be had from those.
 *
 * Memory: the slot being filled is a Map (like the minute accumulators); a finished slot is frozen into one
 * Float64Array with one element per non-empty bucket (index + count × 4096: exact, counts up to 2^41), about
 * 8 bytes per bucket plus ~100 bytes per slot. Link ends without records (the tx side) hold nothing.
 */
import { BUCKET_COUNT, bucketValue, type SparseBuckets } from '@rdmaq/shared';

export const SLOT_MS = 5000;
/** Packing base: > BUCKET_COUNT. */
const P = 4096;
if (BUCKET_COUNT > P) throw new Error('histogram layout outgrew the latency window packing');

interface Cached {
  lo: number;
  cur: number;
  version: number;
  /** Frozen slots [lo, cur) merged: packed, sorted by bucket index. */
  merged: Float64Array;
  total: number;
}

function pack(entries: Iterable<[number, number]>): Float64Array {
  const sorted = [...entries].filter(([, n]) => n > 0).sort((a, b) => a[0] - b[0]);
  const out = new Float64Array(sorted.length);
  for (let k = 0; k < sorted.length; k++) out[k] = sorted[k]![0] + sorted[k]![1] * P;
  return out;
}

/** Bucket-wise sum of two packed sorted histograms (two-pointer merge, no Map). */
function mergePacked(a: Float64Array, b: Float64Array): Float64Array {
  if (a.length === 0) return b;
  if (b.length === 0) return a;
  const out = new Float64Array(a.length + b.length);
  let i = 0;
  let j = 0;
  let k = 0;
  while (i < a.length && j < b.length) {
    const ai = a[i]! % P;
    const bj = b[j]! % P;
    if (ai < bj) out[k++] = a[i++]!;
    else if (bj < ai) out[k++] = b[j++]!;
    else out[k++] = a[i++]! + b[j++]! - bj; // counts add, the index once
  }
  while (i < a.length) out[k++] = a[i++]!;
  while (j < b.length) out[k++] = b[j++]!;
  return k === out.length ? out : out.slice(0, k);
}

export class LatencyWindow {
  private readonly size: number;
  /** Slot number held by each ring position (-1: none). */
  private readonly slotOf: Float64Array;
  private readonly data: Array<Float64Array | null>;
  /** Slot being filled, -1 before the first record. */
  private cur = -1;
  private readonly acc = new Map<number, number>();
  private accTotal = 0;
  /** Bumped when a frozen slot changes (a late sample): cached merges are stale. */
  private version = 0;
  private readonly cache = new Map<number, Cached>();

  constructor(readonly retentionS: number) {
    // The slot being filled is not in the ring: `size` frozen slots plus it cover ≥ retentionS.
    this.size = Math.max(1, Math.ceil((retentionS * 1000) / SLOT_MS));
    this.slotOf = new Float64Array(this.size).fill(-1);
    this.data = new Array<Float64Array | null>(this.size).fill(null);
  }

  /** Adds one sample's bucket deltas (sorted or not) at agent time `tsMs`. */
  add(tsMs: number, buckets: SparseBuckets): void {
    if (buckets.length === 0) return;
    const s = Math.floor(tsMs / SLOT_MS);
    if (s > this.cur) {
      this.freeze();
      this.cur = s;
    }
    if (s === this.cur) {
      for (const [i, n] of buckets) {
        if (n > 0) {
          this.acc.set(i, (this.acc.get(i) ?? 0) + n);
          this.accTotal += n;
        }
      }
      return;
    }
    // A late sample (a replay after a reconnect): merged into its frozen slot while that is still kept.
    if (s <= this.cur - 1 - this.size) return;
    const k = s % this.size;
    const m = new Map<number, number>();
    if (this.slotOf[k] === s) for (const v of this.data[k]!) m.set(v % P, Math.floor(v / P));
    for (const [i, n] of buckets) if (n > 0) m.set(i, (m.get(i) ?? 0) + n);
    this.slotOf[k] = s;
    this.data[k] = pack(m);
    this.version++;
  }

  private freeze(): void {
    if (this.cur < 0 || this.acc.size === 0) return;
    const k = this.cur % this.size;
    this.slotOf[k] = this.cur;
    this.data[k] = pack(this.acc);
    this.acc.clear();
    this.accTotal = 0;
  }

  /** First slot overlapping (nowMs − windowMs, nowMs]. */
  private static lo(nowMs: number, windowMs: number): number {
    return Math.floor((nowMs - windowMs) / SLOT_MS);
  }

  /** Frozen slots in [lo, hi), oldest first, as [slot, packed]. */
  private frozen(lo: number, hi: number): Array<[number, Float64Array]> {
    const out: Array<[number, Float64Array]> = [];
    for (let s = Math.max(lo, hi - this.size); s < hi; s++) {
      const k = s % this.size;
      if (this.slotOf[k] === s && this.data[k]!.length) out.push([s, this.data[k]!]);
    }
    return out;
  }

  private cached(lo: number, windowMs: number): Cached {
    let c = this.cache.get(windowMs);
    if (c && c.lo === lo && c.cur === this.cur && c.version === this.version) return c;
    let merged: Float64Array = new Float64Array(0);
    for (const [, d] of this.frozen(lo, this.cur)) merged = mergePacked(merged, d);
    let total = 0;
    for (const v of merged) total += Math.floor(v / P);
    c = { lo, cur: this.cur, version: this.version, merged, total };
    // A few window lengths at most (one per distinct rule window); never grows without bound.
    if (this.cache.size >= 4 && !this.cache.has(windowMs)) this.cache.clear();
    this.cache.set(windowMs, c);
    return c;
  }

  /**
   * Quantile q (nearest rank, as `sparseQuantile`) of the records of the last `windowMs` (every slot that
   * overlaps it), in ns; NaN when no record. Cheap when called every second: the frozen part is merged once
   * per slot and cached, only the slot being filled is added each time.
   */
  quantile(nowMs: number, windowMs: number, q: number): number {
    const lo = LatencyWindow.lo(nowMs, windowMs);
    if (this.cur < lo) return Number.NaN;
    const c = this.cached(lo, windowMs);
    const total = c.total + this.accTotal;
    if (total === 0) return Number.NaN;
    const rank = Math.max(1, Math.ceil(q * total));
    const cur = this.accTotal ? [...this.acc.entries()].sort((a, b) => a[0] - b[0]) : [];
    const a = c.merged;
    let i = 0;
    let j = 0;
    let seen = 0;
    let last = 0;
    while (i < a.length || j < cur.length) {
      const ai = i < a.length ? a[i]! % P : Number.POSITIVE_INFINITY;
      const bj = j < cur.length ? cur[j]![0] : Number.POSITIVE_INFINITY;
      if (ai <= bj) {
        seen += Math.floor(a[i]! / P);
        i++;
        last = ai;
        if (ai === bj) {
          seen += cur[j]![1];
          j++;
        }
      } else {
        seen += cur[j]![1];
        j++;
        last = bj;
      }
      if (seen >= rank) return bucketValue(last);
    }
    return bucketValue(last);
  }

  /** The slots overlapping the last `windowMs`, oldest first: slot start (ms) and its buckets (sorted). */
  slots(nowMs: number, windowMs: number): Array<{ ts: number; buckets: SparseBuckets }> {
    const lo = LatencyWindow.lo(nowMs, windowMs);
    const out: Array<{ ts: number; buckets: SparseBuckets }> = [];
    if (this.cur < lo) return out;
    for (const [s, d] of this.frozen(lo, this.cur)) {
      out.push({
        ts: s * SLOT_MS,
        buckets: Array.from(d, (v): [number, number] => [v % P, Math.floor(v / P)]),
      });
    }
    if (this.accTotal) {
      out.push({ ts: this.cur * SLOT_MS, buckets: [...this.acc.entries()].sort((a, b) => a[0] - b[0]) });
    }
    return out;
  }
}
