/**
 * Prometheus remote write of every sample the hub accepts, when a TSDB is configured.
 *
 * `onSample` turns an agent sample into points (one per series) and queues them in a bounded ring
 * (`PointQueue`): it never waits on the network and never allocates per point. One sender drains the ring
 * in batches of up to `batchSamples` points (protobuf + snappy), one request in flight at a time so each
 * series' samples arrive in order (Prometheus, Mimir and Thanos refuse out-of-order samples). A failed
 * request (network error, timeout, 5xx, 429) is retried with capped exponential backoff, the batch staying
 * at the head of the queue; meanwhile new points keep queueing, and once the ring is full they are dropped
 * and counted (`queue_full`). A 4xx other than 429 means the receiver will never take the batch: it is
 * dropped and counted (`rejected`). Every drop reason is logged (at most once per 10 s per reason).
 *
 * Series and labels follow the agent's `/metrics` (apps/agent/src/prom.ts): `rdmaq_link_…` with labels
 * link, peer, transport, provider (+ app on applications' links) and `node`, added by the hub; latency
 * histograms as cumulative `_bucket{le}`, `_sum`, `_count`. Node figures are `rdmaq_agent_…{node}`.
 */
import {
  Backoff,
  BUCKET_COUNT,
  bucketLow,
  bucketValue,
  LinkMetric,
  type Sample,
  type SparseBuckets,
} from '@rdmaq/shared';
import snappy from 'snappy';
import type { Logger } from '../log.js';
import type { TsdbHttp } from './http.js';
import { encodeSeries, encodeWriteRequest, pointPrefix } from './proto.js';
import { PointQueue } from './queue.js';

/**
 * `le` bounds in seconds, the same as the agent's /metrics: 1-2.5-5 steps from 100 ns to 10 s (25 bounds +
 * `+Inf`). The hub's own histograms are log-linear with 3,712 buckets (1/128 relative width); sending those
 * would be ~7,400 series per link end. These 26 keep a link end at 69 series (two histograms × 28 with
 * `_sum` and `_count`, 8 counters, 5 gauges) while covering shm (100s of ns) to a stalled peer (seconds). `histogram_quantile`
 * interpolates within a bucket, so a TSDB percentile is exact to the bucket holding it (at worst ×2.5);
 * the hub's own roll-ups (SQLite) stay exact to 1/128.
 */
export const LATENCY_BOUNDS_S: readonly number[] = (() => {
  const out: number[] = [];
  for (let exp = -7; exp <= 1; exp++) {
    for (const m of [1, 2.5, 5]) {
      const v = Number((m * 10 ** exp).toPrecision(3));
      if (v <= 10) out.push(v);
    }
  }
  return out;
})();
const LE_LABELS = [...LATENCY_BOUNDS_S.map((b) => String(b)), '+Inf'];

/** Native bucket → index of the first `le` ≥ its lower edge (LATENCY_BOUNDS_S.length = +Inf), as the agent. */
const NATIVE_TO_LE: Uint8Array = (() => {
  const map = new Uint8Array(BUCKET_COUNT);
  const boundsNs = LATENCY_BOUNDS_S.map((s) => Math.round(s * 1e9));
  let j = 0;
  for (let i = 0; i < BUCKET_COUNT; i++) {
    const low = bucketLow(i);
    while (j < boundsNs.length && boundsNs[j]! < low) j++;
    map[i] = j;
  }
  return map;
})();

const COUNTERS = [
  ['records', LinkMetric.records],
  ['bytes', LinkMetric.bytes],
  ['completions', LinkMetric.completions],
  ['creditUpdates', LinkMetric.creditUpdates],
  ['backpressure', LinkMetric.backpressure],
  ['wraps', LinkMetric.wraps],
  ['resends', LinkMetric.resends],
  ['reconnects', LinkMetric.reconnects],
] as const;
const GAUGES = [
  LinkMetric.up,
  LinkMetric.stalled,
  LinkMetric.occupancy,
  LinkMetric.peakOccupancy,
  LinkMetric.capacity,
] as const;
const NB = LE_LABELS.length; // buckets per histogram, +Inf included
const HIST_SERIES = NB + 2;
const G0 = COUNTERS.length;
const Q0 = G0 + GAUGES.length;
const R0 = Q0 + HIST_SERIES;
export const SERIES_PER_LINK = R0 + HIST_SERIES;

