/**
 * Agent frame decoding for the ingest hot path. The shared zod schemas stay the authority; this only
 * avoids running zod over every histogram bucket tuple (≈ 400 tuples in an 8-link sample, most of the
 * validation cost): buckets are checked by a loop with exactly SparseBucketsSchema's rules and the rest of
 * the frame by the shared schemas. Any failure re-runs the canonical `decodeFrame(AgentFrameSchema)` so
 * the refusal reason is the shared one. `test/decode.test.ts` pins both paths to the same verdicts.
 */
import {
  type AgentFrame,
  AgentFrameSchema,
  BUCKET_COUNT,
  CloseCode,
  type Decoded,
  decodeFrame,
  EventSchema,
  HelloSchema,
  LinkSampleSchema,
  MAX_FRAME_BYTES,
  MAX_LINKS_PER_SAMPLE,
  PROTOCOL_VERSION,
  SampleSchema,
} from '@rdmaq/shared';
import { z } from 'zod';

const rawBuckets = z.array(z.unknown()).max(BUCKET_COUNT);
const FastFrameSchema = z.discriminatedUnion('type', [
  HelloSchema,
  SampleSchema.extend({
    links: z
      .array(LinkSampleSchema.extend({ latency: z.object({ queue: rawBuckets, rtt: rawBuckets }) }))
      .max(MAX_LINKS_PER_SAMPLE),
  }),
  EventSchema,
]);

/** SparseBucketsSchema's rules: [int index 0..BUCKET_COUNT-1, int count ≥ 0] pairs. */
export function bucketsValid(list: unknown[]): boolean {
  for (const e of list) {
    if (!Array.isArray(e) || e.length !== 2) return false;
    const i = e[0];
    const n = e[1];
    if (typeof i !== 'number' || !Number.isInteger(i) || i < 0 || i > BUCKET_COUNT - 1) return false;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) return false;
  }
  return true;
}

/**
 * The hub's own bounds on values the shared schema leaves open (SECURITY.md lists every field): figures
 * that must stay finite when summed over a minute, bucket counts exact in the latency window's packing,
 * the number of error kinds. Returns the problem, naming the field, or undefined.
 */
export const HUB_LIMITS = {
  /** Process CPU % summed over cores: 1,000 cores' worth. */
  cpuPercent: 100_000,
  /** Event-loop lag (ms): a day. */
  lagMs: 86_400_000,
  /** Agent uptime (s): a century. */
  uptimeS: 3_200_000_000,
  /** Histogram bucket count per sample (window.ts packs counts exactly up to 2^41). */
  bucketCount: 2 ** 40,
  /** Error kinds per link counter map. */
  errorKinds: 64,
} as const;

export function hubFrameProblem(f: AgentFrame): string | undefined {
  if (f.type !== 'sample') return undefined;
  const h = f.host;
  if (h.cpuPercent > HUB_LIMITS.cpuPercent) return `host.cpuPercent: at most ${HUB_LIMITS.cpuPercent}`;
  if (h.eventLoopLagMs > HUB_LIMITS.lagMs) return `host.eventLoopLagMs: at most ${HUB_LIMITS.lagMs}`;
  if (h.dataPathLagMs !== undefined && h.dataPathLagMs > HUB_LIMITS.lagMs)
    return `host.dataPathLagMs: at most ${HUB_LIMITS.lagMs}`;
  if (h.uptimeS > HUB_LIMITS.uptimeS) return `host.uptimeS: at most ${HUB_LIMITS.uptimeS}`;
  for (let i = 0; i < f.links.length; i++) {
    const l = f.links[i]!;
    let kinds = 0;
    for (const _ in l.counters.errors) kinds++;
    if (kinds > HUB_LIMITS.errorKinds)
      return `links.${i}.counters.errors: at most ${HUB_LIMITS.errorKinds} error kinds`;
    for (const q of ['queue', 'rtt'] as const) {
      for (const b of l.latency[q]) {
        if (b[1] > HUB_LIMITS.bucketCount)
          return `links.${i}.latency.${q}: bucket count ${b[1]} over ${HUB_LIMITS.bucketCount}`;
      }
    }
  }
  return undefined;
}

/** Schema decode (fast path, then the canonical one for the reason) plus the hub's bounds. */
export function decodeAgentFrame(raw: Buffer | string): Decoded<AgentFrame> {
  const d = decodeAgentFrameSchema(raw);
  if (!d.ok) return d;
  const problem = hubFrameProblem(d.frame);
  return problem ? { ok: false, reason: problem, closeCode: CloseCode.BadFrame } : d;
}

function decodeAgentFrameSchema(raw: Buffer | string): Decoded<AgentFrame> {
  const size = typeof raw === 'string' ? Buffer.byteLength(raw) : raw.length;
  if (size <= MAX_FRAME_BYTES) {
    let json: unknown;
    try {
      json = JSON.parse(typeof raw === 'string' ? raw : raw.toString('utf8'));
    } catch {
      json = undefined;
    }
    if (json && typeof json === 'object' && (json as { v?: unknown }).v === PROTOCOL_VERSION) {
      const r = FastFrameSchema.safeParse(json);
      if (r.success) {
        const f = r.data;
        let ok = true;
        if (f.type === 'sample') {
          for (const l of f.links) {
            if (!bucketsValid(l.latency.queue) || !bucketsValid(l.latency.rtt)) {
              ok = false;
              break;
            }
          }
        }
        if (ok) return { ok: true, frame: f as AgentFrame };
      }
    }
  }
  return decodeFrame(AgentFrameSchema, raw);
}
