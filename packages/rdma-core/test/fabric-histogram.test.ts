/** The fabric link ends' queue/RTT histograms use exactly the bucket layout of @rdmaq/shared. */
import { bucketOf as sharedBucketOf } from '@rdmaq/shared';
import { expect, it } from 'vitest';
import { bucketOf, SparseHistogram } from '../src/fabric/stats.js';

it('fabric bucketOf equals @rdmaq/shared bucketOf, sparse output ascending', () => {
  const vals = [
    0,
    1,
    127,
    128,
    129,
    255,
    256,
    1000,
    4095,
    4096,
    65_535,
    1e6,
    2 ** 31 - 1,
    2 ** 31,
    2 ** 32 - 1,
  ];
  vals.push(2 ** 32, 2 ** 33 + 5, 2 ** 35 - 1, 2 ** 36);
  let x = 12_345;
  for (let i = 0; i < 20_000; i++) {
    x = (Math.imul(x, 1_103_515_245) + 12_345) >>> 0;
    vals.push(Math.floor((x / 2 ** 32) * 2 ** ((i % 36) + 1)));
  }
  for (const v of vals) expect(bucketOf(v), String(v)).toBe(sharedBucketOf(v));
  const h = new SparseHistogram();
  for (const v of [5000, 5, 5, 1e9]) h.record(v);
  expect(h.toSparse()).toEqual([
    [5, 2],
    [sharedBucketOf(5000), 1],
    [sharedBucketOf(1e9), 1],
  ]);
});
