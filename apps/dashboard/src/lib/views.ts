/**
 * Local state of each live view and how hub frames change it. Pure functions (no DOM, no socket) so they
 * are unit-tested; `live-client.ts` feeds them. Every applied frame yields NEW top-level arrays, so React
 * memoisation keys on identity and nothing re-renders between hub frames (≤ 1 per view per second).
 */
import {
  type Alert,
  type AlertsDelta,
  type AlertsSnapshot,
  applyLayoutDelta,
  applyTableDelta as applyTableDeltaShared,
  END_STATE_BYTES,
  END_STATES,
  FRESHNESS_CODES,
  fromLogByte,
  type HostPoint,
  type Kpi,
  type LinkSnapshot,
  type LinkSummary,
  type LivePoint,
  layoutFromSnapshot,
  NODE_HEALTH,
  type NodeDelta,
  type NodeSnapshot,
  type NodeSummary,
  OCCUPANCY_UNKNOWN,
  type OverviewDelta,
  type OverviewLayout,
  type OverviewSnapshot,
  type TableDelta,
  type TableSnapshot,
} from '@rdmaq/shared';
import { compareIds } from './layout';

/** A host as the overview's pictures draw it (decoded from the packed layout). */
export interface OverviewNode {
  id: string;
  hostname: string;
  connected: boolean;
  health: NodeSummary['health'];
  freshness: 'fresh' | 'stale' | 'offline';
  /** Last sample (hub clock ms), known while the node is not fresh. */
  lastDataAt: number | null;
  linkCount: number;
  linksUp: number;
  linksDownByPeer: number;
  labels?: Record<string, string>;
}

/**
 * A link end as the overview's pictures draw it. Occupancy is in whole percent, throughput and p99 on a
 * quarter-octave scale (±9 %): the tables and the link page carry the exact figures.
 */
export interface OverviewLink {
  key: string;
  id: string;
  node: string;
  peer: string;
  peerAddress?: string;
  direction: 'tx' | 'rx';
  transport: string;
  provider: string;
  app?: string;
  state: LinkSummary['state'];
  freshness: 'fresh' | 'stale' | 'offline';
  blame?: string;
  capacityBytes: number;
  /** Fraction 0..1 (whole percent); NaN without a capacity. */
  occupancy: number;
  occupancyBytes: number;
  bytesPerS: number;
  p99Ns: number | null;
  /** Ring ≥ 95 % full with no record moving (judged by the hub on exact figures). */
  stuck: boolean;
}

export interface OverviewState {
  layout: OverviewLayout;
  nodes: OverviewNode[];
  links: OverviewLink[];
  kpi: Kpi;
  alerts: Alert[];
}

/** A table window: rows in the hub's order, `total` matching rows. */
export interface TableState<R = LinkSummary | NodeSummary> {
  table: 'links' | 'nodes';
  total: number;
  offset: number;
  rows: R[];
}

export interface AlertsState {
  active: Alert[];
  recent: Alert[];
}

export interface NodeState {
  node: NodeSummary;
  links: LinkSummary[];
  points: HostPoint[];
  alerts: Alert[];
}

export type LinkState = LinkSnapshot;

/** Live points kept in the browser per chart (1 s each): 15 minutes. */
export const MAX_LIVE_POINTS = 900;

const byKey = (a: { key: string }, b: { key: string }) => compareIds(a.key, b.key);

function decodeNode(l: OverviewLayout, i: number): OverviewNode {
  const [id, hostname, labels] = l.nodes[i]!;
  const [health, connected, linkCount, linksUp, byPeer, lastDataAt] = l.nodeStates[i]!;
  const h = NODE_HEALTH[health] ?? 'offline';
  return {
    id,
    hostname,
    connected: connected === 1,
    health: h,
    freshness: h === 'stale' || h === 'offline' ? h : 'fresh',
    lastDataAt,
    linkCount,
    linksUp,
    linksDownByPeer: byPeer,
    ...(labels ? { labels } : {}),
  };
}

