import { describe, expect, it } from 'vitest';
import {
  BUCKET_COUNT,
  bucketLow,
  bucketOf,
  bucketValue,
  bucketWidth,
  Histogram,
  MAX_TRACKABLE_NS,
  mergeSparse,
  sparseQuantile,
} from '../src/histogram.js';

/** Deterministic PRNG so a failure can be replayed. */
function mulberry32(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function exactQuantile(sorted: number[], q: number): number {
  return sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)]!;
}

describe('bucket layout', () => {
  it('is exact below 128 ns and contiguous above', () => {
    for (let v = 0; v < 128; v++) expect(bucketOf(v)).toBe(v);
    expect(bucketOf(128)).toBe(128);
    expect(bucketOf(255)).toBe(255);
    expect(bucketOf(256)).toBe(256);
    expect(bucketOf(257)).toBe(256); // width 2 from 256 on
    expect(bucketOf(258)).toBe(257);
  });

  it('puts every value inside its bucket, at powers of two and around them', () => {
    for (let e = 7; e <= 34; e++) {
      for (const v of [2 ** e - 1, 2 ** e, 2 ** e + 1, 3 * 2 ** (e - 1)]) {
        const i = bucketOf(v);
        expect(bucketLow(i)).toBeLessThanOrEqual(v);
        expect(bucketLow(i) + bucketWidth(i)).toBeGreaterThan(v);
      }
    }
  });

  it('reports every value from 50 ns to 10 s within 1 % (bucket midpoint vs value)', () => {
    const rnd = mulberry32(7);
    for (let k = 0; k < 20_000; k++) {
      const v = Math.floor(50 * 10 ** (rnd() * 8.3));
      expect(Math.abs(bucketValue(bucketOf(v)) - v) / v).toBeLessThanOrEqual(0.01);
      if (v >= 128) expect(bucketWidth(bucketOf(v)) / v).toBeLessThanOrEqual(1 / 128);
    }
  });

  it('clamps huge values into the last bucket and rejects negatives', () => {
    expect(bucketOf(MAX_TRACKABLE_NS * 10)).toBe(BUCKET_COUNT - 1);
    expect(() => bucketOf(-1)).toThrow(RangeError);
    expect(() => bucketOf(Number.NaN)).toThrow(/finite/);
  });
});

describe('Histogram percentiles', () => {
  it('match exact percentiles within 1 % on a heavy-tailed latency sample', () => {
    const rnd = mulberry32(42);
    const h = new Histogram();
    const values: number[] = [];
    for (let k = 0; k < 200_000; k++) {
      // log-normal-ish around 1 µs with a tail to milliseconds
      const v = Math.floor(1000 * Math.exp(rnd() * 2 - 1) * (rnd() < 0.01 ? 1000 : 1));
      values.push(v);
      h.record(v);
    }
    values.sort((a, b) => a - b);
    for (const q of [0.5, 0.9, 0.99, 0.999, 1]) {
      const exact = exactQuantile(values, q);
      expect(Math.abs(h.quantile(q) - exact) / exact).toBeLessThanOrEqual(0.01);
    }
    expect(h.quantile(0)).toBe(values[0]);
    expect(h.count).toBe(values.length);
  });

  it('merges sparse deltas to the same quantiles as one histogram', () => {
    const rnd = mulberry32(3);
    const a = new Histogram();
    const b = new Histogram();
    const all = new Histogram();
    for (let k = 0; k < 10_000; k++) {
      const v = Math.floor(rnd() * 100_000);
      (k % 2 ? a : b).record(v);
      all.record(v);
    }
    const merged = Histogram.fromSparse(mergeSparse(a.toSparse(), b.toSparse()));
    expect(merged.toSparse()).toEqual(all.toSparse());
    expect(sparseQuantile(merged.toSparse(), 0.99)).toBeCloseTo(all.quantile(0.99), -1);
  });

  it('is NaN when empty and refuses bad quantiles and buckets', () => {
    const h = new Histogram();
    expect(h.quantile(0.5)).toBeNaN();
    expect(() => h.quantile(1.5)).toThrow(RangeError);
    expect(() => h.addSparse([[BUCKET_COUNT, 1]])).toThrow(/bucket/);
  });
});
