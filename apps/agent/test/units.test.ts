/** Pure pieces: bucket conversion for Prometheus, histogram deltas, backoff, size distributions. */
import { spawnSync } from 'node:child_process';
import { Backoff, bucketOf, type LinkSample, PROTOCOL_VERSION, type Sample } from '@rdmaq/shared';
import { describe, expect, it } from 'vitest';
import { peerFromLinkId, sparseDelta } from '../src/links.js';
import { AgentMetrics, LATENCY_BOUNDS_S } from '../src/prom.js';
import { SequenceChecker, sizePicker, TrafficGenerator, type TrafficSink } from '../src/traffic.js';

function linkSample(id: string, queue: Array<[number, number]>, records: number): LinkSample {
  return {
    id,
    peer: 'p',
    direction: 'rx',
    transport: 'shm',
    provider: 'shm',
    state: 'up',
    counters: {
      records,
      bytes: records * 10,
      completions: 0,
      creditUpdates: 0,
      backpressure: 0,
      wraps: 0,
      resends: 0,
      reconnects: 0,
      errors: { peer_gone: 2 },
    },
    gauges: { occupancyBytes: 5, peakOccupancyBytes: 9, capacityBytes: 65536 },
    latency: { queue, rtt: [] },
  };
}

function sample(seq: number, links: LinkSample[]): Sample {
  return {
    type: 'sample',
    v: PROTOCOL_VERSION,
    seq,
    ts: 1_700_000_000_000 + seq,
    host: { cpuPercent: 1, rssBytes: 1, eventLoopLagMs: 0, uptimeS: 1 },
    links,
  };
}

