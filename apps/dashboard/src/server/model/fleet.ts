/**
 * The live model: every node and link end as the hub sees it now, their latest figures and 1 s history in
 * memory (typed-array rings), and 1-minute accumulators that `rollups.ts` writes to SQLite when a minute is
 * over. The fan-out takes what changed once per tick (`takeChanges()`).
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
  type LinkSummary,
  type LivePoint,
  linkKey,
  type NodeSummary,
  providerClass,
  type Sample,
  type SparseBuckets,
  sparseQuantile,
} from '@rdmaq/shared';
import { addSparse, ensureSorted, quantileIndex } from '../hist.js';
import { LatencyWindow } from '../window.js';
import { FleetChanges } from './changes.js';
import { freshnessOf, judgeFreshness } from './freshness.js';
import { HOST_SERIES, history, LINK_SERIES, pickResolution } from './history.js';
import { HOST_FIELDS, LF, LINK_FIELDS, LINK_FLOATS, NO_BUCKET, Ring } from './ring.js';
import { Rollups } from './rollups.js';
import * as views from './summaries.js';
import { type FleetOptions, type LinkEnd, type NodeEntry, newMinuteAcc } from './types.js';

export { FleetChanges } from './changes.js';
export { MAX_HOURS_PER_ROUND, MAX_RETENTION_SLICES, MAX_RUNS_PER_NODE } from './rollups.js';
export type { FleetOptions, LinkEnd, NodeEntry } from './types.js';

const errorsTotal = (c: LinkCounters) => {
  let t = 0;
  for (const k in c.errors) t += c.errors[k]!;
  return t;
};

export class Fleet {
  readonly nodes = new Map<string, NodeEntry>();
  readonly links = new Map<string, LinkEnd>();
  samplesThisSecond = 0;
  samplesLastSecond = 0;
  private lastSecond = 0;
  private changes = new FleetChanges();
  private readonly rollups: Rollups;
  private lastRetention = 0;

  constructor(private readonly opts: FleetOptions) {
    this.rollups = new Rollups(opts);
    // Known nodes are listed (offline) after a restart until their agents reconnect.
    for (const r of this.rollups.storedNodes()) {
      const n = this.newNode(r.id, r.hostname, r.version, JSON.parse(r.providers) as string[], '', 1000);
      n.lastSeen = r.last_seen;
      this.nodes.set(r.id, n);
    }
  }

  /** What changed since the previous call (the live fan-out takes it once per tick); recording starts over. */
  takeChanges(): FleetChanges {
    const c = this.changes;
    this.changes = new FleetChanges();
    return c;
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
        this.rollups.saveRun(n.id, n.runId, n.runToken, n.lastSeq, now);
        n.runDirty = false;
      }
      const position = this.rollups.runPosition(h.nodeId, h.runId, tokenId);
      if (n.runId !== h.runId) {
        // A new agent process: its cumulative counters restart, so rates start over.
        for (const l of n.links.values()) l.prev = undefined;
      }
      n.runId = h.runId;
      n.runToken = tokenId;
      n.lastSeq = position ?? 0;
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
    this.rollups.saveNode(n, now);
    this.changes.node(n.id);
    return n.lastSeq;
  }

  disconnected(nodeId: string): void {
    const n = this.nodes.get(nodeId);
    if (!n) return;
    n.connected = false;
    n.lastSeen = this.opts.now();
    this.changes.node(nodeId);
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
        this.changes.added(key);
      }
      this.applyLink(l, ls, s.ts, n.intervalMs, minute, inMemory ? sec : -1, point, qpoint);
      this.changes.link(key);
    }
    // Links the agent no longer reports were closed on it.
    if (n.links.size !== seen.size) {
      for (const [id, l] of n.links) {
        if (!seen.has(id)) {
          n.links.delete(id);
          this.links.delete(l.key);
          this.changes.removed(l.key);
        }
      }
    }
    this.changes.node(nodeId);
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
      acc = newMinuteAcc();
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
    const minutes = this.rollups.writeMinutes(this.nodes.values(), cutoff, now);
    this.forgetAway(now);
    const hours = opts.rollHours === false ? 0 : this.rollups.rollHoursNow(force);
    if (now - this.lastRetention > 600_000) {
      this.lastRetention = now;
      this.retention(now);
    }
    return { minutes, hours };
  }

  /**
   * The timer's flush: minutes at once (a few thousand rows), then the due hours in slices of `sliceKeys`
   * link keys per transaction, yielding to the event loop between slices (Rollups.rollHoursIncremental).
   */
  async flushIncremental(sliceKeys = 250): Promise<{ minutes: number; hours: number }> {
    const { minutes } = this.flush(false, 5000, { rollHours: false });
    const hours = await this.rollups.rollHoursIncremental(sliceKeys);
    return { minutes, hours };
  }

  /** Deletes roll-ups past retention, oldest first, in bounded slices. */
  retention(now: number): number {
    return this.rollups.retention(now);
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
        this.changes.removed(l.key);
      }
      this.changes.node(n.id);
    }
  }

  // ───────────────────────────── freshness and blame (freshness.ts) ─────────────────────────────

  freshnessOf(n: NodeEntry, now = this.opts.now()): Freshness {
    return freshnessOf(n, now, this.opts);
  }

  /** See judgeFreshness: once per live tick and per alert evaluation; returns nodes gone silent. */
  refreshFreshness(now = this.opts.now()): string[] {
    return judgeFreshness(this.nodes, this.links, now, this.opts, this.changes);
  }

  // ───────────────────────────── views (summaries.ts) ─────────────────────────────

  linkSummary(l: LinkEnd): LinkSummary {
    return views.linkSummary(l, this.nodes.get(l.node)?.freshness ?? 'offline');
  }

  nodeSummary(n: NodeEntry): NodeSummary {
    return views.nodeSummary(n);
  }

  kpi(alertsFiring: number, alertsPending: number): Kpi {
    const nowSec = Math.floor(this.opts.now() / 1000);
    const samplesPerS =
      nowSec === this.lastSecond
        ? this.samplesLastSecond
        : nowSec === this.lastSecond + 1
          ? this.samplesThisSecond
          : 0;
    return views.kpi(this.nodes, this.links, samplesPerS, alertsFiring, alertsPending);
  }

  health(): views.HealthAnswer {
    const now = this.opts.now();
    return views.health(this.nodes, this.links, (n) => this.freshnessOf(n, now));
  }

  recentLinkPoints(l: LinkEnd, fromMs: number, toMs: number): LivePoint[] {
    return views.recentLinkPoints(l, fromMs, toMs);
  }

  recentHostPoints(n: NodeEntry, fromMs: number, toMs: number): HostPoint[] {
    return views.recentHostPoints(n, fromMs, toMs);
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

  // ───────────────────────────── history (history.ts) ─────────────────────────────

  private resolutionFor(from: number) {
    return pickResolution(from, this.opts.now(), this.opts.memoryS, this.opts.minuteRetentionDays);
  }

  /** History of a link end, at most `points` buckets (memory, 1-minute or 1-hour roll-ups). */
  linkHistory(key: string, from: number, to: number, points: number) {
    const source = this.resolutionFor(from);
    const h = history<HistoryPoint>(
      LINK_SERIES,
      source,
      this.links.get(key)?.ring,
      this.rollups,
      key,
      from,
      to,
      points,
    );
    return { link: key, from, to, ...h };
  }

  /** History of a node's host figures, at most `points` buckets. */
  nodeHistory(nodeId: string, from: number, to: number, points: number) {
    const source = this.resolutionFor(from);
    const h = history<HostPoint>(
      HOST_SERIES,
      source,
      this.nodes.get(nodeId)?.ring,
      this.rollups,
      nodeId,
      from,
      to,
      points,
    );
    return { node: nodeId, from, to, ...h };
  }
}
