/** TSDB config and the remote-write encoding, without a TSDB. */
import snappy from 'snappy';
import { describe, expect, it } from 'vitest';
import { loadConfig, parseConfig } from '../src/server/config.js';
import { encodeSeries, encodeWriteRequest, pointPrefix, WriteRequest } from '../src/server/tsdb/proto.js';
import { PointQueue } from '../src/server/tsdb/queue.js';
import { RemoteWriter, SERIES_PER_LINK } from '../src/server/tsdb/remote-write.js';
import { sample } from './helpers.js';

describe('tsdb config', () => {
  it('RDMAQ_TSDB_URL points both directions at one VictoriaMetrics; the _WRITE_/_QUERY_ ones override', () => {
    const c = loadConfig({ env: { RDMAQ_DATA: '/tmp/x', RDMAQ_TSDB_URL: 'http://127.0.0.1:8428/' } });
    expect(c.tsdb?.remoteWriteUrl).toBe('http://127.0.0.1:8428/api/v1/write');
    expect(c.tsdb?.queryUrl).toBe('http://127.0.0.1:8428');
    expect(c.tsdb?.batchSamples).toBe(20_000);
    const m = loadConfig({
      env: {
        RDMAQ_DATA: '/tmp/x',
        RDMAQ_TSDB_WRITE_URL: 'https://mimir/api/v1/push',
        RDMAQ_TSDB_QUERY_URL: 'https://mimir/prometheus',
        RDMAQ_TSDB_HEADERS: 'X-Scope-OrgID: rdmaq',
        RDMAQ_TSDB_USER: 'u',
        RDMAQ_TSDB_PASSWORD: 'p',
      },
    });
    expect(m.tsdb).toMatchObject({
      remoteWriteUrl: 'https://mimir/api/v1/push',
      queryUrl: 'https://mimir/prometheus',
      headers: { 'X-Scope-OrgID': 'rdmaq' },
      basicAuth: { username: 'u', password: 'p' },
    });
    expect(loadConfig({ env: { RDMAQ_DATA: '/tmp/x' } }).tsdb).toBeUndefined();
  });

  it('bad values are named with the key and the fix', () => {
    const bad = (tsdb: unknown) => () => parseConfig({ dataDir: '/tmp/x', tsdb });
    expect(bad({ remoteWriteUrl: 'vm:8428', queryUrl: 'http://vm:8428' })).toThrow(
      /tsdb\.remoteWriteUrl: must be an absolute http\(s\) URL.*RDMAQ_TSDB_URL/,
    );
    expect(
      bad({
        remoteWriteUrl: 'http://vm/api/v1/write',
        queryUrl: 'http://vm',
        batchSamples: 5000,
        queueSamples: 2000,
      }),
    ).toThrow(/tsdb\.batchSamples: is larger than queueSamples \(2000\); lower it or raise queueSamples/);
    expect(
      bad({
        remoteWriteUrl: 'http://vm/api/v1/write',
        queryUrl: 'http://vm',
        headers: { Authorization: 'Bearer x' },
        basicAuth: { username: 'a', password: 'b' },
      }),
    ).toThrow(/tsdb\.headers: has an Authorization header and basicAuth is set too/);
    expect(
      bad({ remoteWriteUrl: 'http://vm/api/v1/write', queryUrl: 'http://vm', tlsCaPath: '/ca.pem' }),
    ).toThrow(/tsdb\.tlsCaPath: is set but neither URL is https/);
    expect(() => loadConfig({ env: { RDMAQ_DATA: '/tmp/x', RDMAQ_TSDB_USER: 'u' } })).toThrow(
      /tsdb\.remoteWriteUrl/,
    );
    expect(() =>
      loadConfig({
        env: { RDMAQ_DATA: '/tmp/x', RDMAQ_TSDB_URL: 'http://vm', RDMAQ_TSDB_HEADERS: 'nocolon' },
      }),
    ).toThrow(/RDMAQ_TSDB_HEADERS: "nocolon" is not "Name: value"/);
  });
});

describe('remote-write encoding', () => {
  it('a batch decodes with protobufjs to the queued points, labels sorted, across the ring edge', () => {
    const series = [
      encodeSeries([
        ['node', 'n1'],
        ['__name__', 'rdmaq_link_records_total'],
        ['link', 'l1'],
      ]),
      encodeSeries([
        ['__name__', 'rdmaq_agent_uptime_seconds'],
        ['node', 'n1'],
      ]),
    ];
    const prefixes = series.map(pointPrefix);
    const q = new PointQueue(4);
    q.push(0, 1, 1);
    q.push(0, 2, 2);
    q.shift(2);
    q.push(0, 1.5, 1_765_000_000_123); // 6-byte varint timestamp (precomputed prefix)
    q.push(1, -3.25, 1_765_000_001_000);
    q.push(0, 7, 1000); // another width
    expect(q.push(1, 8, 1)).toBe(true);
    expect(q.push(1, 9, 1)).toBe(false);
    const buf = encodeWriteRequest(series, prefixes, q.ids, q.values, q.times, q.start, q.length, q.capacity);
    const msg = WriteRequest.toObject(
      WriteRequest.decode(snappy.uncompressSync(snappy.compressSync(buf)) as Buffer),
      {
        longs: Number,
      },
    ) as {
      timeseries: Array<{
        labels: Array<{ name: string; value: string }>;
        samples: Array<{ value: number; timestamp: number }>;
      }>;
    };
    expect(msg.timeseries.map((t) => t.samples)).toEqual([
      [{ value: 1.5, timestamp: 1_765_000_000_123 }],
      [{ value: -3.25, timestamp: 1_765_000_001_000 }],
      [{ value: 7, timestamp: 1000 }],
      [{ value: 8, timestamp: 1 }],
    ]);
    expect(msg.timeseries[0]!.labels.map((l) => l.name)).toEqual(['__name__', 'link', 'node']);
    expect(msg.timeseries[1]!.labels).toEqual([
      { name: '__name__', value: 'rdmaq_agent_uptime_seconds' },
      { name: 'node', value: 'n1' },
    ]);
  });
});

describe('remote-write queueing', () => {
  const writer = (writeIntervalMs: number) =>
    new RemoteWriter({
      url: 'http://127.0.0.1:1/api/v1/write',
      // Never answers: points stay queued, so the counts below are what onSample queued.
      http: { request: () => new Promise(() => {}) } as never,
      log: { warn() {}, info() {} } as never,
      batchSamples: 1_000_000,
      queueSamples: 1_000_000,
      batchDelayMs: 3_600_000,
      retryBaseMs: 1,
      retryMaxMs: 1,
      writeIntervalMs,
    });
  const per = 4 + SERIES_PER_LINK; // one link, no data-path lag

  it('every sample by default; with writeIntervalMs one in each interval per node, histograms still cumulative', () => {
    const all = writer(0);
    const every5 = writer(5000);
    for (let i = 1; i <= 20; i++) {
      const s = sample(i, 1_765_000_000_000 + i * 1000, [
        { id: 'l1', peer: 'p', records: i, latency: [[5000, 1]] },
      ]);
      all.onSample('n1', s);
      every5.onSample('n1', s);
    }
    expect(all.stats().samplesQueued).toBe(20 * per);
    // Samples 1, 6, 11, 16.
    expect(every5.stats().samplesQueued).toBe(4 * per);
    expect(every5.stats().queueLength).toBe(4 * per);
  });
});
