/**
 * The fleet as the hub sees it: nodes, link ends, their latest figures, 1 s history in memory (typed-array
 * rings, 15 minutes) and 1-minute accumulators written to SQLite, rolled up to hours there.
 *
 * Hot path: `applySample` runs for every agent sample (thousands per second). It does no allocation beyond
 * the histogram maps and writes nothing to SQLite; `flush` batches finished minutes in one transaction.
 */
import {
  type AgentEvent,
  bucketValue,
  type Freshness,
  type Hello,
  type HistoryPoint,
  type HostPoint,
  type Kpi,
  type LinkCounters,
  type LinkSample,
  type LinkState,
  type LinkSummary,
  type LivePoint,
  linkKey,
  type NodeSummary,
  type ProviderClass,
  providerClass,
  type Sample,
  type SparseBuckets,
  sparseQuantile,
} from '@rdmaq/shared';
import type Database from 'better-sqlite3';
import {
  addSparse,
  decodeInto,
  encodeHist,
  ensureSorted,
  type HistAcc,
  mergeBlobs,
  quantileIndex,
  quantiles,
  toSorted,
} from './hist.js';
import type { Logger } from './log.js';
import type { Store } from './store/store.js';
import { LatencyWindow } from './window.js';

/** Field offsets of a link's 1 s point in its ring. */
const LF = {
  records: 0,
  bytes: 1,
  completions: 2,
  backpressure: 3,
  errors: 4,
  occ: 5,
  p50: 6,
  p99: 7,
  p999: 8,
} as const;
const LINK_FIELDS = 9;
/** Of the link fields, the first 6 are floats, p50/p99/p999 bucket indices. */
const LINK_FLOATS = 6;
const NO_BUCKET = 0xffff;
const FLAG = 0x8000_0000;
const SEC_MASK = 0x7fff_ffff;
const HOST_FIELDS = 3;
/** Replay positions kept per node (the newest runs). */
export const MAX_RUNS_PER_NODE = 32;
/** Hours rolled up per flush round at most (catch-up after a long stop continues at the next round). */
export const MAX_HOURS_PER_ROUND = 24;
/** One-hour delete slices per table per retention pass at most. */
export const MAX_RETENTION_SLICES = 200;

/**
 * Fixed-size ring of 1 s points: slot = second % size, `secs` tells which second a slot holds; its top bit
 * carries one flag (link up). Fields below `floatFields` are Float32; the rest are latency quantiles kept as
 * histogram bucket indices in a Uint16 (exact: a quantile IS a bucket's value), 0xffff meaning none. The
 * rings are most of the hub's memory (8,000 link ends × 900 s ≈ 240 MB), hence the packing.
 */
class Ring {
  readonly secs: Uint32Array;
  readonly vals: Float32Array;
  readonly quants: Uint16Array;
  constructor(
    readonly size: number,
    readonly floatFields: number,
    readonly quantFields = 0,
  ) {
    this.secs = new Uint32Array(size);
    this.vals = new Float32Array(size * floatFields);
    this.quants = new Uint16Array(size * quantFields);
  }
  put(sec: number, values: ArrayLike<number>, quants?: ArrayLike<number>, flag = false): void {
    const slot = sec % this.size;
    this.secs[slot] = flag ? (sec | FLAG) >>> 0 : sec;
    this.vals.set(values, slot * this.floatFields);
    if (quants) this.quants.set(quants, slot * this.quantFields);
  }
  /** Field `i` of a slot: a float, or (i ≥ floatFields) the value of the stored bucket, NaN when none. */
  get(slot: number, i: number): number {
    if (i < this.floatFields) return this.vals[slot * this.floatFields + i]!;
    const b = this.quants[slot * this.quantFields + i - this.floatFields]!;
    return b === NO_BUCKET ? Number.NaN : bucketValue(b);
  }
  /** Calls `fn(sec, slot, flag)` for each stored second in [fromSec, toSec], oldest first. */
  each(fromSec: number, toSec: number, fn: (sec: number, slot: number, flag: boolean) => void): void {
    const lo = Math.max(fromSec, toSec - this.size + 1);
    for (let s = lo; s <= toSec; s++) {
      const slot = s % this.size;
      const v = this.secs[slot]!;
      if ((v & SEC_MASK) === s) fn(s, slot, v >= FLAG);
    }
  }
}