/** Node figures, named like the agent's own (`rdmaq_agent_…`). */
export const NodeMetric = {
  cpu: 'rdmaq_agent_cpu_ratio',
  rss: 'rdmaq_agent_resident_memory_bytes',
  lag: 'rdmaq_agent_event_loop_lag_seconds',
  dataPathLag: 'rdmaq_agent_data_path_event_loop_lag_seconds',
  uptime: 'rdmaq_agent_uptime_seconds',
} as const;

interface CumHist {
  slots: Float64Array;
  count: number;
  sumS: number;
}
const newHist = (): CumHist => ({ slots: new Float64Array(NB), count: 0, sumS: 0 });

/** Each native bucket's value (midpoint) in seconds. */
const VALUE_S: Float64Array = (() => {
  const v = new Float64Array(BUCKET_COUNT);
  for (let i = 0; i < BUCKET_COUNT; i++) v[i] = bucketValue(i) / 1e9;
  return v;
})();

function addDelta(h: CumHist, delta: SparseBuckets): void {
  for (const [i, n] of delta) {
    h.slots[NATIVE_TO_LE[i]!]! += n;
    h.count += n;
    // The sum is estimated from bucket midpoints (≤ 0.4 % off), as the agent's /metrics does.
    h.sumS += VALUE_S[i]! * n;
  }
}

interface LinkState {
  /** peer, transport, provider, app: a change gives the link new series. */
  peer: string;
  transport: string;
  provider: string;
  app: string | undefined;
  ids: Int32Array;
  errIds: Map<string, number>;
  labels: Array<[string, string]>;
  queue: CumHist;
  rtt: CumHist;
  seenAt: number;
}

export interface RemoteWriteOptions {
  url: string;
  http: TsdbHttp;
  log: Logger;
  batchSamples: number;
  queueSamples: number;
  /** Longest a point waits for a batch to fill before it is sent anyway. */
  batchDelayMs: number;
  retryBaseMs: number;
  retryMaxMs: number;
  /**
   * Write a node's figures at most once per this many ms (default 0: every sample). Counters and histogram
   * buckets are cumulative, so rates and percentiles over any window ≥ the interval lose nothing; only the
   * gauges' 1 s detail does (the hub keeps it in memory for history.memoryS). Divides the write volume.
   */
  writeIntervalMs?: number;
}

export type DropReason = 'queue_full' | 'rejected' | 'shutdown';

export interface RemoteWriteStats {
  url: string;
  queueLength: number;
  queueCapacity: number;
  series: number;
  samplesQueued: number;
  samplesSent: number;
  batchesSent: number;
  samplesDropped: Record<DropReason, number>;
  sendFailures: number;
  lastError: string | null;
  /** Send latency (request start → 2xx) of the last ≤ 256 batches, ms. */
  sendLatencyMs: { last: number | null; p50: number | null; p99: number | null };
}

export class RemoteWriter {
  private readonly q: PointQueue;
  private readonly series: Uint8Array[] = [];
  private readonly prefixes: Buffer[] = [];
  private readonly seriesIds = new Map<string, number>();
  /** Per node, per link id. */
  private readonly links = new Map<string, Map<string, LinkState>>();
  private readonly nodes = new Map<string, Int32Array>();
  /** Sample time of each node's last written sample (writeIntervalMs). */
  private readonly nodeWrittenAt = new Map<string, number>();
  private readonly latencies: number[] = [];
  private queued = 0;
  private sent = 0;
  private batches = 0;
  private failures = 0;
  private lastError: string | null = null;
  private readonly dropped: Record<DropReason, number> = { queue_full: 0, rejected: 0, shutdown: 0 };
  private readonly droppedLogged: Record<DropReason, { at: number; n: number }> = {
    queue_full: { at: 0, n: 0 },
    rejected: { at: 0, n: 0 },
    shutdown: { at: 0, n: 0 },
  };
  /** Ends the current wait early: `wake` only while waiting for points, `interrupt` always (close). */
  private wake: (() => void) | undefined;
  private interrupt: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closing = false;
  private stopped = false;
  private readonly loop: Promise<void>;

