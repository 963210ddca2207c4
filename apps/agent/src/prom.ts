/**
 * `/metrics`: the agent's samples in Prometheus text. The exporter is fed the same Sample objects the hub
 * gets, so a scrape and the hub never disagree, and a scrape never touches native memory (constant cost,
 * whatever the scrape rate). Histograms are rebuilt cumulatively from the sample deltas.
 *
 * Log-linear → Prometheus buckets: a native bucket [low, low+width) is counted under the first `le` ≥ its
 * lower edge. Native buckets are at most 1/128 of their value wide, so a value within 0.8 % above a bound
 * may be counted under that bound; values exactly on a bound (1 µs, 10 µs, …) are always placed right.
 */
import {
  BUCKET_COUNT,
  bucketLow,
  bucketValue,
  LINK_LABELS,
  type LinkLabel,
  LinkMetric,
  type Sample,
  type SparseBuckets,
} from '@rdmaq/shared';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/** `le` bounds in seconds: 1-2.5-5 steps from 100 ns (shm) to 10 s (a stalled peer). */
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

/** For each native bucket, the index in LATENCY_BOUNDS_S it is counted under (length = +Inf). */
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

/** The link labels, plus `app` on applications' links (absent on the agent's own). */
type Label = LinkLabel | 'app';
const LABELS: readonly Label[] = [...LINK_LABELS, 'app'];
type Labels = Partial<Record<Label, string>>;

interface CumHist {
  /** Count per le slot (last slot = above every bound), not cumulative across slots. */
  slots: Float64Array;
  count: number;
  sumS: number;
}

function newHist(): CumHist {
  return { slots: new Float64Array(LATENCY_BOUNDS_S.length + 1), count: 0, sumS: 0 };
}

function addDelta(h: CumHist, delta: SparseBuckets): void {
  for (const [i, n] of delta) {
    h.slots[NATIVE_TO_LE[i]!]! += n;
    h.count += n;
    // The sum is estimated from bucket midpoints (≤ 0.4 % off), the same estimate the hub uses.
    h.sumS += (bucketValue(i) * n) / 1e9;
  }
}

interface LinkEntry {
  labels: Labels;
  queue: CumHist;
  rtt: CumHist;
}

type HistValues = Awaited<ReturnType<Histogram<string>['get']>>;

/** A histogram whose buckets come from our own cumulative counts rather than from observe(). */
class SnapshotHistogram extends Histogram<Label> {
  constructor(
    private readonly metricName: string,
    private readonly metricHelp: string,
    private readonly pick: (e: LinkEntry) => CumHist,
    private readonly entries: () => Iterable<LinkEntry>,
  ) {
    super({
      name: metricName,
      help: metricHelp,
      labelNames: [...LABELS],
      buckets: [...LATENCY_BOUNDS_S],
      registers: [],
    });
  }

  override async get(): Promise<HistValues> {
    const name = this.metricName;
    const values: HistValues['values'] = [];
    for (const e of this.entries()) {
      const h = this.pick(e);
      let acc = 0;
      LATENCY_BOUNDS_S.forEach((le, j) => {
        acc += h.slots[j]!;
        values.push({ metricName: `${name}_bucket`, labels: { ...e.labels, le }, value: acc });
      });
      values.push({ metricName: `${name}_bucket`, labels: { ...e.labels, le: '+Inf' }, value: h.count });
      values.push({ metricName: `${name}_sum`, labels: e.labels, value: h.sumS });
      values.push({ metricName: `${name}_count`, labels: e.labels, value: h.count });
    }
    // prom-client's runtime type strings ('histogram') are declared as a numeric enum in its typings.
    const type = 'histogram' as unknown as HistValues['type'];
    return { name, help: this.metricHelp, type, values, aggregator: 'sum', collect: () => {} };
  }

  /** prom-client's registry prefers this method when present; same values. */
  async getForPromString(): Promise<HistValues> {
    return this.get();
  }
}

function labelsOfLink(l: Sample['links'][number]): Labels {
  const labels: Labels = { link: l.id, peer: l.peer, transport: l.transport, provider: l.provider };
  if (l.app !== undefined) labels.app = l.app;
  return labels;
}