interface MinuteAcc {
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

interface HostMinuteAcc {
  samples: number;
  cpu: number;
  rss: number;
  lag: number;
}

const newAcc = (): MinuteAcc => ({
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

const nullable = (v: number): number | null => (Number.isFinite(v) ? v : null);
/** Rates to 0.01/s: enough for any chart, and it keeps 8,000-link overview frames ~10 % smaller. */
const r2 = (v: number): number => (Number.isFinite(v) ? Math.round(v * 100) / 100 : 0);
const n2 = (v: number): number | null => (Number.isFinite(v) ? Math.round(v * 100) / 100 : null);
const errorsTotal = (c: LinkCounters) => {
  let t = 0;
  for (const k in c.errors) t += c.errors[k]!;
  return t;
};

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

/** The host part of a peer given as `host`, `host:port` or `[v6]:port`. */
function hostOf(peer: string): string {
  if (peer.startsWith('[')) {
    const end = peer.indexOf(']');
    return end > 0 ? peer.slice(1, end) : peer;
  }
  const colon = peer.indexOf(':');
  // One colon: host:port. Several: a bare IPv6 address.
  return colon > 0 && peer.indexOf(':', colon + 1) < 0 ? peer.slice(0, colon) : peer;
}

/** Fewest ms before a node counts as stale, whatever its sample period: one late sample is not news. */
const MIN_STALE_MS = 2500;

export class Fleet {
  readonly nodes = new Map<string, NodeEntry>();
  readonly links = new Map<string, LinkEnd>();
  /** Keys changed since the live hub last looked (it clears them). */
  readonly changedLinks = new Set<string>();
  readonly changedNodes = new Set<string>();
  readonly removedLinks = new Set<string>();
  samplesThisSecond = 0;
  samplesLastSecond = 0;
  private lastSecond = 0;
  private readonly dirtyHours = new Set<number>();
  private readonly db: Database.Database;
  private readonly stmts;
  private lastRetention = 0;

  constructor(private readonly opts: FleetOptions) {
    this.db = opts.store.db;
    // Bucket-wise histogram merge inside SQLite: scalar for upserts, aggregate for hour roll-ups.
    this.db.function('merge_hist', (a: unknown, b: unknown) =>
      mergeBlobs(a as Buffer | null, b as Buffer | null),
    );
    this.db.aggregate('hist_sum', {
      start: () => new Map<number, number>(),
      step: (acc: HistAcc, blob: unknown) => {
        decodeInto(acc, blob as Buffer | null);
        return acc;
      },
      result: (acc: HistAcc) => encodeHist(acc),
    });
    const cols =
      'seconds, up_s, records, bytes, completions, backpressure, errors, occ_sum, occ_max, samples, hist';
    this.stmts = {
      upsert1m: this.db.prepare(
        `INSERT INTO rollup_1m (link_key, ts, ${cols}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT(link_key, ts) DO UPDATE SET seconds = seconds + excluded.seconds, up_s = up_s + excluded.up_s,
           records = records + excluded.records, bytes = bytes + excluded.bytes,
           completions = completions + excluded.completions, backpressure = backpressure + excluded.backpressure,
           errors = errors + excluded.errors, occ_sum = occ_sum + excluded.occ_sum,
           occ_max = max(occ_max, excluded.occ_max), samples = samples + excluded.samples,
           hist = merge_hist(hist, excluded.hist)`,
      ),
      upsertHost1m: this.db.prepare(
        `INSERT INTO host_1m (node_id, ts, samples, cpu_sum, rss_sum, lag_sum) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT(node_id, ts) DO UPDATE SET samples = samples + excluded.samples,
           cpu_sum = cpu_sum + excluded.cpu_sum, rss_sum = rss_sum + excluded.rss_sum, lag_sum = lag_sum + excluded.lag_sum`,
      ),
      rollHour: this.db.prepare(
        `INSERT OR REPLACE INTO rollup_1h (link_key, ts, ${cols})
         SELECT link_key, @hour, sum(seconds), sum(up_s), sum(records), sum(bytes), sum(completions), sum(backpressure),
                sum(errors), sum(occ_sum), max(occ_max), sum(samples), hist_sum(hist)
         FROM rollup_1m WHERE ts >= @hour AND ts < @hour + 3600000 GROUP BY link_key`,
      ),
      rollHourRange: this.db.prepare(
        `INSERT OR REPLACE INTO rollup_1h (link_key, ts, ${cols})
         SELECT link_key, @hour, sum(seconds), sum(up_s), sum(records), sum(bytes), sum(completions), sum(backpressure),
                sum(errors), sum(occ_sum), max(occ_max), sum(samples), hist_sum(hist)
         FROM rollup_1m WHERE link_key >= @lo AND link_key <= @hi AND ts >= @hour AND ts < @hour + 3600000
         GROUP BY link_key`,
      ),
      rollHostHour: this.db.prepare(
        `INSERT OR REPLACE INTO host_1h (node_id, ts, samples, cpu_sum, rss_sum, lag_sum)
         SELECT node_id, @hour, sum(samples), sum(cpu_sum), sum(rss_sum), sum(lag_sum)
         FROM host_1m WHERE ts >= @hour AND ts < @hour + 3600000 GROUP BY node_id`,
      ),
      nextMinute: this.db.prepare('SELECT min(ts) AS ts FROM rollup_1m WHERE ts >= ?'),
      nextHostMinute: this.db.prepare('SELECT min(ts) AS ts FROM host_1m WHERE ts >= ?'),
      // A run's replay position belongs to the token that wrote it (key node, run, token): another token
      // naming the same run id starts over, and never moves the owner's position.
      upsertRun: this.db.prepare(
        `INSERT INTO agent_runs (node_id, run_id, token_id, last_seq, updated_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT(node_id, run_id, token_id) DO UPDATE SET last_seq = max(last_seq, excluded.last_seq),
           updated_at = excluded.updated_at`,
      ),
      getRun: this.db.prepare(
        'SELECT last_seq FROM agent_runs WHERE node_id = ? AND run_id = ? AND token_id = ?',
      ),
      pruneRuns: opts.store.destructive(
        `DELETE FROM agent_runs WHERE node_id = ? AND rowid NOT IN
           (SELECT rowid FROM agent_runs WHERE node_id = ? ORDER BY updated_at DESC LIMIT ?)`,
      ),
      upsertNode: this.db.prepare(
        `INSERT INTO nodes (id, hostname, version, providers, first_seen, last_seen) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT(id) DO UPDATE SET hostname = excluded.hostname, version = excluded.version,
           providers = excluded.providers, last_seen = excluded.last_seen`,
      ),
      allNodes: this.db.prepare('SELECT id, hostname, version, providers, last_seen FROM nodes'),
    };
    // Known nodes are listed (offline) after a restart until their agents reconnect.
    for (const r of this.stmts.allNodes.all() as Array<{
      id: string;
      hostname: string;
      version: string;
      providers: string;
      last_seen: number;
    }>) {
      const n = this.newNode(r.id, r.hostname, r.version, JSON.parse(r.providers) as string[], '', 1000);
      n.lastSeen = r.last_seen;
      this.nodes.set(r.id, n);
    }
  }

  private newNode(
    id: string,
    hostname: string,
    version: string,
    providers: string[],
    runId: string,
    intervalMs: number,
  ) {
    const n: NodeEntry = {
      id,
      hostname,
      version,
      providers,
      labels: undefined,
      addresses: [],
      connected: false,
      runId,
      runToken: null,
      intervalMs,
      lastSeq: 0,
      lastSeen: this.opts.now(),
      lastDataAt: this.opts.now(),
      lastSampleAt: null,
      freshness: 'offline',
      health: 'offline',
      linksDownByPeer: 0,
      lastSampleTs: null,
      host: undefined,
      links: new Map(),
      ring: new Ring(this.opts.memoryS, HOST_FIELDS),
      minutes: new Map(),
      events: [],
      duplicatesDropped: 0,
      runDirty: false,
    };
    return n;
  }

  /**
   * An agent said hello (with token `tokenId`): returns the highest seq already held for its (node, run).
   * The position is the token's own: a run id known from another token (it is no secret: agents log it,
   * viewers see it) starts from 0, so nobody can make a real agent's samples count as already stored.
   */
  hello(h: Hello, tokenId: string): number {
    const now = this.opts.now();
    let n = this.nodes.get(h.nodeId);
    if (!n) {
      n = this.newNode(h.nodeId, h.hostname, h.version, h.providers, h.runId, h.intervalMs);
      this.nodes.set(h.nodeId, n);
    }
    if (n.runId !== h.runId || n.runToken !== tokenId) {
      // Keep the position being left (its owner may come back).
      if (n.runDirty && n.runId && n.runToken !== null) {
        this.stmts.upsertRun.run(n.id, n.runId, n.runToken, n.lastSeq, now);
        n.runDirty = false;
      }
      // A node keeps the replay positions of its newest MAX_RUNS_PER_NODE runs: an agent inventing run ids
      // cannot grow the table.
      this.stmts.pruneRuns.run(h.nodeId, h.nodeId, MAX_RUNS_PER_NODE);
      // The token's own position, else one stored before tokens owned runs (token '').
      const row = (this.stmts.getRun.get(h.nodeId, h.runId, tokenId) ??
        this.stmts.getRun.get(h.nodeId, h.runId, '')) as { last_seq: number } | undefined;
      if (n.runId !== h.runId) {
        // A new agent process: its cumulative counters restart, so rates start over.
        for (const l of n.links.values()) l.prev = undefined;
      }
      n.runId = h.runId;
      n.runToken = tokenId;
      n.lastSeq = row?.last_seq ?? 0;
    }
    n.hostname = h.hostname;
    n.version = h.version;
    n.providers = h.providers;
    n.labels = h.labels && Object.keys(h.labels).length > 0 ? h.labels : undefined;
    n.addresses = h.addresses ?? [];
    n.intervalMs = h.intervalMs;
    n.connected = true;
    n.lastSeen = now;
    n.lastDataAt = now;
    this.stmts.upsertNode.run(n.id, n.hostname, n.version, JSON.stringify(n.providers), now, now);
    this.changedNodes.add(n.id);
    return n.lastSeq;
  }

  disconnected(nodeId: string): void {
    const n = this.nodes.get(nodeId);
    if (!n) return;
    n.connected = false;
    n.lastSeen = this.opts.now();
    this.changedNodes.add(nodeId);
  }

  event(nodeId: string, e: AgentEvent): void {
    const n = this.nodes.get(nodeId);
    if (!n) return;
    n.events.push(e);
    if (n.events.length > 50) n.events.shift();
  }

  /**
   * A sample refused for its timestamp: nothing of it is stored, but its seq counts as done (acked, so the
   * agent does not replay it again). False when it was a replay anyway.
   */
  skipSample(nodeId: string, seq: number): boolean {
    const n = this.nodes.get(nodeId);
    if (!n) return false;
    if (seq <= n.lastSeq) {
      n.duplicatesDropped++;
      return false;
    }
    n.lastSeq = seq;
    n.runDirty = true;
    n.lastSeen = this.opts.now();
    return true;
  }

  /**
   * Applies one validated sample. Returns false (and stores nothing) when its seq was already stored: a
   * replay after reconnect.
   */
  applySample(nodeId: string, s: Sample): boolean {
    const n = this.nodes.get(nodeId);
    if (!n) return false;
    if (s.seq <= n.lastSeq) {
      n.duplicatesDropped++;
      return false;
    }
    const now = this.opts.now();
    n.lastSeq = s.seq;
    n.runDirty = true;
    n.lastSeen = now;
    n.lastDataAt = now;
    n.lastSampleAt = now;
    n.lastSampleTs = Math.max(n.lastSampleTs ?? 0, s.ts);
    n.host = s.host;
    const sec = Math.floor(s.ts / 1000);
    const inMemory = sec > Math.floor(now / 1000) - this.opts.memoryS && sec <= Math.floor(now / 1000) + 60;
    if (inMemory) n.ring.put(sec, [s.host.cpuPercent, s.host.rssBytes, s.host.eventLoopLagMs]);
    const minute = Math.floor(s.ts / 60_000) * 60_000;
    let hm = n.minutes.get(minute);
    if (!hm) {
      hm = { samples: 0, cpu: 0, rss: 0, lag: 0 };
      n.minutes.set(minute, hm);
    }
    hm.samples++;
    hm.cpu += s.host.cpuPercent;
    hm.rss += s.host.rssBytes;
    hm.lag += s.host.eventLoopLagMs;

    const seen = new Set<string>();
    const point = new Float32Array(LINK_FLOATS);
    const qpoint = new Uint16Array(3);
    for (const ls of s.links) {
      seen.add(ls.id);
      const key = linkKey(nodeId, ls.id);
      let l = n.links.get(ls.id);
      if (!l) {
        l = this.newLink(key, nodeId, ls);
        n.links.set(ls.id, l);
        this.links.set(key, l);
        this.removedLinks.delete(key);
      }
      this.applyLink(l, ls, s.ts, n.intervalMs, minute, inMemory ? sec : -1, point, qpoint);
      this.changedLinks.add(key);
    }
    // Links the agent no longer reports were closed on it.
    if (n.links.size !== seen.size) {
      for (const [id, l] of n.links) {
        if (!seen.has(id)) {
          n.links.delete(id);
          this.links.delete(l.key);
          this.changedLinks.delete(l.key);
          this.removedLinks.add(l.key);
        }
      }
    }
    this.changedNodes.add(nodeId);
    const nowSec = Math.floor(now / 1000);
    if (nowSec !== this.lastSecond) {
      this.samplesLastSecond = nowSec === this.lastSecond + 1 ? this.samplesThisSecond : 0;
      this.samplesThisSecond = 0;
      this.lastSecond = nowSec;
    }
    this.samplesThisSecond++;
    return true;
  }

  private newLink(key: string, node: string, ls: LinkSample): LinkEnd {
    return {
      key,
      node,
      id: ls.id,
      peer: ls.peer,
      direction: ls.direction,
      transport: ls.transport,
      provider: ls.provider,
      providerClass: providerClass(ls.provider, ls.transport),
      state: ls.state,
      reason: ls.reason,
      peerNode: undefined,
      app: ls.origin === 'app' ? ls.app : undefined,
      ts: 0,
      counters: ls.counters,
      prev: undefined,
      recordsPerS: Number.NaN,
      bytesPerS: Number.NaN,
      completionsPerS: Number.NaN,
      backpressurePerS: Number.NaN,
      errorsPerS: Number.NaN,
      occupancyBytes: 0,
      capacityBytes: 0,
      p50: Number.NaN,
      p99: Number.NaN,
      p999: Number.NaN,
      rttP50: Number.NaN,
      blame: undefined,
      ring: new Ring(this.opts.memoryS, LINK_FLOATS, LINK_FIELDS - LINK_FLOATS),
      minutes: new Map(),
      qwin: undefined,
    };
  }

  private applyLink(
    l: LinkEnd,
    ls: LinkSample,
    ts: number,
    intervalMs: number,
    minute: number,
    sec: number,
    point: Float32Array,
    qpoint: Uint16Array,
  ): void {
    const c = ls.counters;
    const errors = errorsTotal(c);
    let dRecords = Number.NaN;
    let dBytes = Number.NaN;
    let dCompl = Number.NaN;
    let dBp = Number.NaN;
    let dErr = Number.NaN;
    let dt = intervalMs / 1000;
    const p = l.prev;
    if (p) {
      // A counter going backwards means the link object was recreated on the agent: count from zero.
      const reset = c.records < p.records || c.bytes < p.bytes;
      dRecords = reset ? c.records : c.records - p.records;
      dBytes = reset ? c.bytes : c.bytes - p.bytes;
      dCompl = Math.max(0, reset ? c.completions : c.completions - p.completions);
      dBp = Math.max(0, reset ? c.backpressure : c.backpressure - p.backpressure);
      dErr = Math.max(0, reset ? errors : errors - p.errors);
      if (ts > p.ts) dt = (ts - p.ts) / 1000;
    }
    l.prev = {
      ts,
      records: c.records,
      bytes: c.bytes,
      completions: c.completions,
      backpressure: c.backpressure,
      errors,
    };
    l.counters = c;
    l.peer = ls.peer;
    l.direction = ls.direction;
    if (ls.provider !== l.provider || ls.transport !== l.transport) {
      l.providerClass = providerClass(ls.provider, ls.transport);
    }
    l.transport = ls.transport;
    l.provider = ls.provider;
    l.state = ls.state;
    l.reason = ls.reason;
    l.ts = Math.max(l.ts, ts);
    l.recordsPerS = dRecords / dt;
    l.bytesPerS = dBytes / dt;
    l.completionsPerS = dCompl / dt;
    l.backpressurePerS = dBp / dt;
    l.errorsPerS = dErr / dt;
    l.occupancyBytes = ls.gauges.occupancyBytes;
    l.capacityBytes = ls.gauges.capacityBytes;
    const q = ensureSorted(ls.latency.queue);
    const i50 = quantileIndex(q, 0.5);
    const i99 = quantileIndex(q, 0.99);
    const i999 = quantileIndex(q, 0.999);
    l.p50 = i50 < 0 ? Number.NaN : bucketValue(i50);
    l.p99 = i99 < 0 ? Number.NaN : bucketValue(i99);
    l.p999 = i999 < 0 ? Number.NaN : bucketValue(i999);
    // Like the 1 s ring, only samples timed within memory (and at most 60 s ahead of the hub's clock).
    if (q.length && sec >= 0) {
      l.qwin ??= new LatencyWindow(this.opts.latencyWindowS);
      l.qwin.add(ts, q);
    }
    l.rttP50 = ls.latency.rtt.length ? sparseQuantile(ensureSorted(ls.latency.rtt), 0.5) : Number.NaN;
    const up = ls.state === 'up' ? 1 : 0;
    if (sec >= 0) {
      point[LF.records] = l.recordsPerS;
      point[LF.bytes] = l.bytesPerS;
      point[LF.completions] = l.completionsPerS;
      point[LF.backpressure] = l.backpressurePerS;
      point[LF.errors] = l.errorsPerS;
      point[LF.occ] = l.occupancyBytes;
      qpoint[0] = i50 < 0 ? NO_BUCKET : i50;
      qpoint[1] = i99 < 0 ? NO_BUCKET : i99;
      qpoint[2] = i999 < 0 ? NO_BUCKET : i999;
      l.ring.put(sec, point, qpoint, up === 1);
    }
    let acc = l.minutes.get(minute);
    if (!acc) {
      acc = newAcc();
      l.minutes.set(minute, acc);
    }
    if (p) {
      acc.seconds += dt;
      acc.upS += up * dt;
      acc.records += dRecords;
      acc.bytes += dBytes;
      acc.completions += dCompl;
      acc.backpressure += dBp;
      acc.errors += dErr;
    }
    acc.samples++;
    acc.occSum += ls.gauges.occupancyBytes;
    if (ls.gauges.occupancyBytes > acc.occMax) acc.occMax = ls.gauges.occupancyBytes;
    addSparse(acc.hist, q);
  }

  /**
   * Writes minutes that ended more than `graceMs` ago to SQLite (one transaction), persists replay
   * positions, rolls finished hours up and applies retention. `force` flushes every open minute (shutdown).
   */
  flush(
    force = false,
    graceMs = 5000,
    opts: { rollHours?: boolean } = {},
  ): { minutes: number; hours: number } {
    const now = this.opts.now();
    const cutoff = force ? Number.POSITIVE_INFINITY : now - 60_000 - graceMs;
    let minutes = 0;
    const hourOf = (t: number) => Math.floor(t / 3_600_000) * 3_600_000;
    const rolledUntil = Number(this.opts.store.getSetting('rolled_hour_until') ?? 0);
    this.db.transaction(() => {
      for (const n of this.nodes.values()) {
        for (const [m, acc] of n.minutes) {
          if (m > cutoff) continue;
          this.stmts.upsertHost1m.run(n.id, m, acc.samples, acc.cpu, acc.rss, acc.lag);
          n.minutes.delete(m);
          if (m < rolledUntil) this.dirtyHours.add(hourOf(m));
        }
        for (const l of n.links.values()) {
          for (const [m, a] of l.minutes) {
            if (m > cutoff) continue;
            this.stmts.upsert1m.run(
              l.key,
              m,
              a.seconds,
              a.upS,
              a.records,
              a.bytes,
              a.completions,
              a.backpressure,
              a.errors,
              a.occSum,
              a.occMax,
              a.samples,
              encodeHist(a.hist),
            );
            l.minutes.delete(m);
            minutes++;
            if (m < rolledUntil) this.dirtyHours.add(hourOf(m));
          }
        }
        if (n.runDirty) {
          this.stmts.upsertRun.run(n.id, n.runId, n.runToken ?? '', n.lastSeq, now);
          n.runDirty = false;
        }
      }
    })();
    this.forgetAway(now);
    const hours = opts.rollHours === false ? 0 : this.rollHoursNow(force);
    if (now - this.lastRetention > 600_000) {
      this.lastRetention = now;
      this.retention(now);
    }
    return { minutes, hours };
  }

  /**
   * Link ends of agents away for longer than the memory window are dropped from memory (their 1 s history
   * has aged out; roll-ups stay in SQLite), so agent churn does not grow the hub. The node stays listed.
   */
  private forgetAway(now: number): void {
    for (const n of this.nodes.values()) {
      if (n.connected || n.links.size === 0 || now - n.lastSeen < this.opts.memoryS * 1000) continue;
      for (const l of n.links.values()) {
        if (l.minutes.size) continue; // not flushed yet
        n.links.delete(l.id);
        this.links.delete(l.key);
        this.removedLinks.add(l.key);
      }
      this.changedNodes.add(n.id);
    }
  }

  /** Earliest minute row (links or hosts) at or after `from`, null when none. */
  private nextMinute(from: number): number | null {
    const a = (this.stmts.nextMinute.get(from) as { ts: number | null }).ts;
    const b = (this.stmts.nextHostMinute.get(from) as { ts: number | null }).ts;
    if (a === null) return b;
    if (b === null) return a;
    return Math.min(a, b);
  }

  /**
   * Hours to roll: finished ones since the last roll, hours that got late minutes, and (force) the current.
   * Bounded: at most MAX_HOURS_PER_ROUND per call (the rest next round), never before the minute retention
   * (those minutes are deleted anyway), and hours without minutes are jumped over, not walked one by one —
   * a stray old row once made the hub walk every hour since 1970 on the event loop.
   */
  private hoursDue(force: boolean): { todo: number[]; until: number } {
    const H = 3_600_000;
    const now = this.opts.now();
    let until = Number(this.opts.store.getSetting('rolled_hour_until') ?? 0);
    const todo = new Set(this.dirtyHours);
    this.dirtyHours.clear();
    const oldest = Math.floor((now - this.opts.minuteRetentionDays * 86_400_000) / H) * H;
    if (until < oldest) until = oldest;
    // An hour is final once its last minute was flushed (minute end + grace), or at shutdown.
    const limit = force ? now : now - 60_000 - 10_000;
    let rounds = 0;
    while (until + H <= limit && todo.size < MAX_HOURS_PER_ROUND && rounds++ < 2 * MAX_HOURS_PER_ROUND) {
      const next = this.nextMinute(until);
      if (next === null) {
        // Nothing stored from `until` on: every finished hour up to `limit` is done.
        until = Math.max(until, Math.floor(limit / H) * H);
        break;
      }
      const hour = Math.floor(next / H) * H;
      if (hour > until) {
        until = Math.min(hour, Math.floor(limit / H) * H);
        continue;
      }
      todo.add(until);
      until += H;
    }
    if (force) todo.add(Math.floor(now / H) * H);
    return { todo: [...todo].sort((a, b) => a - b), until };
  }

  /** Rolls due hours from rollup_1m into rollup_1h in one go (tests, shutdown). */
  private rollHoursNow(force: boolean): number {
    const { todo, until } = this.hoursDue(force);
    if (!todo.length) return 0;
    this.db.transaction(() => {
      for (const hour of todo) {
        this.stmts.rollHour.run({ hour });
        this.stmts.rollHostHour.run({ hour });
      }
      // Under `force`, the current hour is partial: it is rolled again when it completes.
      this.opts.store.setSetting('rolled_hour_until', String(until));
    })();
    return todo.length;
  }

  private rolling = false;

  /**
   * The timer's flush: minutes at once (a few thousand rows), then each due hour in slices of `sliceKeys`
   * link keys per transaction, yielding to the event loop between slices — an hour of 8,000 links is
   * 480,000 minute rows whose histograms are merged, too long to hold the loop in one piece.
   */
  async flushIncremental(sliceKeys = 250): Promise<{ minutes: number; hours: number }> {
    const { minutes } = this.flush(false, 5000, { rollHours: false });
    if (this.rolling) return { minutes, hours: 0 };
    this.rolling = true;
    try {
      const { todo, until } = this.hoursDue(false);
      for (const hour of todo) {
        const keys = (
          this.db
            .prepare('SELECT DISTINCT link_key FROM rollup_1m WHERE ts >= ? AND ts < ? ORDER BY link_key')
            .all(hour, hour + 3_600_000) as Array<{ link_key: string }>
        ).map((r) => r.link_key);
        for (let i = 0; i < keys.length; i += sliceKeys) {
          const slice = keys.slice(i, i + sliceKeys);
          this.stmts.rollHourRange.run({ hour, lo: slice[0], hi: slice[slice.length - 1] });
          await new Promise((r) => setImmediate(r));
        }
        this.stmts.rollHostHour.run({ hour });
      }
      if (todo.length) this.opts.store.setSetting('rolled_hour_until', String(until));
      return { minutes, hours: todo.length };
    } finally {
      this.rolling = false;
    }
  }

  /** Deletes roll-ups past retention, oldest first, in bounded slices. */
  retention(now: number): number {
    const day = 86_400_000;
    let deleted = 0;
    const plan: Array<[string, number]> = [
      ['rollup_1m', now - this.opts.minuteRetentionDays * day],
      ['host_1m', now - this.opts.minuteRetentionDays * day],
      ['rollup_1h', now - this.opts.hourRetentionDays * day],
      ['host_1h', now - this.opts.hourRetentionDays * day],
      ['alert_events', now - this.opts.hourRetentionDays * day],
    ];
    for (const [table, before] of plan) {
      const first = this.db.prepare(`SELECT min(ts) AS ts FROM ${table}`);
      const del = this.opts.store.destructive(`DELETE FROM ${table} WHERE ts >= ? AND ts < ?`);
      // Slices of one hour keep each statement (and the time the event loop is held) short; each slice
      // starts at the oldest row left, so empty hours (a stray row from 1970) cost nothing, and one call
      // deletes at most MAX_RETENTION_SLICES slices (the rest at the next).
      for (let k = 0; k < MAX_RETENTION_SLICES; k++) {
        const min = (first.get() as { ts: number | null }).ts;
        if (min === null || min >= before) break;
        deleted += del.run(min, Math.min(min + 3_600_000, before)).changes;
      }
    }
    // Replay positions of agent runs nobody has heard of for as long as hourly history is kept.
    deleted += this.opts.store
      .destructive('DELETE FROM agent_runs WHERE updated_at < ?')
      .run(now - this.opts.hourRetentionDays * day).changes;
    return deleted;
  }

  // ───────────────────────────── freshness and blame ─────────────────────────────

  /** Sets every link end's `peerNode` (see LinkEnd.peerNode); O(nodes + links), once per tick. */
  private resolvePeers(): void {
    const byAddress = new Map<string, string>();
    for (const n of this.nodes.values()) for (const a of n.addresses) byAddress.set(a, n.id);
    // An application's ends are `<app>/<link>:tx|rx`: the send end names the peer's address, the receive end
    // cannot; pair them by the part before the direction.
    const sendEnds = new Map<string, string>();
    for (const l of this.links.values())
      if (l.app !== undefined && l.id.endsWith(':tx')) sendEnds.set(l.id.slice(0, -3), l.node);
    for (const l of this.links.values()) {
      let p: string | undefined;
      if (this.nodes.has(l.peer)) p = l.peer;
      else {
        p = byAddress.get(hostOf(l.peer));
        if (p === undefined && l.app !== undefined && l.id.endsWith(':rx'))
          p = sendEnds.get(l.id.slice(0, -3));
      }
      if (p === l.node) p = undefined;
      if (p !== l.peerNode) {
        l.peerNode = p;
        this.changedLinks.add(l.key);
      }
    }
  }

  /** fresh / stale / offline of one node at `now` (hub clock), from the age of its last sample. */
  freshnessOf(n: NodeEntry, now = this.opts.now()): Freshness {
    if (!n.connected) return 'offline';
    const age = now - n.lastDataAt;
    if (age > (this.opts.offlineAfterS ?? 10) * 1000) return 'offline';
    if (age > Math.max(MIN_STALE_MS, (this.opts.staleAfterSamples ?? 3) * n.intervalMs)) return 'stale';
    return 'fresh';
  }

  /**
   * Re-judges every node's freshness, every link end's blame and every node's health; marks what changed
   * for the live hub. Called once per live tick and per alert evaluation (O(nodes + links), no allocation
   * per link). Returns the ids of nodes that are still connected but went offline by silence: a host cut
   * off from the network keeps its TCP connection "open" until the kernel gives up (minutes), so the
   * caller closes it and the agent reconnects once its path is back.
   *
   * Blame: an end that is not up is the fault of its peer when the peer is not fresh (its own figures
   * cannot be believed) or when the peer looks cut off — links to at least two distinct peers and to at
   * least half of its peers are not up — while this node does not; otherwise its own node's. A node's
   * health counts only the ends blamed on itself, so the peers of a cut-off host stay green apart from
   * their links to it, and the host that went silent is the one shown red.
   */
  refreshFreshness(now = this.opts.now()): string[] {
    const silent: string[] = [];
    for (const n of this.nodes.values()) {
      const f = this.freshnessOf(n, now);
      if (f === n.freshness) continue;
      if (f === 'offline' && n.connected) silent.push(n.id);
      n.freshness = f;
      this.changedNodes.add(n.id);
      for (const l of n.links.values()) this.changedLinks.add(l.key);
    }
    this.resolvePeers();
    // Cut-off suspects: distinct peers with a link end that is not up, against distinct peers.
    const cutOff = new Set<string>();
    for (const n of this.nodes.values()) {
      if (n.freshness !== 'fresh' || n.links.size < 2) continue;
      let peers = 0;
      let peersNotUp = 0;
      const seen = new Map<string, boolean>();
      for (const l of n.links.values()) {
        const notUp = l.state !== 'up' && l.state !== 'degraded';
        const peerId = l.peerNode ?? l.peer;
        const was = seen.get(peerId);
        if (was === undefined) {
          peers++;
          if (notUp) peersNotUp++;
          seen.set(peerId, notUp);
        } else if (notUp && !was) {
          peersNotUp++;
          seen.set(peerId, true);
        }
      }
      if (peersNotUp >= 2 && peersNotUp * 2 >= peers) cutOff.add(n.id);
    }
    for (const n of this.nodes.values()) {
      let worst: NodeSummary['health'] = 'ok';
      let byPeer = 0;
      for (const l of n.links.values()) {
        let blame: string | undefined;
        if (l.state !== 'up') {
          const peer = l.peerNode === undefined ? undefined : this.nodes.get(l.peerNode);
          const peerAtFault =
            peer !== undefined && (peer.freshness !== 'fresh' || (cutOff.has(peer.id) && !cutOff.has(n.id)));
          blame = n.freshness === 'fresh' && peer !== undefined && peerAtFault ? peer.id : n.id;
        }
        if (blame !== l.blame) {
          l.blame = blame;
          this.changedLinks.add(l.key);
        }
        if (blame === undefined) continue;
        if (blame !== n.id) byPeer++;
        else if (l.state === 'down') worst = 'down';
        else if (worst === 'ok') worst = 'degraded';
      }
      const health: NodeSummary['health'] = n.freshness === 'fresh' ? worst : n.freshness;
      if (health !== n.health || byPeer !== n.linksDownByPeer) {
        n.health = health;
        n.linksDownByPeer = byPeer;
        this.changedNodes.add(n.id);
      }
    }
    return silent;
  }

  // ───────────────────────────── views ─────────────────────────────

  linkSummary(l: LinkEnd): LinkSummary {
    const s: LinkSummary = {
      key: l.key,
      id: l.id,
      node: l.node,
      peer: l.peer,
      direction: l.direction,
      transport: l.transport,
      provider: l.provider,
      state: l.state,
      ts: l.ts,
      recordsPerS: r2(l.recordsPerS),
      bytesPerS: r2(l.bytesPerS),
      completionsPerS: r2(l.completionsPerS),
      backpressurePerS: r2(l.backpressurePerS),
      errorsPerS: r2(l.errorsPerS),
      occupancy: l.capacityBytes > 0 ? Math.round((l.occupancyBytes / l.capacityBytes) * 1e4) / 1e4 : 0,
      occupancyBytes: l.occupancyBytes,
      capacityBytes: l.capacityBytes,
      p50Ns: nullable(l.p50),
      p99Ns: nullable(l.p99),
      p999Ns: nullable(l.p999),
      rttP50Ns: nullable(l.rttP50),
      freshness: this.nodes.get(l.node)?.freshness ?? 'offline',
    };
    if (l.peerNode !== undefined && l.peerNode !== l.peer) {
      s.peer = l.peerNode;
      s.peerAddress = l.peer;
    }
    if (l.app !== undefined) s.app = l.app;
    if (l.reason !== undefined) s.reason = l.reason;
    if (l.blame !== undefined) s.blame = l.blame;
    return s;
  }

  nodeSummary(n: NodeEntry): NodeSummary {
    let up = 0;
    for (const l of n.links.values()) if (l.state === 'up') up++;
    return {
      id: n.id,
      hostname: n.hostname,
      connected: n.connected,
      version: n.version,
      providers: n.providers,
      lastSampleTs: n.lastSampleTs,
      cpuPercent: n.host?.cpuPercent ?? null,
      rssBytes: n.host?.rssBytes ?? null,
      eventLoopLagMs: n.host?.eventLoopLagMs ?? null,
      dataPathLagMs: n.host?.dataPathLagMs ?? null,
      uptimeS: n.host?.uptimeS ?? null,
      linkCount: n.links.size,
      linksUp: up,
      freshness: n.freshness,
      lastDataAt: n.lastSampleAt,
      linksDownByPeer: n.linksDownByPeer,
      health: n.health,
      ...(n.labels ? { labels: n.labels } : {}),
    };
  }

  kpi(alertsFiring: number, alertsPending: number): Kpi {
    let fresh = 0;
    let stale = 0;
    for (const n of this.nodes.values()) {
      if (n.freshness === 'fresh') fresh++;
      else if (n.freshness === 'stale') stale++;
    }
    let up = 0;
    let degraded = 0;
    let down = 0;
    let records = 0;
    let bytes = 0;
    let occMax = 0;
    const p99s: number[] = [];
    let frozen = 0;
    for (const l of this.links.values()) {
      if (this.nodes.get(l.node)?.freshness !== 'fresh') frozen++;
      else if (l.state === 'up') up++;
      else if (l.state === 'down') down++;
      else degraded++;
      if (l.direction === 'rx') {
        if (Number.isFinite(l.recordsPerS)) records += l.recordsPerS;
        if (Number.isFinite(l.bytesPerS)) bytes += l.bytesPerS;
      }
      if (Number.isFinite(l.p99)) p99s.push(l.p99);
      if (l.capacityBytes > 0) occMax = Math.max(occMax, l.occupancyBytes / l.capacityBytes);
    }
    p99s.sort((a, b) => a - b);
    const nowSec = Math.floor(this.opts.now() / 1000);
    return {
      nodesTotal: this.nodes.size,
      nodesConnected: fresh,
      nodesStale: stale,
      nodesOffline: this.nodes.size - fresh - stale,
      linksTotal: this.links.size,
      linksUp: up,
      linksDegraded: degraded,
      linksDown: down,
      linksFrozen: frozen,
      recordsPerS: records,
      bytesPerS: bytes,
      p99MaxNs: p99s.length ? p99s[p99s.length - 1]! : null,
      p99MedianNs: p99s.length ? p99s[Math.floor(p99s.length / 2)]! : null,
      occupancyMax: occMax,
      alertsFiring,
      alertsPending,
      samplesPerS:
        nowSec === this.lastSecond
          ? this.samplesLastSecond
          : nowSec === this.lastSecond + 1
            ? this.samplesThisSecond
            : 0,
    };
  }

  /**
   * `GET /api/health`: the hub itself answers (status), and how current the fleet is. `agents.connected`
   * counts agents whose samples are fresh — a connection that sends nothing is not an agent we can see.
   */
  health(): {
    status: 'ok';
    agents: { connected: number; stale: number; offline: number; total: number };
    links: { up: number; total: number };
  } {
    // Judged now, not at the last tick: a health probe must not lag by a tick.
    const now = this.opts.now();
    let fresh = 0;
    let stale = 0;
    const freshIds = new Set<string>();
    for (const n of this.nodes.values()) {
      const f = this.freshnessOf(n, now);
      if (f === 'fresh') {
        fresh++;
        freshIds.add(n.id);
      } else if (f === 'stale') stale++;
    }
    let up = 0;
    // A link of an agent that is not fresh is not known to be up.
    for (const l of this.links.values()) if (l.state === 'up' && freshIds.has(l.node)) up++;
    return {
      status: 'ok',
      agents: { connected: fresh, stale, offline: this.nodes.size - fresh - stale, total: this.nodes.size },
      links: { up, total: this.links.size },
    };
  }

  /** 1 s points of a link in (fromMs, toMs], from memory. */
  recentLinkPoints(l: LinkEnd, fromMs: number, toMs: number): LivePoint[] {
    const out: LivePoint[] = [];
    const r = l.ring;
    l.ring.each(Math.floor(fromMs / 1000) + 1, Math.floor(toMs / 1000), (sec, o) => {
      out.push({
        ts: sec * 1000,
        recordsPerS: n2(r.get(o, LF.records)),
        bytesPerS: n2(r.get(o, LF.bytes)),
        completionsPerS: n2(r.get(o, LF.completions)),
        backpressurePerS: n2(r.get(o, LF.backpressure)),
        errorsPerS: n2(r.get(o, LF.errors)),
        occupancyBytes: n2(r.get(o, LF.occ)),
        p50Ns: nullable(r.get(o, LF.p50)),
        p99Ns: nullable(r.get(o, LF.p99)),
        p999Ns: nullable(r.get(o, LF.p999)),
      });
    });
    return out;
  }

  recentHostPoints(n: NodeEntry, fromMs: number, toMs: number): HostPoint[] {
    const out: HostPoint[] = [];
    const r = n.ring;
    n.ring.each(Math.floor(fromMs / 1000) + 1, Math.floor(toMs / 1000), (sec, o) => {
      out.push({
        ts: sec * 1000,
        cpuPercent: nullable(r.get(o, 0)),
        rssBytes: nullable(r.get(o, 1)),
        eventLoopLagMs: nullable(r.get(o, 2)),
      });
    });
    return out;
  }

  // ───────────────────────────── latency windows ─────────────────────────────

  /** Seconds of queue-latency histograms kept per link end: the longest window rules and the API get. */
  get latencyWindowS(): number {
    return this.opts.latencyWindowS;
  }

  /**
   * Queue-latency quantile q of a link end over the last `windowS` seconds (clamped to the kept window;
   * the 5 s slots overlapping it), ns; NaN when no record passed in it.
   */
  windowQuantile(l: LinkEnd, windowS: number, q: number, now = this.opts.now()): number {
    if (!l.qwin) return Number.NaN;
    return l.qwin.quantile(now, Math.min(windowS, this.opts.latencyWindowS) * 1000, q);
  }

  /** The 5 s queue-latency histogram slots of a link end overlapping the last `windowS` seconds. */
  windowSlots(
    l: LinkEnd,
    windowS: number,
    now = this.opts.now(),
  ): Array<{ ts: number; buckets: SparseBuckets }> {
    return l.qwin ? l.qwin.slots(now, Math.min(windowS, this.opts.latencyWindowS) * 1000) : [];
  }

  // ───────────────────────────── history ─────────────────────────────

  /**
   * History of a link end, at most `points` buckets. Memory (1 s) when the range lies within it, else
   * 1-minute roll-ups within their retention, else 1-hour roll-ups.
   */
  linkHistory(key: string, from: number, to: number, points: number) {
    const now = this.opts.now();
    const source = this.pickSource(from, now);
    const l = this.links.get(key);
    if (source === 1) {
      const stepS = Math.max(1, Math.ceil((to - from) / 1000 / points));
      const out: HistoryPoint[] = [];
      if (l) {
        const r = l.ring;
        let bucket = -1;
        let acc: number[] = [];
        let n = 0;
        let upSum = 0;
        const emit = () => {
          if (n === 0) return;
          const avg = (i: number) => n2(acc[i]! / acc[LINK_FIELDS + i]!);
          out.push({
            ts: bucket * 1000,
            recordsPerS: avg(LF.records),
            bytesPerS: avg(LF.bytes),
            completionsPerS: avg(LF.completions),
            backpressurePerS: avg(LF.backpressure),
            errorsPerS: avg(LF.errors),
            occupancyBytes: avg(LF.occ),
            p50Ns: avg(LF.p50),
            // No per-second histograms are kept in memory: tail quantiles take the bucket's worst second.
            p99Ns: nullable(acc[2 * LINK_FIELDS + LF.p99]!),
            p999Ns: nullable(acc[2 * LINK_FIELDS + LF.p999]!),
            upRatio: upSum / n,
          });
        };
        const fromSec = Math.floor(from / 1000);
        l.ring.each(fromSec, Math.floor(to / 1000), (sec, o, up) => {
          const b = fromSec + Math.floor((sec - fromSec) / stepS) * stepS;
          if (b !== bucket) {
            emit();
            bucket = b;
            acc = new Array(3 * LINK_FIELDS).fill(0);
            acc.fill(Number.NaN, 2 * LINK_FIELDS);
            n = 0;
            upSum = 0;
          }
          n++;
          if (up) upSum++;
          for (let i = 0; i < LINK_FIELDS; i++) {
            const x = r.get(o, i);
            if (Number.isFinite(x)) {
              acc[i]! += x;
              acc[LINK_FIELDS + i]! += 1;
              const mx = acc[2 * LINK_FIELDS + i]!;
              acc[2 * LINK_FIELDS + i] = Number.isNaN(mx) ? x : Math.max(mx, x);
            }
          }
        });
        emit();
      }
      return { link: key, from, to, resolutionS: 1 as const, stepMs: stepS * 1000, points: out };
    }
    const table = source === 60 ? 'rollup_1m' : 'rollup_1h';
    const res = source * 1000;
    const stepMs = Math.max(1, Math.ceil((to - from) / res / points)) * res;
    const rows = this.db
      .prepare(
        `SELECT ts, seconds, up_s, records, bytes, completions, backpressure, errors, occ_sum, occ_max, samples, hist
         FROM ${table} WHERE link_key = ? AND ts >= ? AND ts < ? ORDER BY ts`,
      )
      .all(key, Math.floor(from / res) * res, to) as Array<{
      ts: number;
      seconds: number;
      up_s: number;
      records: number;
      bytes: number;
      completions: number;
      backpressure: number;
      errors: number;
      occ_sum: number;
      samples: number;
      hist: Buffer | null;
    }>;
    const out: HistoryPoint[] = [];
    const base = Math.floor(from / res) * res;
    let i = 0;
    while (i < rows.length) {
      const b = base + Math.floor((rows[i]!.ts - base) / stepMs) * stepMs;
      const sum = {
        seconds: 0,
        up: 0,
        records: 0,
        bytes: 0,
        completions: 0,
        bp: 0,
        errors: 0,
        occ: 0,
        samples: 0,
      };
      const h: HistAcc = new Map();
      while (i < rows.length && rows[i]!.ts < b + stepMs) {
        const r = rows[i]!;
        sum.seconds += r.seconds;
        sum.up += r.up_s;
        sum.records += r.records;
        sum.bytes += r.bytes;
        sum.completions += r.completions;
        sum.bp += r.backpressure;
        sum.errors += r.errors;
        sum.occ += r.occ_sum;
        sum.samples += r.samples;
        decodeInto(h, r.hist);
        i++;
      }
      const rate = (x: number) => (sum.seconds > 0 ? n2(x / sum.seconds) : null);
      const q = quantiles(toSorted(h));
      out.push({
        ts: b,
        recordsPerS: rate(sum.records),
        bytesPerS: rate(sum.bytes),
        completionsPerS: rate(sum.completions),
        backpressurePerS: rate(sum.bp),
        errorsPerS: rate(sum.errors),
        occupancyBytes: sum.samples ? sum.occ / sum.samples : null,
        p50Ns: nullable(q.p50),
        p99Ns: nullable(q.p99),
        p999Ns: nullable(q.p999),
        upRatio: rate(sum.up),
      });
    }
    return { link: key, from, to, resolutionS: source, stepMs, points: out };
  }

  nodeHistory(nodeId: string, from: number, to: number, points: number) {
    const now = this.opts.now();
    const source = this.pickSource(from, now);
    const n = this.nodes.get(nodeId);
    if (source === 1) {
      const stepS = Math.max(1, Math.ceil((to - from) / 1000 / points));
      const out: HostPoint[] = [];
      if (n) {
        const r = n.ring;
        const buckets = new Map<number, number[]>();
        const fromSec = Math.floor(from / 1000);
        n.ring.each(fromSec, Math.floor(to / 1000), (sec, o) => {
          const b = fromSec + Math.floor((sec - fromSec) / stepS) * stepS;
          const a = buckets.get(b) ?? [0, 0, 0, 0];
          a[0]! += r.get(o, 0);
          a[1]! += r.get(o, 1);
          a[2]! += r.get(o, 2);
          a[3]! += 1;
          buckets.set(b, a);
        });
        for (const [b, a] of buckets) {
          out.push({
            ts: b * 1000,
            cpuPercent: a[0]! / a[3]!,
            rssBytes: a[1]! / a[3]!,
            eventLoopLagMs: a[2]! / a[3]!,
          });
        }
      }
      return { node: nodeId, from, to, resolutionS: 1 as const, stepMs: stepS * 1000, points: out };
    }
    const table = source === 60 ? 'host_1m' : 'host_1h';
    const res = source * 1000;
    const stepMs = Math.max(1, Math.ceil((to - from) / res / points)) * res;
    const base = Math.floor(from / res) * res;
    const rows = this.db
      .prepare(
        `SELECT ? + ((ts - ?) / ?) * ? AS b, sum(samples) AS n, sum(cpu_sum) AS cpu, sum(rss_sum) AS rss, sum(lag_sum) AS lag
         FROM ${table} WHERE node_id = ? AND ts >= ? AND ts < ? GROUP BY b ORDER BY b`,
      )
      .all(base, base, stepMs, stepMs, nodeId, base, to) as Array<{
      b: number;
      n: number;
      cpu: number;
      rss: number;
      lag: number;
    }>;
    return {
      node: nodeId,
      from,
      to,
      resolutionS: source,
      stepMs,
      points: rows.map((r) => ({
        ts: r.b,
        cpuPercent: r.cpu / r.n,
        rssBytes: r.rss / r.n,
        eventLoopLagMs: r.lag / r.n,
      })),
    };
  }

  private pickSource(from: number, now: number): 1 | 60 | 3600 {
    if (from >= now - this.opts.memoryS * 1000) return 1;
    if (from >= now - this.opts.minuteRetentionDays * 86_400_000) return 60;
    return 3600;
  }
}