function decodeEnd(l: OverviewLayout, i: number): OverviewLink {
  const [id, nodeIdx, peer, dir, transport, provider, capacityBytes, app, peerAddress] = l.ends[i]!;
  const o = i * END_STATE_BYTES;
  const flags = l.endStates[o]!;
  const occ = l.endStates[o + 1]!;
  const node = l.nodes[nodeIdx]?.[0] ?? '?';
  const occupancy = occ === OCCUPANCY_UNKNOWN ? Number.NaN : occ / 100;
  const blame = l.blame.get(i);
  return {
    key: `${node}~${id}`,
    id,
    node,
    peer: typeof peer === 'number' ? (l.nodes[peer]?.[0] ?? '?') : peer,
    ...(peerAddress !== null ? { peerAddress } : {}),
    direction: dir === 0 ? 'tx' : 'rx',
    transport,
    provider,
    ...(app !== null ? { app } : {}),
    state: END_STATES[flags & 7] ?? 'down',
    freshness: FRESHNESS_CODES[(flags >> 3) & 3] ?? 'offline',
    ...(blame !== undefined ? { blame } : {}),
    capacityBytes,
    occupancy,
    occupancyBytes: Number.isNaN(occupancy) ? 0 : Math.round(occupancy * capacityBytes),
    bytesPerS: fromLogByte(l.endStates[o + 2]!) ?? 0,
    p99Ns: fromLogByte(l.endStates[o + 3]!),
    stuck: (flags & 32) !== 0,
  };
}

export function overviewFromSnapshot(s: OverviewSnapshot): OverviewState {
  const layout = layoutFromSnapshot(s.layout);
  return {
    layout,
    nodes: layout.nodes.map((_, i) => decodeNode(layout, i)),
    links: layout.ends.map((_, i) => decodeEnd(layout, i)),
    kpi: s.kpi,
    alerts: s.alerts,
  };
}

/**
 * Applies a delta: only the nodes and ends it names are decoded again, every other entry keeps its identity
 * (React memo and the canvases' caches key on it). Throws when the delta does not fit (the client resubscribes).
 */
export function applyOverviewDelta(prev: OverviewState, d: OverviewDelta): OverviewState {
  const { layout, nodes: cn, ends: ce } = applyLayoutDelta(prev.layout, d.layout);
  let nodes = prev.nodes;
  if (cn.size) {
    nodes = [...prev.nodes];
    for (const i of cn) nodes[i] = decodeNode(layout, i);
  }
  let links = prev.links;
  // A renamed node renames its ends' keys and peers: decode them all again (rare).
  const renamed = [...cn].some(
    (i) => prev.layout.nodes[i] !== undefined && prev.layout.nodes[i]![0] !== layout.nodes[i]![0],
  );
  if (renamed) links = layout.ends.map((_, i) => decodeEnd(layout, i));
  else if (ce.size) {
    links = [...prev.links];
    for (const i of ce) links[i] = decodeEnd(layout, i);
  }
  return { layout, nodes, links, kpi: d.kpi, alerts: d.alerts };
}

export function tableFromSnapshot(s: TableSnapshot): TableState {
  return { table: s.table, total: s.total, offset: s.offset, rows: [...s.rows] };
}

/** See `applyTableDelta` in @rdmaq/shared (the same reducer the hub's tests replay frames with). */
export function applyTableDelta(prev: TableState, d: TableDelta): TableState {
  return applyTableDeltaShared(prev as TableSnapshot, d) as TableState;
}

function upsert<T>(
  prev: readonly T[],
  changed: readonly T[],
  removed: readonly string[],
  keyOf: (t: T) => string,
  cmp: (a: T, b: T) => number,
): T[] {
  if (changed.length === 0 && removed.length === 0) return prev as T[];
  const m = new Map<string, T>();
  for (const t of prev) m.set(keyOf(t), t);
  for (const k of removed) m.delete(k);
  let added = false;
  for (const t of changed) {
    if (!m.has(keyOf(t))) added = true;
    m.set(keyOf(t), t);
  }
  const out = [...m.values()];
  // Map iteration keeps insertion order, so only new keys can break the sort.
  if (added) out.sort(cmp);
  return out;
}

