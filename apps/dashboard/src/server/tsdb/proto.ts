/**
 * Prometheus remote write 1.0 (`prometheus.WriteRequest`, prompb/remote.proto + types.proto), encoded with
 * protobufjs. Only the fields the hub sends are declared (labels, float samples; no exemplars, metadata or
 * native histograms). Field numbers are those of prompb, so any remote-write receiver (Prometheus,
 * VictoriaMetrics, Mimir, Thanos Receive, Cortex) reads it.
 *
 * Hot path: a series' labels never change, so they are encoded once per series (`encodeSeries`); a batch
 * is those bytes plus one sample per queued point (`encodeWriteRequest`).
 */
import protobuf from 'protobufjs';

export const root = protobuf.Root.fromJSON({
  nested: {
    prometheus: {
      nested: {
        WriteRequest: { fields: { timeseries: { rule: 'repeated', type: 'TimeSeries', id: 1 } } },
        TimeSeries: {
          fields: {
            labels: { rule: 'repeated', type: 'Label', id: 1 },
            samples: { rule: 'repeated', type: 'Sample', id: 2 },
          },
        },
        Label: { fields: { name: { type: 'string', id: 1 }, value: { type: 'string', id: 2 } } },
        Sample: { fields: { value: { type: 'double', id: 1 }, timestamp: { type: 'int64', id: 2 } } },
      },
    },
  },
});

export const WriteRequest = root.lookupType('prometheus.WriteRequest');
const TimeSeries = root.lookupType('prometheus.TimeSeries');

/**
 * A series' constant part: `TimeSeries { labels }` encoded by protobufjs, labels sorted by name
 * (`__name__` first) as remote write requires.
 */
export function encodeSeries(labels: ReadonlyArray<readonly [string, string]>): Uint8Array {
  const sorted = [...labels].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return TimeSeries.encode({ labels: sorted.map(([name, value]) => ({ name, value })) }).finish();
}

function varintLen(n: number): number {
  let len = 1;
  while (n >= 128) {
    n = Math.floor(n / 128);
    len++;
  }
  return len;
}

/** ms timestamps from 1971 to 2109 are 6-byte varints: the common case gets a precomputed prefix. */
const TS_MIN = 2 ** 35;
const TS_MAX = 2 ** 42;
const SAMPLE_LEN = 1 + 8 + 1 + 6;

/**
 * What a series' point starts with: the WriteRequest.timeseries tag and length, the series' labels and the
 * sample's tags, for a 6-byte timestamp (`encodeWriteRequest` handles any other by hand).
 */
export function pointPrefix(series: Uint8Array): Buffer {
  const tsLen = series.length + 2 + SAMPLE_LEN;
  const head = Buffer.allocUnsafe(1 + varintLen(tsLen) + series.length + 3);
  let o = 0;
  head[o++] = 0x0a; // WriteRequest.timeseries (1, length-delimited)
  for (let n = tsLen; ; ) {
    if (n < 128) {
      head[o++] = n;
      break;
    }
    head[o++] = (n % 128) | 128;
    n = Math.floor(n / 128);
  }
  head.set(series, o);
  o += series.length;
  head[o++] = 0x12; // TimeSeries.samples (2, length-delimited)
  head[o++] = SAMPLE_LEN;
  head[o++] = 0x09; // Sample.value (1, fixed64 double)
  return head;
}

/**
 * A WriteRequest holding points `[start, start + count)` of the ring (indices modulo `cap`), one TimeSeries
 * per point: `series[id]` (its labels, from `encodeSeries`) followed by `samples: [{value, timestamp}]`.
 * `prefixes[id]` is `pointPrefix(series[id])`. The result is a view of a scratch buffer reused by the next
 * call: compress or copy it first.
 *
 * Protobuf messages merge by concatenation, so `labels bytes ++ sample bytes` is the TimeSeries. The
 * schema-dependent part (labels) is protobufjs'; the per-point part is two fixed fields written straight
 * into one buffer: the protobufjs Writer took ~4 µs a point (2.5 cores at 600k points/s), this well under
 * 1 µs. test/tsdb.test.ts decodes batches with protobufjs to keep the two in agreement.
 */
export function encodeWriteRequest(
  series: ReadonlyArray<Uint8Array>,
  prefixes: ReadonlyArray<Buffer>,
  ids: Int32Array,
  values: Float64Array,
  times: Float64Array,
  start: number,
  count: number,
  cap: number,
): Buffer {
  let size = 0;
  for (let k = 0; k < count; k++) {
    const i = (start + k) % cap;
    const t = times[i]!;
    if (t >= TS_MIN && t < TS_MAX) size += prefixes[ids[i]!]!.length + 8 + 7;
    else {
      const tsLen = series[ids[i]!]!.length + 2 + 10 + varintLen(t);
      size += 1 + varintLen(tsLen) + tsLen;
    }
  }
  // One scratch buffer, grown as needed and reused batch after batch (the caller compresses it before the
  // next call): a fresh multi-MB buffer per batch was most of the writer's GC work.
  if (scratch.length < size) scratch = Buffer.allocUnsafe(Math.max(size, scratch.length * 2));
  const buf = scratch;
  let o = 0;
  const varint = (n: number) => {
    while (n >= 128) {
      buf[o++] = (n % 128) | 128;
      n = Math.floor(n / 128);
    }
    buf[o++] = n;
  };
  let lastT = Number.NaN;
  const tsBytes = Buffer.alloc(6);
  for (let k = 0; k < count; k++) {
    const i = (start + k) % cap;
    const id = ids[i]!;
    const t = times[i]!;
    if (t >= TS_MIN && t < TS_MAX) {
      const head = prefixes[id]!;
      // TypedArray#set: Buffer#copy's argument checks cost more than the copy of ~150 bytes.
      buf.set(head, o);
      o += head.length;
      o = buf.writeDoubleLE(values[i]!, o);
      buf[o++] = 0x10; // Sample.timestamp (2, varint)
      if (t !== lastT) {
        lastT = t;
        let n = t;
        for (let j = 0; j < 5; j++) {
          tsBytes[j] = (n % 128) | 128;
          n = Math.floor(n / 128);
        }
        tsBytes[5] = n;
      }
      buf[o] = tsBytes[0]!;
      buf[o + 1] = tsBytes[1]!;
      buf[o + 2] = tsBytes[2]!;
      buf[o + 3] = tsBytes[3]!;
      buf[o + 4] = tsBytes[4]!;
      buf[o + 5] = tsBytes[5]!;
      o += 6;
      continue;
    }
    const lab = series[id]!;
    const sampleLen = 1 + 8 + 1 + varintLen(t);
    buf[o++] = 0x0a;
    varint(lab.length + 2 + sampleLen);
    buf.set(lab, o);
    o += lab.length;
    buf[o++] = 0x12;
    buf[o++] = sampleLen;
    buf[o++] = 0x09;
    o = buf.writeDoubleLE(values[i]!, o);
    buf[o++] = 0x10;
    varint(t);
  }
  return buf.subarray(0, o);
}

let scratch = Buffer.alloc(0);
