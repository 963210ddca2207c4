/**
 * Small helpers shared by the fabric link ends: a sparse log-linear histogram with the bucket layout of
 * @rdmaq/shared (src/histogram.ts: 128 exact buckets, then 128 per power of two up to 2^35 ns).
 */
import type { LinkStats, SparseBuckets } from '../types.js';

const SUB_BITS = 7;
const SUB_COUNT = 128;
const MAX_TRACKABLE_NS = 2 ** 35 - 1;

const BUCKETS = SUB_COUNT + (35 - SUB_BITS) * SUB_COUNT; // 3712, as in @rdmaq/shared

export function bucketOf(valueNs: number): number {
  const v = Math.min(Math.max(0, Math.floor(valueNs)), MAX_TRACKABLE_NS);
  if (v < SUB_COUNT) return v;
  // clz32 is exact below 2^32 (4.3 s); above, log2 with the same integer correction as @rdmaq/shared.
  let exp: number;
  if (v < 2 ** 32) exp = 31 - Math.clz32(v);
  else {
    const e = Math.floor(Math.log2(v));
    exp = 2 ** e > v ? e - 1 : 2 ** (e + 1) <= v ? e + 1 : e;
  }
  const shift = exp - SUB_BITS;
  const mantissa = Math.floor(v / 2 ** shift);
  return SUB_COUNT + shift * SUB_COUNT + (mantissa - SUB_COUNT);
}

/** Dense counts (one typed array, no allocation per record: this runs once per delivered record). */
export class SparseHistogram {
  private readonly counts = new Float64Array(BUCKETS);
  record(ns: number): void {
    this.counts[bucketOf(ns)]! += 1;
  }
  toSparse(): SparseBuckets {
    const out: SparseBuckets = [];
    for (let i = 0; i < BUCKETS; i++) if (this.counts[i]) out.push([i, this.counts[i]!]);
    return out;
  }
}

/** Counts errors by kind for LinkStats. */
export class ErrorCounts {
  private readonly m: Record<string, number> = {};
  /** onAdd: called after every count (the statistics file takes the new totals). */
  constructor(private readonly onAdd?: () => void) {}
  add(kind: string): void {
    this.m[kind] = (this.m[kind] ?? 0) + 1;
    this.onAdd?.();
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
    case 'ERR_RDMAQ_CHECKSUM':
      return 'checksum';
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

/** What both fabric ends' native state says about their ring (FabricSenderNative / FabricReceiverNative). */
export interface RingFigures {
  records: number;
  bytes: number;
  completions: number;
  credits: number;
  wraps: number;
  capacity: number;
}

/**
 * LinkStats of a fabric link end from its native figures and what only its JS object knows. `peak` keeps the
 * occupancy of the previous read: peakOccupancyBytes is the larger of that and now (reset by reading).
 */
export function fabricLinkStats(
  end: Pick<LinkStats, 'linkId' | 'role' | 'provider' | 'state' | 'epoch'>,
  ring: RingFigures,
  more: {
    occupancy: number;
    peak: { last: number };
    backpressure: number;
    resends: number;
    reconnects: number;
    errors: ErrorCounts;
    latency: LinkStats['latency'];
  },
): LinkStats {
  const occ = more.occupancy;
  const peakOccupancyBytes = Math.max(more.peak.last, occ);
  more.peak.last = occ;
  return {
    ...end,
    transport: 'fabric',
    counters: {
      records: ring.records,
      bytes: ring.bytes,
      completions: ring.completions,
      creditUpdates: ring.credits,
      backpressure: more.backpressure,
      wraps: ring.wraps,
      resends: more.resends,
      reconnects: more.reconnects,
      errors: more.errors.snapshot(),
    },
    gauges: { occupancyBytes: occ, peakOccupancyBytes, capacityBytes: ring.capacity },
    latency: more.latency,
  };
}
