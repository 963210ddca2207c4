import { bucketOf, type SparseBuckets, sparseQuantile } from '@rdmaq/shared';
import { describe, expect, it } from 'vitest';
import {
  decodeInto,
  encodeHist,
  type HistAcc,
  mergeBlobs,
  quantileIndex,
  toSorted,
} from '../src/server/hist.js';

describe('hub histogram helpers', () => {
  it('quantileIndex picks the bucket sparseQuantile reports', async () => {
    const { bucketValue } = await import('@rdmaq/shared');
    let seed = 7;
    const rnd = () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    for (let t = 0; t < 200; t++) {
      const m = new Map<number, number>();
      for (let i = 0; i < 1 + Math.floor(rnd() * 40); i++) {
        const b = bucketOf(Math.floor(rnd() * 1e7));
        m.set(b, (m.get(b) ?? 0) + 1 + Math.floor(rnd() * 100));
      }
      const sorted: SparseBuckets = [...m.entries()].sort((a, b) => a[0] - b[0]);
      for (const q of [0.5, 0.99, 0.999])
        expect(bucketValue(quantileIndex(sorted, q))).toBe(sparseQuantile(sorted, q));
    }
    expect(quantileIndex([], 0.5)).toBe(-1);
  });

  it('blobs round-trip and merge bucket-wise', () => {
    const a: HistAcc = new Map([
      [3, 2],
      [900, 5],
    ]);
    const b: HistAcc = new Map([
      [900, 1],
      [3000, 4e12],
    ]);
    const merged: HistAcc = new Map();
    decodeInto(merged, mergeBlobs(encodeHist(a), encodeHist(b)));
    expect(toSorted(merged)).toEqual([
      [3, 2],
      [900, 6],
      [3000, 4e12],
    ]);
    expect(encodeHist(new Map())).toBeNull();
  });
});
