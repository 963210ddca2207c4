/**
 * What the API and the live views show of the model: a link end's and a node's summary, the KPIs, the
 * hub's health answer and the recent 1 s points — read-only functions of the entities.
 */
import type { Freshness, HostPoint, Kpi, LinkSummary, LivePoint, NodeSummary } from '@rdmaq/shared';
import { n2, nullable } from './history.js';
import { HF, LF } from './ring.js';
import type { LinkEnd, NodeEntry } from './types.js';

/** Rates to 0.01/s: enough for any chart, and it keeps 8,000-link overview frames ~10 % smaller. */
const r2 = (v: number): number => (Number.isFinite(v) ? Math.round(v * 100) / 100 : 0);

export function linkSummary(l: LinkEnd, freshness: Freshness): LinkSummary {
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
    freshness,
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

export function nodeSummary(n: NodeEntry): NodeSummary {
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

/** The KPI strip, from the freshness and states judged at the last tick. */
export function kpi(
  nodes: ReadonlyMap<string, NodeEntry>,
  links: ReadonlyMap<string, LinkEnd>,
  samplesPerS: number,
  alertsFiring: number,
  alertsPending: number,
): Kpi {
  let fresh = 0;
  let stale = 0;
  for (const n of nodes.values()) {
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
  for (const l of links.values()) {
    if (nodes.get(l.node)?.freshness !== 'fresh') frozen++;
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
  return {
    nodesTotal: nodes.size,
    nodesConnected: fresh,
    nodesStale: stale,
    nodesOffline: nodes.size - fresh - stale,
    linksTotal: links.size,
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
    samplesPerS,
  };
}

export interface HealthAnswer {
  status: 'ok';
  agents: { connected: number; stale: number; offline: number; total: number };
  links: { up: number; total: number };
}

/**
 * `GET /api/health`: the hub itself answers (status), and how current the fleet is. `agents.connected`
 * counts agents whose samples are fresh — a connection that sends nothing is not an agent we can see.
 * Judged with `freshness` now, not at the last tick: a health probe must not lag by a tick.
 */
export function health(
  nodes: ReadonlyMap<string, NodeEntry>,
  links: ReadonlyMap<string, LinkEnd>,
  freshness: (n: NodeEntry) => Freshness,
): HealthAnswer {
  let fresh = 0;
  let stale = 0;
  const freshIds = new Set<string>();
  for (const n of nodes.values()) {
    const f = freshness(n);
    if (f === 'fresh') {
      fresh++;
      freshIds.add(n.id);
    } else if (f === 'stale') stale++;
  }
  let up = 0;
  // A link of an agent that is not fresh is not known to be up.
  for (const l of links.values()) if (l.state === 'up' && freshIds.has(l.node)) up++;
  return {
    status: 'ok',
    agents: { connected: fresh, stale, offline: nodes.size - fresh - stale, total: nodes.size },
    links: { up, total: links.size },
  };
}

/** 1 s points of a link in (fromMs, toMs], from memory. */
export function recentLinkPoints(l: LinkEnd, fromMs: number, toMs: number): LivePoint[] {
  const out: LivePoint[] = [];
  const r = l.ring;
  r.each(Math.floor(fromMs / 1000) + 1, Math.floor(toMs / 1000), (sec, o) => {
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

/** 1 s points of a host in (fromMs, toMs], from memory. */
export function recentHostPoints(n: NodeEntry, fromMs: number, toMs: number): HostPoint[] {
  const out: HostPoint[] = [];
  const r = n.ring;
  r.each(Math.floor(fromMs / 1000) + 1, Math.floor(toMs / 1000), (sec, o) => {
    out.push({
      ts: sec * 1000,
      cpuPercent: nullable(r.get(o, HF.cpu)),
      rssBytes: nullable(r.get(o, HF.rss)),
      eventLoopLagMs: nullable(r.get(o, HF.lag)),
    });
  });
  return out;
}
