import { describe, expect, it } from 'vitest';
import {
  AgentFrameSchema,
  CloseCode,
  decodeFrame,
  MAX_FRAME_BYTES,
  PROTOCOL_VERSION,
  type Sample,
} from '../src/protocol.js';

const sample: Sample = {
  type: 'sample',
  v: PROTOCOL_VERSION,
  seq: 1,
  ts: 1_764_000_000_000,
  host: { cpuPercent: 1.5, rssBytes: 50e6, eventLoopLagMs: 0.2, uptimeS: 12 },
  links: [
    {
      id: 'a->b',
      peer: 'b',
      direction: 'tx',
      transport: 'shm',
      provider: 'shm',
      state: 'up',
      counters: {
        records: 10,
        bytes: 640,
        completions: 10,
        creditUpdates: 1,
        backpressure: 0,
        wraps: 0,
        resends: 0,
        reconnects: 0,
        errors: {},
      },
      gauges: { occupancyBytes: 0, peakOccupancyBytes: 880, capacityBytes: 4 << 20 },
      latency: { queue: [[300, 10]], rtt: [] },
    },
  ],
};

describe('decodeFrame', () => {
  it('accepts a valid sample', () => {
    const r = decodeFrame(AgentFrameSchema, JSON.stringify(sample));
    expect(r.ok).toBe(true);
  });

  it('names the bad field of a wrong-typed frame', () => {
    const bad = structuredClone(sample) as unknown as { links: Array<{ counters: { bytes: unknown } }> };
    bad.links[0]!.counters.bytes = 'lots';
    const r = decodeFrame(AgentFrameSchema, JSON.stringify(bad));
    expect(r).toMatchObject({ ok: false, closeCode: CloseCode.BadFrame });
    if (!r.ok) expect(r.reason).toContain('links.0.counters.bytes');
  });

  it('refuses non-JSON, oversized frames, other protocol versions and out-of-range buckets', () => {
    expect(decodeFrame(AgentFrameSchema, '{nope')).toMatchObject({
      ok: false,
      closeCode: CloseCode.BadFrame,
    });
    expect(decodeFrame(AgentFrameSchema, 'x'.repeat(MAX_FRAME_BYTES + 1))).toMatchObject({
      ok: false,
      closeCode: CloseCode.TooBig,
    });
    const v2 = decodeFrame(AgentFrameSchema, JSON.stringify({ ...sample, v: 2 }));
    expect(v2).toMatchObject({ ok: false, closeCode: CloseCode.ProtocolVersion });
    const hugeBucket = structuredClone(sample);
    hugeBucket.links[0]!.latency.queue = [[999_999, 1]];
    expect(decodeFrame(AgentFrameSchema, JSON.stringify(hugeBucket)).ok).toBe(false);
  });
});