function value(text: string, prefix: string): number {
  const line = text.split('\n').find((l) => l.startsWith(prefix));
  if (!line) throw new Error(`no line starting with ${prefix}`);
  return Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('prometheus conversion', () => {
  it('bounds run from 100 ns to 10 s in 1-2.5-5 steps', () => {
    expect(LATENCY_BOUNDS_S[0]).toBe(1e-7);
    expect(LATENCY_BOUNDS_S.at(-1)).toBe(10);
    expect(LATENCY_BOUNDS_S).toContain(2.5e-6);
    expect([...LATENCY_BOUNDS_S].sort((a, b) => a - b)).toEqual(LATENCY_BOUNDS_S);
  });

  it('places native buckets under the right le, cumulatively, with sum and count', async () => {
    const m = new AgentMetrics({ nodeId: 'n', version: '0', defaultMetrics: false });
    // 1000 ns exactly (on the 1 µs bound), 1500 ns, 30 s (beyond every bound).
    const b1 = bucketOf(1000);
    const b2 = bucketOf(1500);
    const b3 = bucketOf(30e9);
    m.ingest(sample(1, [linkSample('x', [[b1, 3]], 3)]));
    m.ingest(
      sample(2, [
        linkSample(
          'x',
          [
            [b2, 2],
            [b3, 1],
          ],
          6,
        ),
      ]),
    );
    const text = await m.text();
    const base = 'rdmaq_link_queue_latency_seconds';
    const l = 'link="x",peer="p",transport="shm",provider="shm"';
    expect(value(text, `${base}_bucket{${l},le="5e-7"}`)).toBe(0);
    expect(value(text, `${base}_bucket{${l},le="0.000001"}`)).toBe(3);
    expect(value(text, `${base}_bucket{${l},le="0.0000025"}`)).toBe(5);
    expect(value(text, `${base}_bucket{${l},le="10"}`)).toBe(5);
    expect(value(text, `${base}_bucket{${l},le="+Inf"}`)).toBe(6);
    expect(value(text, `${base}_count{${l}}`)).toBe(6);
    const sum = value(text, `${base}_sum{${l}}`);
    expect(sum).toBeGreaterThan(30 * 0.99);
    expect(sum).toBeLessThan(30 * 1.01 + 1e-5);
    // Counters are the latest cumulative values, errors by kind.
    expect(value(text, `rdmaq_link_records_total{${l}}`)).toBe(6);
    expect(value(text, `rdmaq_link_errors_total{${l},kind="peer_gone"}`)).toBe(2);
    expect(value(text, `rdmaq_link_ring_peak_occupancy_bytes{${l}}`)).toBe(9);
    expect(value(text, 'rdmaq_agent_samples_total')).toBe(2);
    const check = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect(check.stdout + check.stderr).toBe('');
    expect(check.status).toBe(0);
  });

  it('drops a link that is no longer sampled', async () => {
    const m = new AgentMetrics({ nodeId: 'n', version: '0', defaultMetrics: false });
    m.ingest(sample(1, [linkSample('gone', [], 1)]));
    m.ingest(sample(2, []));
    expect(await m.text()).not.toContain('link="gone"');
  });
});

describe('histogram deltas', () => {
  it('subtracts cumulative sparse histograms', () => {
    expect(
      sparseDelta(
        [
          [1, 5],
          [4, 2],
          [9, 1],
        ],
        [
          [1, 3],
          [4, 2],
        ],
      ),
    ).toEqual([
      [1, 2],
      [9, 1],
    ]);
    expect(sparseDelta([], [])).toEqual([]);
  });

  it('treats a histogram that went down as recreated (the whole of it is new)', () => {
    expect(sparseDelta([[2, 1]], [[2, 5]])).toEqual([[2, 1]]);
    expect(sparseDelta([[3, 1]], [[2, 5]])).toEqual([[3, 1]]);
  });
});

describe('backoff', () => {
  it('doubles up to the cap with jitter in [cap/2, cap]', () => {
    const lo = new Backoff({ initialMs: 100, maxMs: 1000, random: () => 0 });
    expect([lo.next(), lo.next(), lo.next(), lo.next(), lo.next()]).toEqual([50, 100, 200, 400, 500]);
    const hi = new Backoff({ initialMs: 100, maxMs: 1000, random: () => 1 });
    expect([hi.next(), hi.next(), hi.next(), hi.next(), hi.next()]).toEqual([100, 200, 400, 800, 1000]);
    hi.reset();
    expect(hi.next()).toBe(100);
  });
});

describe('traffic stamps and the sequence check', () => {
  /** A sink that accepts `room` records, then refuses until given more; records are copied as delivered. */
  function sink(room: number) {
    const got: Buffer[] = [];
    let free = room;
    const s: TrafficSink & { got: Buffer[]; give(n: number): void } = {
      state: 'up',
      closed: false,
      maxPayload: 4096,
      got,
      give: (n: number) => {
        free += n;
      },
      send(p: Uint8Array) {
        if (free === 0) return false;
        free--;
        got.push(Buffer.from(p));
        return true;
      },
      whenWritable: () => new Promise<void>(() => {}),
    };
    return s;
  }

  it('the generator stamps every accepted record with 1, 2, 3…; a refused one does not take a number', async () => {
    const s = sink(5);
    const g = new TrafficGenerator(s, { rate: 1000, size: { dist: 'uniform', min: 16, max: 64 } });
    g.start();
    await new Promise((r) => setTimeout(r, 50)); // the ring refuses the 6th: the generator waits for space
    g.stop();
    expect(s.got.length).toBe(5);
    const check = new SequenceChecker();
    for (const b of s.got) check.record(b, 0, b.length);
    expect(check.stats).toEqual({ checked: 5, lost: 0, duplicated: 0 });
    expect(s.got.map((b) => b.readUInt32LE(8))).toEqual([1, 2, 3, 4, 5]);
  });

  it('counts records missing within a stream and records seen twice; a new stream starts over', () => {
    const rec = (stream: number, n: number) => {
      const b = Buffer.alloc(32);
      b.writeUInt32LE(0x47545152, 0);
      b.writeUInt32LE(stream, 4);
      b.writeUInt32LE(n, 8);
      return b;
    };
    const check = new SequenceChecker();
    for (const n of [1, 2, 3, 7, 8, 8, 5, 9]) check.record(rec(11, n), 0, 32);
    expect(check.stats).toEqual({ checked: 8, lost: 3, duplicated: 2 });
    // A restarted sender (new stream) from 1 again: not a duplicate.
    for (const n of [1, 2, 3]) check.record(rec(12, n), 0, 32);
    expect(check.stats).toEqual({ checked: 11, lost: 3, duplicated: 2 });
    // Unstamped or short records are not checked.
    check.record(Buffer.alloc(64), 0, 64);
    check.record(rec(12, 9), 0, 15);
    expect(check.stats.checked).toBe(11);
  });
});

describe('traffic sizes and link ids', () => {
  it('draws sizes from each distribution within the ring limit', () => {
    let r = 0;
    const seq = () => {
      r = (r + 0.37) % 1;
      return r;
    };
    expect(sizePicker(64, 1000)()).toBe(64);
    expect(sizePicker(5000, 1000)()).toBe(1000);
    const u = sizePicker({ dist: 'uniform', min: 10, max: 20 }, 1000, seq);
    for (let i = 0; i < 100; i++) {
      const n = u();
      expect(n).toBeGreaterThanOrEqual(10);
      expect(n).toBeLessThanOrEqual(20);
    }
    const c = sizePicker(
      {
        dist: 'choice',
        choices: [
          { bytes: 1, weight: 1 },
          { bytes: 2, weight: 3 },
        ],
      },
      1000,
      seq,
    );
    const counts = new Map<number, number>();
    for (let i = 0; i < 1000; i++) counts.set(c(), (counts.get(c()) ?? 0) + 1);
    expect([...counts.keys()].sort()).toEqual([1, 2]);
  });

  it('reads the sending node from a default link id', () => {
    expect(peerFromLinkId('gpu-1->gpu-2')).toBe('gpu-1');
    expect(peerFromLinkId('custom')).toBe('unknown');
  });
});

describe('check: RDMA devices', () => {
  it('reads devices, ports, states and link layers from a sysfs tree', async () => {
    const { mkdirSync, writeFileSync, mkdtempSync, rmSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const { listRdmaDevices } = await import('../src/check.js');
    const root = mkdtempSync(join(tmpdir(), 'rdmaq-agent-sysfs-'));
    try {
      const port = join(root, 'mlx5_0', 'ports', '1');
      mkdirSync(port, { recursive: true });
      writeFileSync(join(root, 'mlx5_0', 'node_guid'), 'b859:9f03:00d4:1234\n');
      writeFileSync(join(port, 'state'), '4: ACTIVE\n');
      writeFileSync(join(port, 'phys_state'), '5: LinkUp\n');
      writeFileSync(join(port, 'link_layer'), 'Ethernet\n');
      writeFileSync(join(port, 'rate'), '100 Gb/sec (4X EDR)\n');
      expect(listRdmaDevices(root)).toEqual([
        {
          name: 'mlx5_0',
          nodeGuid: 'b859:9f03:00d4:1234',
          ports: [
            {
              port: '1',
              state: '4: ACTIVE',
              physState: '5: LinkUp',
              linkLayer: 'Ethernet',
              rate: '100 Gb/sec (4X EDR)',
            },
          ],
        },
      ]);
      expect(listRdmaDevices(join(root, 'absent'))).toEqual([]);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
