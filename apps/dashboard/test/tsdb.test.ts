/**
 * Remote write to, and history from, a real VictoriaMetrics (Debian's victoria-metrics, started here on
 * loopback). Skipped, with the reason printed, where the binary is missing.
 */
import { Writable } from 'node:stream';
import { LinkMetric } from '@rdmaq/shared';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../../../tooling/test-support/wait.js';
import { VictoriaMetrics, vmMissing } from '../src/bench/victoria-metrics.js';
import { LATENCY_BOUNDS_S, SERIES_PER_LINK } from '../src/server/tsdb/remote-write.js';
import { api, type LinkSpec, sample, startHub, TestAgent, type TestHub } from './helpers.js';

if (vmMissing) console.warn(`skipping the TSDB tests: ${vmMissing}`);

/**
 * The `le` bucket (lower, upper], in ns, that holds a value the hub reports as `ns` (a native bucket's
 * midpoint: its lower edge, counted under the first `le` at or above it, is up to 1/128 below).
 */
function leBucket(ns: number): [number, number] {
  ns *= 1 - 1 / 128;
  const bounds = LATENCY_BOUNDS_S.map((s) => s * 1e9);
  const hi = bounds.findIndex((b) => b >= ns);
  return [hi <= 0 ? 0 : bounds[hi - 1]!, hi < 0 ? Number.POSITIVE_INFINITY : bounds[hi]!];
}

