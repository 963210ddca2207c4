/** Percentiles for rdmaq-perf: exact from samples, or from sparse log-linear buckets (layout of @rdmaq/shared). */

const SUB = 128;

/** Midpoint of a bucket of the shared log-linear layout (SUB_BITS 7), in ns. */
export function bucketValue(index: number): number {
  if (index < SUB) return index;
  const shift = Math.floor((index - SUB) / SUB);
  const low = (SUB + ((index - SUB) % SUB)) * 2 ** shift;
  const width = 2 ** shift;
  return width === 1 ? low : low + width / 2;
}

export interface Percentiles {
  p50: number;
  p99: number;
  p999: number;
  max: number;
}

/** Nearest-rank percentiles of samples (ns); sorts in place. */
export function samplePercentiles(samples: Float64Array): Percentiles {
  samples.sort();
  const at = (q: number) => samples[Math.max(0, Math.ceil(q * samples.length) - 1)] ?? Number.NaN;
  return { p50: at(0.5), p99: at(0.99), p999: at(0.999), max: samples[samples.length - 1] ?? Number.NaN };
}

/** Percentiles from sparse [index, count] buckets; `maxNs` is the exact maximum when known. */
export function sparsePercentiles(buckets: Array<[number, number]>, maxNs?: number): Percentiles {
  let total = 0;
  for (const [, n] of buckets) total += n;
  const at = (q: number) => {
    if (total === 0) return Number.NaN;
    const rank = Math.max(1, Math.ceil(q * total));
    let seen = 0;
    for (const [i, n] of buckets) {
      seen += n;
      if (seen >= rank) return bucketValue(i);
    }
    return Number.NaN;
  };
  const last = buckets[buckets.length - 1];
  return {
    p50: at(0.5),
    p99: at(0.99),
    p999: at(0.999),
    max: maxNs ?? (last ? bucketValue(last[0]) : Number.NaN),
  };
}