  constructor(private readonly o: RemoteWriteOptions) {
    this.q = new PointQueue(o.queueSamples);
    this.loop = this.run();
  }

  private seriesId(labels: ReadonlyArray<readonly [string, string]>): number {
    const key = labels.map(([k, v]) => `${k}\u0000${v}`).join('\u0001');
    let id = this.seriesIds.get(key);
    if (id === undefined) {
      id = this.series.length;
      const enc = encodeSeries(labels);
      this.series.push(enc);
      this.prefixes.push(pointPrefix(enc));
      this.seriesIds.set(key, id);
    }
    return id;
  }

  private linkState(nodeId: string, l: Sample['links'][number], now: number): LinkState {
    let byId = this.links.get(nodeId);
    if (!byId) {
      byId = new Map();
      this.links.set(nodeId, byId);
    }
    let st = byId.get(l.id);
    if (
      st &&
      st.peer === l.peer &&
      st.transport === l.transport &&
      st.provider === l.provider &&
      st.app === l.app
    ) {
      st.seenAt = now;
      return st;
    }
    const labels: Array<[string, string]> = [
      ['link', l.id],
      ['node', nodeId],
      ['peer', l.peer],
      ['provider', l.provider],
      ['transport', l.transport],
    ];
    if (l.app !== undefined) labels.push(['app', l.app]);
    const ids = new Int32Array(SERIES_PER_LINK);
    const with_ = (name: string, extra: Array<[string, string]> = []) =>
      this.seriesId([['__name__', name], ...labels, ...extra]);
    COUNTERS.forEach(([, name], i) => {
      ids[i] = with_(name);
    });
    GAUGES.forEach((name, i) => {
      ids[G0 + i] = with_(name);
    });
    const hist = (base: number, name: string) => {
      LE_LABELS.forEach((le, j) => {
        ids[base + j] = with_(`${name}_bucket`, [['le', le]]);
      });
      ids[base + NB] = with_(`${name}_sum`);
      ids[base + NB + 1] = with_(`${name}_count`);
    };
    hist(Q0, LinkMetric.queueLatency);
    hist(R0, LinkMetric.probeRtt);
    // A link whose labels changed starts new series, and its histograms count from zero (a counter reset).
    st = {
      peer: l.peer,
      transport: l.transport,
      provider: l.provider,
      app: l.app,
      ids,
      errIds: new Map(),
      labels,
      queue: newHist(),
      rtt: newHist(),
      seenAt: now,
    };
    byId.set(l.id, st);
    return st;
  }

  private put(id: number, value: number, ts: number): void {
    if (this.q.push(id, value, ts)) this.queued++;
    else this.drop('queue_full', 1);
  }

