/**
 * What the hub keeps per node and per link end (the live model's entities), and the options of the model.
 * Everything here is mutated in place by the ingest path (Fleet.applySample) and read by the views.
 */
import type {
  AgentEvent,
  Freshness,
  LinkCounters,
  LinkSample,
  LinkState,
  NodeSummary,
  ProviderClass,
  Sample,
} from '@rdmaq/shared';
import type { HistAcc } from '../hist.js';
import type { Logger } from '../log.js';
import type { Store } from '../store/store.js';
import type { LatencyWindow } from '../window.js';
import type { Ring } from './ring.js';

/** One link end's figures summed over one minute, written to `rollup_1m` once the minute is over. */
export interface MinuteAcc {
  seconds: number;
  upS: number;
  records: number;
  bytes: number;
  completions: number;
  backpressure: number;
  errors: number;
  occSum: number;
  occMax: number;
  samples: number;
  hist: HistAcc;
}

/** One host's figures summed over one minute (`host_1m`). */
export interface HostMinuteAcc {
  samples: number;
  cpu: number;
  rss: number;
  lag: number;
}

export const newMinuteAcc = (): MinuteAcc => ({
  seconds: 0,
  upS: 0,
  records: 0,
  bytes: 0,
  completions: 0,
  backpressure: 0,
  errors: 0,
  occSum: 0,
  occMax: 0,
  samples: 0,
  hist: new Map(),
});

export interface LinkEnd {
  key: string;
  node: string;
  id: string;
  peer: string;
  direction: 'tx' | 'rx';
  transport: LinkSample['transport'];
  provider: string;
  /** rdma / tcp / shm / other, from provider and transport (the `provider_class` alert label). */
  providerClass: ProviderClass;
  state: LinkState;
  reason: string | undefined;
  ts: number;
  counters: LinkCounters;
  /** Cumulative totals of the previous sample (this agent run), for rates. */
  prev:
    | {
        ts: number;
        records: number;
        bytes: number;
        completions: number;
        backpressure: number;
        errors: number;
      }
    | undefined;
  recordsPerS: number;
  bytesPerS: number;
  completionsPerS: number;
  backpressurePerS: number;
  errorsPerS: number;
  occupancyBytes: number;
  capacityBytes: number;
  p50: number;
  p99: number;
  p999: number;
  rttP50: number;
  /** The host at fault while this end is not up (see `refreshFreshness`); undefined while up. */
  blame: string | undefined;
  /**
   * The node at the other end, when the hub can tell: `peer` itself when it is a node id, else the node
   * that announced `peer`'s address in its hello (applications connect to IPs), else — for an application's
   * receive end, whose peer rdma-core cannot name — the node reporting the matching send end.
   */
  peerNode: string | undefined;
  /** The application that owns this end (origin 'app'), undefined for the agent's own links. */
  app: string | undefined;
  ring: Ring;
  minutes: Map<number, MinuteAcc>;
  /** Queue-latency histograms of the last `history.latencyWindowS`; created at the first record. */
  qwin: LatencyWindow | undefined;
}

export interface NodeEntry {
  id: string;
  hostname: string;
  version: string;
  providers: string[];
  /** Labels from the agent's last hello (not persisted: known again at its next hello). */
  labels: Record<string, string> | undefined;
  /** Non-loopback addresses from the hello (link peers given as addresses resolve to this node). */
  addresses: string[];
  connected: boolean;
  runId: string;
  /** Agent token that owns the run's replay position (null: a position stored before tokens owned runs). */
  runToken: string | null;
  intervalMs: number;
  lastSeq: number;
  /** Hub clock (ms) of the last sample or connection change. */
  lastSeen: number;
  /**
   * Hub clock (ms) of the last sample, or of the hello (a fresh connection gets the same grace as a
   * sample). Freshness is judged on it, not on `connected`: a cut-off host's TCP connection can look
   * open for minutes.
   */
  lastDataAt: number;
  /** null until the hub saw a sample from this node (since it started). */
  lastSampleAt: number | null;
  freshness: Freshness;
  /** Health as last computed by `refreshFreshness` (it needs every node's data, not only this one's). */
  health: NodeSummary['health'];
  linksDownByPeer: number;
  lastSampleTs: number | null;
  host: Sample['host'] | undefined;
  links: Map<string, LinkEnd>;
  ring: Ring;
  minutes: Map<number, HostMinuteAcc>;
  events: AgentEvent[];
  duplicatesDropped: number;
  runDirty: boolean;
}

export interface FleetOptions {
  store: Store;
  log: Logger;
  memoryS: number;
  /** Seconds of queue-latency histograms kept per link end (windowed alert rules, GET /api/latency). */
  latencyWindowS: number;
  minuteRetentionDays: number;
  hourRetentionDays: number;
  now: () => number;
  /** A node is stale after this many of its sample periods without a sample (default 3). */
  staleAfterSamples?: number;
  /** …and offline after this many seconds without one, connected or not (default 10). */
  offlineAfterS?: number;
}
