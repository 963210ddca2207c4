/** The native histogram is the twin of @rdmaq/shared's: same bucket indices, percentiles within 1 %. */
import { BUCKET_COUNT, bucketOf, Histogram, MAX_TRACKABLE_NS } from '@rdmaq/shared';
import { describe, expect, it } from 'vitest';
import { native } from '../src/native.js';

describe('histogram twin', () => {
  it('native bucketOf equals the TypeScript one at every edge and on random values', () => {
    const values: number[] = [
      0,
      1,
      127,
      128,
      129,
      255,
      256,
      257,
      MAX_TRACKABLE_NS,
      MAX_TRACKABLE_NS + 1,
      2 ** 40,
    ];
    for (let e = 7; e <= 36; e++) for (const d of [-1, 0, 1]) values.push(2 ** e + d);
    let x = 12345;
    for (let i = 0; i < 100_000; i++) {
      x = (x * 1103515245 + 12345) % 2 ** 31;
      values.push(Math.floor((x / 2 ** 31) ** 4 * 2 ** 36));
    }
    for (const v of values) {
      const n = native.bucketOf(v);
      if (n !== bucketOf(v)) expect({ v, native: n }).toEqual({ v, native: bucketOf(v) });
      expect(n).toBeLessThan(BUCKET_COUNT);
    }
  });

  it('percentiles from native sparse buckets are within 1 % of the exact ones', async () => {
    // recordRtt feeds the native rtt histogram of a sender; read it back through stats().
    const { listen, connect } = await import('../src/index.js');
    const { tempDir, removeDir, uniqueLinkId } = await import('./helpers.js');
    const dir = tempDir('rdmaq-h-');
    const l = await listen({ socketPath: `${dir}/s.sock`, capacity: 65_536 });
    const linkId = uniqueLinkId('h');
    l.accept(linkId);
    const tx = await connect({ linkId, socketPath: l.socketPath });
    const n = tx as unknown as { n: { recordRtt(ns: number): void } };
    const values: number[] = [];
    let x = 99;
    for (let i = 0; i < 50_000; i++) {
      x = (x * 1103515245 + 12345) % 2 ** 31;
      const v = Math.floor(200 + (x / 2 ** 31) ** 3 * 5_000_000); // 200 ns … 5 ms, skewed
      values.push(v);
      n.n.recordRtt(v);
    }
    const h = Histogram.fromSparse(tx.stats().latency.rtt);
    values.sort((a, b) => a - b);
    for (const q of [0.5, 0.9, 0.99, 0.999]) {
      const exact = values[Math.max(0, Math.ceil(q * values.length) - 1)]!;
      expect(Math.abs(h.quantile(q) - exact) / exact).toBeLessThan(0.01);
    }
    expect(h.count).toBe(values.length);
    await tx.close();
    await l.close();
    removeDir(dir);
  });
});