  /** Queues every figure of one accepted sample. Never blocks; O(series) with no allocation once warm. */
  onSample(nodeId: string, s: Sample): void {
    if (this.closing) return;
    const ts = s.ts;
    const every = this.o.writeIntervalMs ?? 0;
    if (every > 0) {
      const last = this.nodeWrittenAt.get(nodeId);
      if (last !== undefined && ts - last < every && ts >= last) {
        // Not written this time: the histograms still take the deltas (they are cumulative).
        for (const l of s.links) {
          const st = this.linkState(nodeId, l, ts);
          addDelta(st.queue, l.latency.queue);
          addDelta(st.rtt, l.latency.rtt);
        }
        return;
      }
      this.nodeWrittenAt.set(nodeId, ts);
    }
    const before = this.q.length;
    let nodeIds = this.nodes.get(nodeId);
    if (!nodeIds) {
      const n = (name: string) =>
        this.seriesId([
          ['__name__', name],
          ['node', nodeId],
        ]);
      nodeIds = Int32Array.from([
        n(NodeMetric.cpu),
        n(NodeMetric.rss),
        n(NodeMetric.lag),
        n(NodeMetric.dataPathLag),
        n(NodeMetric.uptime),
      ]);
      this.nodes.set(nodeId, nodeIds);
    }
    const h = s.host;
    this.put(nodeIds[0]!, h.cpuPercent / 100, ts);
    this.put(nodeIds[1]!, h.rssBytes, ts);
    this.put(nodeIds[2]!, h.eventLoopLagMs / 1000, ts);
    if (h.dataPathLagMs !== undefined) this.put(nodeIds[3]!, h.dataPathLagMs / 1000, ts);
    this.put(nodeIds[4]!, h.uptimeS, ts);
    for (const l of s.links) {
      const st = this.linkState(nodeId, l, ts);
      const ids = st.ids;
      const c = l.counters;
      for (let i = 0; i < COUNTERS.length; i++) this.put(ids[i]!, c[COUNTERS[i]![0]], ts);
      for (const kind in c.errors) {
        let id = st.errIds.get(kind);
        if (id === undefined) {
          id = this.seriesId([['__name__', LinkMetric.errors], ['kind', kind], ...st.labels]);
          st.errIds.set(kind, id);
        }
        this.put(id, c.errors[kind]!, ts);
      }
      const g = l.gauges;
      this.put(ids[G0]!, l.state === 'up' ? 1 : 0, ts);
      this.put(ids[G0 + 1]!, l.state === 'stalled' ? 1 : 0, ts);
      this.put(ids[G0 + 2]!, g.occupancyBytes, ts);
      this.put(ids[G0 + 3]!, g.peakOccupancyBytes, ts);
      this.put(ids[G0 + 4]!, g.capacityBytes, ts);
      this.putHist(st.queue, l.latency.queue, ids, Q0, ts);
      this.putHist(st.rtt, l.latency.rtt, ids, R0, ts);
    }
    if (this.q.length >= this.o.batchSamples || (before === 0 && this.q.length > 0)) this.kick();
  }

  private putHist(h: CumHist, delta: SparseBuckets, ids: Int32Array, base: number, ts: number): void {
    addDelta(h, delta);
    let acc = 0;
    for (let j = 0; j < NB; j++) {
      acc += h.slots[j]!;
      this.put(ids[base + j]!, acc, ts);
    }
    this.put(ids[base + NB]!, h.sumS, ts);
    this.put(ids[base + NB + 1]!, h.count, ts);
  }

  private drop(reason: DropReason, n: number): void {
    this.dropped[reason] += n;
    const d = this.droppedLogged[reason];
    d.n += n;
    const t = Date.now();
    if (t - d.at >= 10_000) {
      this.o.log.warn(
        { reason, samples: d.n, queueCapacity: this.q.capacity, lastError: this.lastError },
        reason === 'queue_full'
          ? 'TSDB remote write: queue full (the TSDB is down or slower than ingest), samples dropped; raise tsdb.queueSamples or fix the TSDB'
          : reason === 'rejected'
            ? 'TSDB remote write: the TSDB refused a batch (4xx), samples dropped'
            : 'TSDB remote write: samples still queued at shutdown were dropped',
      );
      d.at = t;
      d.n = 0;
    }
  }

  private kick(): void {
    const w = this.wake;
    if (w) {
      this.wake = undefined;
      w();
    }
  }

