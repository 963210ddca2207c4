/**
 * Small helpers shared by the fabric link ends: a sparse log-linear histogram with the bucket layout of
 * @rdmaq/shared (src/histogram.ts: 128 exact buckets, then 128 per power of two up to 2^35 ns).
 */
import type { SparseBuckets } from '../types.js';

const SUB_BITS = 7;
const SUB_COUNT = 128;
const MAX_TRACKABLE_NS = 2 ** 35 - 1;

export function bucketOf(valueNs: number): number {
  const v = Math.min(Math.max(0, Math.floor(valueNs)), MAX_TRACKABLE_NS);
  if (v < SUB_COUNT) return v;
  const e = Math.floor(Math.log2(v));
  const exp = 2 ** e > v ? e - 1 : 2 ** (e + 1) <= v ? e + 1 : e;
  const shift = exp - SUB_BITS;
  const mantissa = Math.floor(v / 2 ** shift);
  return SUB_COUNT + shift * SUB_COUNT + (mantissa - SUB_COUNT);
}

export class SparseHistogram {
  private readonly counts = new Map<number, number>();
  record(ns: number): void {
    const b = bucketOf(ns);
    this.counts.set(b, (this.counts.get(b) ?? 0) + 1);
  }
  toSparse(): SparseBuckets {
    return [...this.counts.entries()].sort((a, b) => a[0] - b[0]);
  }
}

/** Counts errors by kind for LinkStats. */
export class ErrorCounts {
  private readonly m: Record<string, number> = {};
  add(kind: string): void {
    this.m[kind] = (this.m[kind] ?? 0) + 1;
  }
  snapshot(): Record<string, number> {
    return { ...this.m };
  }
}

/** Maps an ERR_RDMAQ_* code to the error kind LinkStats counts. */
export function errorKind(code: string | undefined): string {
  switch (code) {
    case 'ERR_RDMAQ_AUTH':
    case 'ERR_RDMAQ_HANDSHAKE':
      return 'handshake';
    case 'ERR_RDMAQ_BAD_HEADER':
      return 'bad_header';
    case 'ERR_RDMAQ_PROTOCOL':
      return 'protocol';
    case 'ERR_RDMAQ_RESEND_GAP':
      return 'resume_gap';
    case 'ERR_RDMAQ_PEER_GONE':
      return 'peer_gone';
    default:
      return 'fabric';
  }
}