export interface AgentMetricsOptions {
  nodeId: string;
  version: string;
  /** Default process/Node.js metrics (CPU seconds, RSS, event-loop lag, GC). */
  defaultMetrics?: boolean;
  /** The links run in a worker thread (`dataPath: worker`): export that thread's figures too. */
  dataPathThread?: boolean;
}

export interface AgentSideFigures {
  hubConnected: boolean;
  bufferedSamples: number;
  droppedSamples: number;
  /** CPU time spent taking samples. */
  samplingSeconds: number;
  /** Worker mode: event-loop lag of the data-path thread over the last sampling interval (p99, seconds). */
  dataPathLagSeconds?: number;
  /** Worker mode: data-path workers started again after a crash. */
  dataPathRestarts?: number;
}

export class AgentMetrics {
  readonly registry = new Registry();
  private readonly links = new Map<string, LinkEntry>();
  private last: Sample | undefined;
  private side: AgentSideFigures = {
    hubConnected: false,
    bufferedSamples: 0,
    droppedSamples: 0,
    samplingSeconds: 0,
  };

  constructor(opts: AgentMetricsOptions) {
    const r = this.registry;
    const entries = () => this.links.values();
    // A gone application link's last sample goes to the hub, not to /metrics: its series end at once.
    const linkRows = () => (this.last?.links ?? []).filter((l) => !l.gone);
    const labelsOf = (l: Sample['links'][number]): Labels => labelsOfLink(l);

    const counter = (name: string, help: string, pick: (l: Sample['links'][number]) => number) =>
      new Counter<Label>({
        name,
        help,
        labelNames: [...LABELS],
        registers: [r],
        collect() {
          this.reset();
          for (const l of linkRows()) this.inc(labelsOf(l), pick(l));
        },
      });
    const gauge = (name: string, help: string, pick: (l: Sample['links'][number]) => number) =>
      new Gauge<Label>({
        name,
        help,
        labelNames: [...LABELS],
        registers: [r],
        collect() {
          this.reset();
          for (const l of linkRows()) this.set(labelsOf(l), pick(l));
        },
      });

    counter(
      LinkMetric.records,
      'DATA records sent (tx link) or delivered (rx link).',
      (l) => l.counters.records,
    );
    counter(LinkMetric.bytes, 'Payload bytes of those records.', (l) => l.counters.bytes);
    counter(LinkMetric.completions, 'Transport completions observed.', (l) => l.counters.completions);
    counter(LinkMetric.creditUpdates, 'Ring head (credit) publications.', (l) => l.counters.creditUpdates);
    counter(
      LinkMetric.backpressure,
      'Sends refused because the ring was full.',
      (l) => l.counters.backpressure,
    );
    counter(LinkMetric.wraps, 'Wraps of the ring position to offset 0.', (l) => l.counters.wraps);
    counter(LinkMetric.resends, 'Records resent after a reconnect.', (l) => l.counters.resends);
    counter(LinkMetric.reconnects, 'Handshakes after the first one.', (l) => l.counters.reconnects);
    new Counter<Label | 'kind'>({
      name: LinkMetric.errors,
      help: 'Link errors by kind.',
      labelNames: [...LABELS, 'kind'],
      registers: [r],
      collect() {
        this.reset();
        for (const l of linkRows()) {
          for (const [kind, n] of Object.entries(l.counters.errors)) this.inc({ ...labelsOf(l), kind }, n);
        }
      },
    });
    gauge(LinkMetric.up, '1 while the link is up, else 0.', (l) => (l.state === 'up' ? 1 : 0));
    gauge(
      LinkMetric.stalled,
      '1 while the link is connected but records wait and none move (consumer stopped or path blocked).',
      (l) => (l.state === 'stalled' ? 1 : 0),
    );
    gauge(LinkMetric.occupancy, 'Bytes in the ring now (tail - head).', (l) => l.gauges.occupancyBytes);
    gauge(
      LinkMetric.peakOccupancy,
      'Highest ring occupancy during the last sampling interval.',
      (l) => l.gauges.peakOccupancyBytes,
    );
    gauge(LinkMetric.capacity, 'Ring capacity in bytes.', (l) => l.gauges.capacityBytes);
    r.registerMetric(
      new SnapshotHistogram(
        LinkMetric.queueLatency,
        'Queue latency, send timestamp to delivery, of records received on the link.',
        (e) => e.queue,
        entries,
      ),
    );
    r.registerMetric(
      new SnapshotHistogram(LinkMetric.probeRtt, 'Round-trip time of PROBE records.', (e) => e.rtt, entries),
    );

    const side = () => this.side;
    new Gauge({
      name: 'rdmaq_agent_info',
      help: 'Constant 1, labelled with the agent version and node id.',
      labelNames: ['version', 'node'],
      registers: [r],
    }).set({ version: opts.version, node: opts.nodeId }, 1);
    new Gauge({
      name: 'rdmaq_agent_hub_connected',
      help: '1 while the hub connection is live.',
      registers: [r],
      collect() {
        this.set(side().hubConnected ? 1 : 0);
      },
    });
    new Gauge({
      name: 'rdmaq_agent_buffered_samples',
      help: 'Samples held for the hub (not yet acknowledged).',
      registers: [r],
      collect() {
        this.set(side().bufferedSamples);
      },
    });
    new Counter({
      name: 'rdmaq_agent_dropped_samples_total',
      help: 'Samples evicted from the buffer before the hub had them.',
      registers: [r],
      collect() {
        this.reset();
        this.inc(side().droppedSamples);
      },
    });
    new Counter({
      name: 'rdmaq_agent_sampling_seconds_total',
      help: 'CPU time spent reading link statistics and building samples.',
      registers: [r],
      collect() {
        this.reset();
        this.inc(side().samplingSeconds);
      },
    });
    const lastHost = () => this.last?.host;
    new Gauge({
      name: 'rdmaq_agent_event_loop_lag_seconds',
      help: "Event-loop lag of the agent's main thread (sampling, hub, HTTP) over the last sampling interval: p99 of the timer delay beyond the 10 ms resolution.",
      registers: [r],
      collect() {
        this.set((lastHost()?.eventLoopLagMs ?? 0) / 1000);
      },
    });
    if (opts.dataPathThread) {
      new Gauge({
        name: 'rdmaq_agent_data_path_event_loop_lag_seconds',
        help: "Event-loop lag of the agent's data-path thread (the links' consumers and senders) over the last sampling interval: p99 of the timer delay beyond the 10 ms resolution.",
        registers: [r],
        collect() {
          this.set(side().dataPathLagSeconds ?? 0);
        },
      });
      new Counter({
        name: 'rdmaq_agent_data_path_restarts_total',
        help: 'Data-path worker threads started again after a crash.',
        registers: [r],
        collect() {
          this.reset();
          this.inc(side().dataPathRestarts ?? 0);
        },
      });
    }
    const lastSeq = () => this.last?.seq ?? 0;
    new Counter({
      name: 'rdmaq_agent_samples_total',
      help: 'Samples taken since the agent started.',
      registers: [r],
      collect() {
        this.reset();
        this.inc(lastSeq());
      },
    });
    if (opts.defaultMetrics !== false) {
      collectDefaultMetrics({ register: r });
      // These three are gauges named like counters; promtool (rightly) rejects them. The handle counts stay
      // visible through nodejs_active_handles.
      for (const name of [
        'nodejs_active_handles_total',
        'nodejs_active_requests_total',
        'nodejs_active_resources_total',
      ]) {
        r.removeSingleMetric(name);
      }
    }
  }

  /** Takes a new sample: counters and gauges are replaced, histogram deltas added. */
  ingest(sample: Sample): void {
    const seen = new Set<string>();
    for (const l of sample.links) {
      if (l.gone) continue;
      seen.add(l.id);
      let e = this.links.get(l.id);
      if (!e) {
        e = {
          labels: labelsOfLink(l),
          queue: newHist(),
          rtt: newHist(),
        };
        this.links.set(l.id, e);
      }
      addDelta(e.queue, l.latency.queue);
      addDelta(e.rtt, l.latency.rtt);
    }
    for (const id of this.links.keys()) if (!seen.has(id)) this.links.delete(id);
    this.last = sample;
  }

  setSide(side: AgentSideFigures): void {
    this.side = side;
  }

  async text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