  /** A backoff wait (`kickable` false) is not cut short by new points, only by close(). */
  private sleep(ms: number, kickable = true): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(this.timer);
        this.wake = undefined;
        this.interrupt = undefined;
        resolve();
      };
      this.timer = setTimeout(done, ms);
      this.timer.unref();
      this.interrupt = done;
      if (kickable) this.wake = done;
    });
  }

  private async run(): Promise<void> {
    // Jitter (the last 40 % of each delay drawn at random) so several hubs do not retry in step.
    const backoff = new Backoff({ initialMs: this.o.retryBaseMs, maxMs: this.o.retryMaxMs, jitter: 0.4 });
    let body: Buffer | undefined;
    let n = 0;
    while (!this.stopped) {
      if (this.q.length === 0) {
        if (this.closing) break;
        await this.sleep(3_600_000);
        continue;
      }
      if (!body && this.q.length < this.o.batchSamples && !this.closing) {
        // Let a batch fill (bounded wait): fewer, larger requests.
        await this.sleep(this.o.batchDelayMs);
        if (this.stopped) break;
      }
      if (!body) {
        n = Math.min(this.q.length, this.o.batchSamples);
        const raw = encodeWriteRequest(
          this.series,
          this.prefixes,
          this.q.ids,
          this.q.values,
          this.q.times,
          this.q.start,
          n,
          this.q.capacity,
        );
        body = snappy.compressSync(raw);
      }
      const t0 = performance.now();
      let retry = false;
      try {
        const res = await this.o.http.request('POST', this.o.url, body, {
          'content-type': 'application/x-protobuf',
          'content-encoding': 'snappy',
          'x-prometheus-remote-write-version': '0.1.0',
        });
        if (res.status >= 200 && res.status < 300) {
          this.latencies.push(performance.now() - t0);
          if (this.latencies.length > 256) this.latencies.shift();
          this.sent += n;
          this.batches++;
          backoff.reset();
        } else if (res.status === 429 || res.status >= 500) {
          retry = true;
          this.lastError = `HTTP ${res.status}: ${res.body.toString('utf8', 0, 300).trim()}`;
        } else {
          this.lastError = `HTTP ${res.status}: ${res.body.toString('utf8', 0, 300).trim()}`;
          this.drop('rejected', n);
        }
      } catch (err) {
        retry = true;
        this.lastError = (err as Error).message;
      }
      if (!retry) {
        this.q.shift(n);
        body = undefined;
        continue;
      }
      this.failures++;
      if (this.stopped) break;
      const wait = backoff.next();
      const attempt = backoff.attempt;
      if (attempt === 1 || attempt % 10 === 0) {
        this.o.log.warn(
          { err: this.lastError, attempt, retryInMs: Math.round(wait), queued: this.q.length },
          'TSDB remote write failed; retrying with backoff (samples stay queued)',
        );
      }
      await this.sleep(wait, false);
    }
  }

  stats(): RemoteWriteStats {
    const lat = [...this.latencies].sort((a, b) => a - b);
    const pick = (q: number) =>
      lat.length ? Math.round(lat[Math.min(lat.length - 1, Math.floor(q * lat.length))]! * 10) / 10 : null;
    return {
      url: this.o.url,
      queueLength: this.q.length,
      queueCapacity: this.q.capacity,
      series: this.series.length,
      samplesQueued: this.queued,
      samplesSent: this.sent,
      batchesSent: this.batches,
      samplesDropped: { ...this.dropped },
      sendFailures: this.failures,
      lastError: this.lastError,
      sendLatencyMs: {
        last: this.latencies.length ? Math.round(this.latencies.at(-1)! * 10) / 10 : null,
        p50: pick(0.5),
        p99: pick(0.99),
      },
    };
  }

  /** Resolves once nothing is queued (tests, benchmark). */
  async drained(timeoutMs: number): Promise<boolean> {
    const end = Date.now() + timeoutMs;
    while (this.q.length > 0 && Date.now() < end) {
      this.kick();
      await new Promise((r) => setTimeout(r, 20));
    }
    return this.q.length === 0;
  }

  /** Stops taking samples, sends what is queued for at most `deadlineMs`, drops (counted) the rest. */
  async close(deadlineMs: number): Promise<void> {
    if (this.closing) return this.loop;
    this.closing = true;
    this.interrupt?.();
    const timeout = new Promise<void>((r) => setTimeout(r, deadlineMs).unref());
    await Promise.race([this.loop, timeout]);
    this.stopped = true;
    this.interrupt?.();
    if (this.q.length > 0) {
      this.droppedLogged.shutdown.at = 0;
      this.drop('shutdown', this.q.length);
      this.q.shift(this.q.length);
    }
  }
}
