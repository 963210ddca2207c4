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

export function decodeAgentFrame(raw: Buffer | string): Decoded<AgentFrame> {
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