describe.skipIf(!!vmMissing)('TSDB: remote write to and history from VictoriaMetrics', () => {
  let vm: VictoriaMetrics;
  const hubs: TestHub[] = [];
  beforeAll(async () => {
    vm = await VictoriaMetrics.start();
  }, 30_000);
  afterAll(async () => {
    for (const h of hubs) await h.close();
    await vm?.close();
  });

  const tsdb = (over: Record<string, number> = {}) => ({
    remoteWriteUrl: `${vm.url}/api/v1/write`,
    queryUrl: vm.url,
    batchDelayMs: 10,
    retryBaseMs: 20,
    retryMaxMs: 200,
    timeoutMs: 2000,
    ...over,
  });

  /** Waits until the TSDB answers `q` with `want` (its freshly written rows become visible within ~1 s). */
  async function vmEquals(q: string, want: number, timeoutMs = 15_000): Promise<void> {
    let got = Number.NaN;
    const answers = async () => {
      got = await vm.scalar(q);
      return got === want;
    };
    // On timeout, the assertion below shows what the TSDB said last.
    await waitFor(`the TSDB to answer ${q} with ${want}`, answers, { timeoutMs, everyMs: 100 }).catch(
      () => {},
    );
    expect(got, q).toBe(want);
  }

  /** Sends samples seq from..to (1 s apart from `t0`), moving the hub clock with them; waits for the ack. */
  async function send(
    hub: TestHub,
    a: TestAgent,
    from: number,
    to: number,
    t0: number,
    links: (seq: number) => LinkSpec[],
  ) {
    for (let seq = from; seq <= to; seq++) {
      const ts = t0 + (seq - 1) * 1000;
      hub.clock.t = ts + 200;
      a.send(sample(seq, ts, links(seq)));
    }
    await a.acked(to);
  }

  it('every point the hub accepted is in the TSDB: counters, gauges, histogram buckets, node figures', async () => {
    const hub = await startHub({ tsdb: tsdb() });
    hubs.push(hub);
    const a = await TestAgent.connect(hub.wsUrl, hub.agentToken);
    await a.hello('vm-all');
    const N = 90;
    const t0 = Math.floor(Date.now() / 1000) * 1000 - N * 1000;
    const links = (i: number): LinkSpec[] => [
      {
        id: 'l1',
        peer: 'vm-peer',
        records: 10 * i,
        bytes: 1000 * i,
        latency: [
          [5000, 9],
          [2_000_000, 1],
        ],
      },
      { id: 'l2', peer: 'vm-peer', direction: 'tx', records: 3 * i, errors: i > 45 ? 2 : 0 },
    ];
    await send(hub, a, 1, N, t0, links);
    const w = hub.app.tsdb!.writer;
    expect(await w.drained(10_000)).toBe(true);
    const st = w.stats();
    // 4 node figures (no data-path lag from this agent) + 2 links × 69 series per sample, + the errors
    // series of l2 from sample 46 on.
    expect(SERIES_PER_LINK).toBe(69);
    expect(st.samplesQueued).toBe(N * (4 + 2 * 69) + (N - 45));
    expect(st.samplesSent).toBe(st.samplesQueued);
    expect(st.samplesDropped).toEqual({ queue_full: 0, rejected: 0, shutdown: 0 });
    expect(st.sendLatencyMs.p50).toBeGreaterThan(0);

    await vmEquals('sum(count_over_time({node="vm-all"}[1h]))', st.samplesSent);
    await vmEquals(`count_over_time(${LinkMetric.records}{node="vm-all",link="l1"}[1h])`, N);
    expect(await vm.scalar(`last_over_time(${LinkMetric.records}{node="vm-all",link="l1"}[1h])`)).toBe(
      10 * N,
    );
    expect(await vm.scalar(`last_over_time(${LinkMetric.bytes}{node="vm-all",link="l1"}[1h])`)).toBe(
      1000 * N,
    );
    expect(
      await vm.scalar(`last_over_time(${LinkMetric.errors}{node="vm-all",link="l2",kind="bad_header"}[1h])`),
    ).toBe(2);
    // Histograms are cumulative Prometheus buckets: 9 records a sample at 5 µs, 1 at 2 ms. `le` is written
    // as JavaScript (and prom-client in the agent) prints the bound: 0.000005, 1e-7.
    const q = `${LinkMetric.queueLatency}`;
    expect(await vm.scalar(`last_over_time(${q}_count{node="vm-all",link="l1"}[1h])`)).toBe(10 * N);
    expect(
      await vm.scalar(`last_over_time(${q}_bucket{node="vm-all",link="l1",le="${String(5e-6)}"}[1h])`),
    ).toBe(9 * N);
    expect(await vm.scalar(`last_over_time(${q}_bucket{node="vm-all",link="l1",le="0.001"}[1h])`)).toBe(
      9 * N,
    );
    expect(await vm.scalar(`last_over_time(${q}_bucket{node="vm-all",link="l1",le="0.0025"}[1h])`)).toBe(
      10 * N,
    );
    expect(await vm.scalar(`last_over_time(${q}_bucket{node="vm-all",link="l1",le="+Inf"}[1h])`)).toBe(
      10 * N,
    );
    // Labels as the agent's /metrics, plus node.
    const [series] = await vm.query(`last_over_time(${LinkMetric.up}{node="vm-all",link="l2"}[1h])`);
    const { __name__: _name, ...labels } = series?.metric ?? {};
    expect(labels).toEqual({
      node: 'vm-all',
      link: 'l2',
      peer: 'vm-peer',
      transport: 'fabric',
      provider: 'tcp;ofi_rxm',
    });
    expect(await vm.scalar('last_over_time(rdmaq_agent_resident_memory_bytes{node="vm-all"}[1h])')).toBe(
      50e6,
    );
    // /api/ingest reports the writer.
    const ing = await api<{ tsdb: { samplesSent: number; queueLength: number } }>(hub, 'GET', '/api/ingest');
    expect(ing.body.tsdb.samplesSent).toBe(st.samplesSent);
    expect(ing.body.tsdb.queueLength).toBe(0);
    a.close();
  }, 60_000);

  it('history beyond memory comes from PromQL in the SQLite shape; percentiles within the le bucket', async () => {
    const hub = await startHub({ tsdb: tsdb(), history: { memoryS: 60 } });
    hubs.push(hub);
    const a = await TestAgent.connect(hub.wsUrl, hub.agentToken);
    await a.hello('vm-hist');
    const N = 300;
    const t0 = Math.floor(Date.now() / 60_000) * 60_000 - 6 * 60_000;
    await send(hub, a, 1, N, t0, (i) => [
      // 98 records at 5 µs and 2 at 200 µs a second: p50 5 µs, p99 200 µs.
      {
        id: 'l1',
        peer: 'p',
        records: 100 * i,
        bytes: 4096 * 100 * i,
        occupancy: 1000,
        latency: [
          [5000, 98],
          [200_000, 2],
        ],
      },
    ]);
    await hub.app.tsdb!.writer.drained(10_000);
    await vmEquals(`count_over_time(${LinkMetric.records}{node="vm-hist"}[1h])`, N);
    hub.app.fleet.flush(true);
    const key = 'vm-hist~l1';
    const from = t0;
    const to = t0 + 5 * 60_000;
    const sqlite = hub.app.fleet.linkHistory(key, from, to, 5);
    const res = await api<typeof sqlite & { source: string }>(
      hub,
      'GET',
      `/api/history?link=${encodeURIComponent(key)}&from=${from}&to=${to}&points=5`,
    );
    expect(res.status).toBe(200);
    const viaTsdb = res.body;
    expect(viaTsdb.source).toBe('tsdb');
    const { source: _s, ...shape } = viaTsdb;
    expect(Object.keys(shape).sort()).toEqual(Object.keys(sqlite).sort());
    expect(viaTsdb.stepMs).toBe(sqlite.stepMs);
    expect(sqlite.points.length).toBe(5);
    const byTs = new Map(viaTsdb.points.map((p) => [p.ts, p]));
    for (const p of sqlite.points) {
      const t = byTs.get(p.ts);
      expect(t, `TSDB point at ${p.ts}`).toBeDefined();
      expect(Object.keys(t!).sort()).toEqual(Object.keys(p).sort());
      expect(t!.recordsPerS!).toBeGreaterThan(p.recordsPerS! * 0.9);
      expect(t!.recordsPerS!).toBeLessThan(p.recordsPerS! * 1.1);
      expect(t!.upRatio).toBe(1);
      expect(t!.occupancyBytes).toBe(1000);
      for (const k of ['p50Ns', 'p99Ns'] as const) {
        const [lo, hi] = leBucket(p[k]!);
        expect(t![k]!, `${k} ${t![k]} vs SQLite ${p[k]}`).toBeGreaterThanOrEqual(lo);
        expect(t![k]!).toBeLessThanOrEqual(hi);
      }
    }
    // Node history too.
    const sqliteNode = hub.app.fleet.nodeHistory('vm-hist', from, to, 5);
    const node = await api<typeof sqliteNode & { source: string }>(
      hub,
      'GET',
      `/api/history?node=vm-hist&from=${from}&to=${to}&points=5`,
    );
    expect(node.status).toBe(200);
    expect(node.body.points.length).toBeGreaterThanOrEqual(sqliteNode.points.length);
    for (const p of sqliteNode.points) {
      const t = node.body.points.find((x) => x.ts === p.ts);
      expect(t).toBeDefined();
      expect(Object.keys(t!).sort()).toEqual(Object.keys(p).sort());
      expect(t!.cpuPercent).toBeCloseTo(p.cpuPercent ?? Number.NaN, 6);
      expect(t!.rssBytes).toBeCloseTo(p.rssBytes ?? Number.NaN, 0);
    }
    // Within memory: still the hub's own 1 s ring.
    const recent = await api<{ source?: string; resolutionS: number }>(
      hub,
      'GET',
      `/api/history?link=${encodeURIComponent(key)}&from=${hub.clock.t - 30_000}&to=${hub.clock.t}`,
    );
    expect(recent.body.source).toBeUndefined();
    a.close();
  }, 60_000);

  it('TSDB down under ingest: the hub keeps ingesting and serving, the queue holds the gap, delivered after', async () => {
    const hub = await startHub({ tsdb: tsdb({ batchSamples: 500 }) });
    hubs.push(hub);
    const a = await TestAgent.connect(hub.wsUrl, hub.agentToken);
    await a.hello('vm-outage');
    const t0 = Math.floor(Date.now() / 1000) * 1000 - 150_000;
    const links = (i: number): LinkSpec[] => [
      { id: 'l1', peer: 'p', records: 5 * i, latency: [[10_000, 5]] },
    ];
    await send(hub, a, 1, 30, t0, links);
    const w = hub.app.tsdb!.writer;
    expect(await w.drained(10_000)).toBe(true);

    await vm.stop();
    // 60 s of samples while it is away.
    await send(hub, a, 31, 90, t0, links);
    await waitFor('a failed send', () => w.stats().sendFailures > 0, 10_000);
    const away = w.stats();
    expect(away.queueLength).toBeGreaterThan(0);
    expect(away.samplesDropped.queue_full).toBe(0);
    expect(away.lastError).toBeTruthy();
    // Live views are served from the hub: the link shows the newest sample.
    const live = await api<{ counters: { records: number } }>(
      hub,
      'GET',
      `/api/links/${encodeURIComponent('vm-outage~l1')}`,
    );
    expect(live.status).toBe(200);
    expect(live.body.counters.records).toBe(5 * 90);

    await vm.resume();
    expect(await w.drained(20_000)).toBe(true);
    const st = w.stats();
    expect(st.samplesSent).toBe(st.samplesQueued);
    expect(st.samplesDropped).toEqual({ queue_full: 0, rejected: 0, shutdown: 0 });
    // No hole: all 90 seconds of every series.
    await vmEquals(`count_over_time(${LinkMetric.records}{node="vm-outage"}[1h])`, 90);
    await vmEquals('sum(count_over_time({node="vm-outage"}[1h]))', st.samplesSent);
    a.close();
  }, 90_000);

  it('a full queue drops new points, counted and logged by reason; what was queued is delivered', async () => {
    const lines: string[] = [];
    const logger = pino(
      { level: 'warn' },
      new Writable({
        write(chunk, _enc, cb) {
          lines.push(String(chunk));
          cb();
        },
      }),
    );
    const hub = await startHub({ tsdb: tsdb({ queueSamples: 1000, batchSamples: 100 }) }, { logger });
    hubs.push(hub);
    const a = await TestAgent.connect(hub.wsUrl, hub.agentToken);
    await a.hello('vm-full');
    const w = hub.app.tsdb!.writer;
    await vm.stop();
    const t0 = Math.floor(Date.now() / 1000) * 1000 - 60_000;
    // 20 samples × (4 + 69) points = 1,460 points for a 1,000-point queue.
    await send(hub, a, 1, 20, t0, () => [{ id: 'l1', peer: 'p', records: 1 }]);
    const st = w.stats();
    expect(st.samplesQueued).toBe(1000);
    expect(st.samplesDropped.queue_full).toBe(20 * 73 - 1000);
    expect(lines.some((l) => l.includes('"reason":"queue_full"') && l.includes('queue full'))).toBe(true);
    await vm.resume();
    expect(await w.drained(20_000)).toBe(true);
    expect(w.stats().samplesSent).toBe(1000);
    await vmEquals('sum(count_over_time({node="vm-full"}[1h]))', 1000);
    a.close();
  }, 60_000);
});
