import { bucketOf, mergeSparse, type SparseBuckets, sparseQuantile } from '@rdmaq/shared';
import { describe, expect, it } from 'vitest';
import { LatencyWindow, SLOT_MS } from '../src/server/window.js';

const buckets = (values: Array<[number, number]>): SparseBuckets => {
  const m = new Map<number, number>();
  for (const [v, n] of values) m.set(bucketOf(v), (m.get(bucketOf(v)) ?? 0) + n);
  return [...m.entries()].sort((a, b) => a[0] - b[0]);
};

describe('LatencyWindow (5 s slots of queue-latency histograms)', () => {
  it('quantiles over a window equal those of the merged samples of the slots overlapping it', () => {
    const w = new LatencyWindow(120);
    const t0 = 1_764_000_000_000;
    const sent: Array<{ ts: number; b: SparseBuckets }> = [];
    let x = 7;
    const rnd = () => {
      x = (x * 1_103_515_245 + 12_345) % 2 ** 31;
      return x / 2 ** 31;
    };
    for (let s = 0; s < 300; s++) {
      const ts = t0 + s * 1000 + Math.floor(rnd() * 900);
      const b = buckets(
        Array.from({ length: 6 }, (): [number, number] => [
          Math.floor(20_000 * 10 ** (rnd() * 3)),
          1 + Math.floor(rnd() * 50),
        ]),
      );
      w.add(ts, b);
      sent.push({ ts, b });
      const now = ts + 200;
      for (const windowS of [10, 30, 120]) {
        const lo = Math.floor((now - windowS * 1000) / SLOT_MS) * SLOT_MS;
        const inWindow = mergeSparse(...sent.filter((e) => e.ts >= lo).map((e) => e.b));
        for (const q of [0.5, 0.99, 0.999]) {
          expect(w.quantile(now, windowS * 1000, q)).toBe(sparseQuantile(inWindow, q));
        }
        const slots = w.slots(now, windowS * 1000);
        expect(mergeSparse(...slots.map((sl) => sl.buckets))).toEqual(inWindow);
        expect(slots[0]!.ts).toBeGreaterThanOrEqual(lo);
      }
    }
  });

  it('a late sample joins its slot while kept; older ones and empty histograms are ignored', () => {
    const w = new LatencyWindow(30);
    const t0 = 1_764_000_000_000 - (1_764_000_000_000 % SLOT_MS);
    w.add(t0, buckets([[100_000, 100]]));
    w.add(t0 + 20_000, buckets([[100_000, 100]]));
    w.add(t0 + 5_000, buckets([[50_000_000, 5]])); // late, its slot is kept
    w.add(t0 - 60_000, buckets([[900_000_000, 500]])); // too old
    w.add(t0 + 21_000, []);
    const now = t0 + 21_000;
    expect(w.slots(now, 30_000).map((s) => [s.ts - t0, s.buckets.reduce((a, [, n]) => a + n, 0)])).toEqual([
      [0, 100],
      [5_000, 5],
      [20_000, 100],
    ]);
    expect(w.quantile(now, 30_000, 0.99)).toBeCloseTo(50_000_000, -6);
    // Nothing in the last 5 s slot range once time moves on without records.
    expect(w.quantile(t0 + 200_000, 30_000, 0.5)).toBeNaN();
    expect(w.slots(t0 + 200_000, 30_000)).toEqual([]);
  });
});