export function alertsFromSnapshot(s: AlertsSnapshot): AlertsState {
  return { active: [...s.active], recent: [...s.recent] };
}

export function applyAlertsDelta(prev: AlertsState, d: AlertsDelta): AlertsState {
  const active = new Map(prev.active.map((a) => [a.id, a]));
  for (const id of d.removed) active.delete(id);
  for (const a of d.upserted) active.set(a.id, a);
  const resolvedIds = new Set(d.resolved.map((a) => a.id + (a.resolvedAt ?? '')));
  const recent = [...d.resolved, ...prev.recent.filter((a) => !resolvedIds.has(a.id + (a.resolvedAt ?? '')))];
  recent.sort((a, b) => (b.resolvedAt ?? 0) - (a.resolvedAt ?? 0));
  return { active: [...active.values()], recent: recent.slice(0, 100) };
}

export function nodeFromSnapshot(s: NodeSnapshot): NodeState {
  return {
    node: s.node,
    links: [...s.links].sort(byKey),
    points: mergePoints([], s.points),
    alerts: s.alerts,
  };
}

export function applyNodeDelta(prev: NodeState, d: NodeDelta): NodeState {
  return {
    node: d.node,
    links: upsert(prev.links, d.links, d.removedLinks, (l) => l.key, byKey),
    points: mergePoints(prev.points, d.points),
    alerts: d.alerts,
  };
}

export function linkFromSnapshot(s: LinkSnapshot): LinkState {
  return { ...s, points: mergePoints([], s.points) };
}

/** A link delta carries the full link figures; its points are merged by timestamp (new ones appended). */
export function applyLinkDelta(prev: LinkState, d: LinkSnapshot): LinkState {
  return { ...d, points: mergePoints(prev.points, d.points) };
}

/**
 * Merges points by timestamp: ascending, one point per ts (the newer frame wins), at most `max` kept.
 * Appending in order (the usual case) is O(new points).
 */
export function mergePoints<P extends { ts: number }>(
  prev: readonly P[],
  add: readonly P[],
  max = MAX_LIVE_POINTS,
): P[] {
  if (add.length === 0) return prev.length > max ? prev.slice(-max) : (prev as P[]);
  const last = prev.length ? prev[prev.length - 1]!.ts : Number.NEGATIVE_INFINITY;
  let out: P[];
  const sortedAdd = isSorted(add) ? add : [...add].sort((a, b) => a.ts - b.ts);
  if (sortedAdd[0]!.ts > last && uniqueTs(sortedAdd)) {
    out = prev.concat(sortedAdd);
  } else {
    const m = new Map<number, P>();
    for (const p of prev) m.set(p.ts, p);
    for (const p of sortedAdd) m.set(p.ts, p);
    out = [...m.values()].sort((a, b) => a.ts - b.ts);
  }
  return out.length > max ? out.slice(out.length - max) : out;
}

function isSorted(ps: readonly { ts: number }[]): boolean {
  for (let i = 1; i < ps.length; i++) if (ps[i]!.ts < ps[i - 1]!.ts) return false;
  return true;
}
function uniqueTs(ps: readonly { ts: number }[]): boolean {
  for (let i = 1; i < ps.length; i++) if (ps[i]!.ts === ps[i - 1]!.ts) return false;
  return true;
}

/** Live points appended after the last history point (history from REST, then the live tail). */
export function joinHistory<P extends { ts: number }>(history: readonly P[], live: readonly P[]): P[] {
  const last = history.length ? history[history.length - 1]!.ts : Number.NEGATIVE_INFINITY;
  const tail = live.filter((p) => p.ts > last);
  return tail.length ? history.concat(tail) : (history as P[]);
}

export type { LivePoint };
