/**
 * Log-linear latency histogram, the one layout shared by the native core (packages/rdma-core/native),
 * the agent and the hub, so bucket counts can be shipped sparsely and merged bucket-wise anywhere.
 *
 * Values are integer nanoseconds. Below 2^SUB_BITS every value has its own bucket (exact). Above, each
 * power of two [2^e, 2^(e+1)) is cut into 2^SUB_BITS equal buckets, so a bucket is at most 1/128 of its
 * lower bound wide: reporting its midpoint is within 0.4 % of any value in it (the design asks ≤ 1 %).
 * Values above MAX_TRACKABLE_NS (~34 s) land in the last bucket; the exact maximum is kept on the side.
 *
 *   index(v) = v                                    for v < 128
 *   index(v) = 128 + (e - 7) * 128 + (v >> (e - 7)) - 128   with e = floor(log2 v), for v ≥ 128
 *
 * The C++ twin is `rdmaq::Histogram::bucketOf` — change both together (a test pins them to each other).
 */

export const SUB_BITS = 7;
export const SUB_COUNT = 1 << SUB_BITS; // 128
/** Highest power of two tracked: 2^35 ns ≈ 34.4 s. */
export const MAX_EXPONENT = 34;
export const MAX_TRACKABLE_NS = 2 ** (MAX_EXPONENT + 1) - 1;
export const BUCKET_COUNT = SUB_COUNT + (MAX_EXPONENT - SUB_BITS + 1) * SUB_COUNT; // 3712

/** Bucket index of a value in ns. Negative and non-finite values are a caller bug: they throw. */
export function bucketOf(valueNs: number): number {
  if (!Number.isFinite(valueNs) || valueNs < 0) {
    throw new RangeError(`histogram value must be a finite number ≥ 0 ns, got ${valueNs}`);
  }
  const v = Math.min(Math.floor(valueNs), MAX_TRACKABLE_NS);
  if (v < SUB_COUNT) return v;
  const e = Math.floor(Math.log2(v));
  // Math.log2 can round up just below a power of two; correct it with exact integer comparison.
  const exp = 2 ** e > v ? e - 1 : 2 ** (e + 1) <= v ? e + 1 : e;
  const shift = exp - SUB_BITS;
  const mantissa = Math.floor(v / 2 ** shift); // in [128, 255]
  return SUB_COUNT + shift * SUB_COUNT + (mantissa - SUB_COUNT);
}

/** Inclusive lower bound (ns) of a bucket. */
export function bucketLow(index: number): number {
  if (index < SUB_COUNT) return index;
  const shift = Math.floor((index - SUB_COUNT) / SUB_COUNT);
  const mantissa = SUB_COUNT + ((index - SUB_COUNT) % SUB_COUNT);
  return mantissa * 2 ** shift;
}

/** Width (ns) of a bucket. */
export function bucketWidth(index: number): number {
  if (index < SUB_COUNT) return 1;
  return 2 ** Math.floor((index - SUB_COUNT) / SUB_COUNT);
}

/** The value reported for a bucket: its midpoint (exact for the unit-width buckets). */
export function bucketValue(index: number): number {
  const w = bucketWidth(index);
  return w === 1 ? bucketLow(index) : bucketLow(index) + w / 2;
}

/** Sparse bucket counts as they travel on the wire: [bucket index, count] pairs, index ascending. */
export type SparseBuckets = Array<[number, number]>;

/** A histogram in memory: dense counts plus exact count / sum / min / max. */
export class Histogram {
  readonly counts = new Float64Array(BUCKET_COUNT);
  count = 0;
  sumNs = 0;
  minNs = Number.POSITIVE_INFINITY;
  maxNs = 0;

  record(valueNs: number, times = 1): void {
    this.counts[bucketOf(valueNs)]! += times;
    this.count += times;
    this.sumNs += valueNs * times;
    if (valueNs < this.minNs) this.minNs = valueNs;
    if (valueNs > this.maxNs) this.maxNs = valueNs;
  }

  /** Adds sparse bucket counts (e.g. one agent sample's delta). min/max become bucket bounds. */
  addSparse(buckets: SparseBuckets): void {
    for (const [index, n] of buckets) {
      if (!Number.isInteger(index) || index < 0 || index >= BUCKET_COUNT || !(n >= 0)) {
        throw new RangeError(`bad histogram bucket [${index}, ${n}]: index must be 0..${BUCKET_COUNT - 1}`);
      }
      if (n === 0) continue;
      this.counts[index]! += n;
      this.count += n;
      this.sumNs += bucketValue(index) * n;
      const low = bucketLow(index);
      const high = low + bucketWidth(index) - 1;
      if (low < this.minNs) this.minNs = low;
      if (high > this.maxNs) this.maxNs = high;
    }
  }

  merge(other: Histogram): void {
    for (let i = 0; i < BUCKET_COUNT; i++) this.counts[i]! += other.counts[i]!;
    this.count += other.count;
    this.sumNs += other.sumNs;
    this.minNs = Math.min(this.minNs, other.minNs);
    this.maxNs = Math.max(this.maxNs, other.maxNs);
  }

  /** Value at quantile q in [0, 1] (e.g. 0.99), NaN when empty. Clamped to the exact min and max. */
  quantile(q: number): number {
    if (!(q >= 0 && q <= 1)) throw new RangeError(`quantile must be within [0, 1], got ${q}`);
    if (this.count === 0) return Number.NaN;
    // Rank of the wanted sample (1-based), as the nearest-rank method defines it.
    const rank = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (let i = 0; i < BUCKET_COUNT; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) return Math.min(Math.max(bucketValue(i), this.minNs), this.maxNs);
    }
    return this.maxNs;
  }

  mean(): number {
    return this.count === 0 ? Number.NaN : this.sumNs / this.count;
  }

  toSparse(): SparseBuckets {
    const out: SparseBuckets = [];
    for (let i = 0; i < BUCKET_COUNT; i++) if (this.counts[i]! > 0) out.push([i, this.counts[i]!]);
    return out;
  }

  static fromSparse(buckets: SparseBuckets): Histogram {
    const h = new Histogram();
    h.addSparse(buckets);
    return h;
  }
}

/** Sparse quantile without building a dense histogram (hub hot path: a few dozen buckets per link). */
export function sparseQuantile(buckets: SparseBuckets, q: number): number {
  let total = 0;
  for (const [, n] of buckets) total += n;
  if (total === 0) return Number.NaN;
  const rank = Math.max(1, Math.ceil(q * total));
  let seen = 0;
  for (const [index, n] of buckets) {
    seen += n;
    if (seen >= rank) return bucketValue(index);
  }
  return bucketValue(buckets[buckets.length - 1]![0]);
}

/** Merges sparse bucket lists (sorted by index) into one sorted list. */
export function mergeSparse(...lists: SparseBuckets[]): SparseBuckets {
  const acc = new Map<number, number>();
  for (const list of lists) for (const [i, n] of list) acc.set(i, (acc.get(i) ?? 0) + n);
  return [...acc.entries()].sort((a, b) => a[0] - b[0]);
}
