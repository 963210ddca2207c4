/**
 * The hub's 1 s history in memory: one fixed-size ring of points per link end and per host. The rings are
 * most of the hub's memory (8,000 link ends × 900 s ≈ 240 MB), hence the packing: typed arrays, Float32
 * figures, latency quantiles as histogram bucket indices.
 */
import { bucketValue } from '@rdmaq/shared';

/** Field offsets of a link's 1 s point in its ring. */
export const LF = {
  records: 0,
  bytes: 1,
  completions: 2,
  backpressure: 3,
  errors: 4,
  occ: 5,
  p50: 6,
  p99: 7,
  p999: 8,
} as const;
export const LINK_FIELDS = 9;
/** Of the link fields, the first 6 are floats, p50/p99/p999 bucket indices. */
export const LINK_FLOATS = 6;
/** Field offsets of a host's 1 s point: CPU %, RSS bytes, event-loop lag ms. */
export const HF = { cpu: 0, rss: 1, lag: 2 } as const;
export const HOST_FIELDS = 3;
/** A quantile field with no bucket (no record in that second). */
export const NO_BUCKET = 0xffff;
const FLAG = 0x8000_0000;
const SEC_MASK = 0x7fff_ffff;

/**
 * Fixed-size ring of 1 s points: slot = second % size, `secs` tells which second a slot holds; its top bit
 * carries one flag (link up). Fields below `floatFields` are Float32; the rest are latency quantiles kept as
 * histogram bucket indices in a Uint16 (exact: a quantile IS a bucket's value), NO_BUCKET meaning none.
 */
export class Ring {
  readonly secs: Uint32Array;
  readonly vals: Float32Array;
  readonly quants: Uint16Array;
  constructor(
    readonly size: number,
    readonly floatFields: number,
    readonly quantFields = 0,
  ) {
    this.secs = new Uint32Array(size);
    this.vals = new Float32Array(size * floatFields);
    this.quants = new Uint16Array(size * quantFields);
  }
  /** Number of fields of a point (floats, then quantiles). */
  get fields(): number {
    return this.floatFields + this.quantFields;
  }
  put(sec: number, values: ArrayLike<number>, quants?: ArrayLike<number>, flag = false): void {
    const slot = sec % this.size;
    this.secs[slot] = flag ? (sec | FLAG) >>> 0 : sec;
    this.vals.set(values, slot * this.floatFields);
    if (quants) this.quants.set(quants, slot * this.quantFields);
  }
  /** Field `i` of a slot: a float, or (i ≥ floatFields) the value of the stored bucket, NaN when none. */
  get(slot: number, i: number): number {
    if (i < this.floatFields) return this.vals[slot * this.floatFields + i]!;
    const b = this.quants[slot * this.quantFields + i - this.floatFields]!;
    return b === NO_BUCKET ? Number.NaN : bucketValue(b);
  }
  /** Calls `fn(sec, slot, flag)` for each stored second in [fromSec, toSec], oldest first. */
  each(fromSec: number, toSec: number, fn: (sec: number, slot: number, flag: boolean) => void): void {
    const lo = Math.max(fromSec, toSec - this.size + 1);
    for (let s = lo; s <= toSec; s++) {
      const slot = s % this.size;
      const v = this.secs[slot]!;
      if ((v & SEC_MASK) === s) fn(s, slot, v >= FLAG);
    }
  }
}
