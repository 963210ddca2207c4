/**
 * Local state of each live view and how hub frames change it. Pure functions (no DOM, no socket) so they
 * are unit-tested; `live-client.ts` feeds them. Every applied frame yields NEW top-level arrays, so React
 * memoisation keys on identity and nothing re-renders between hub frames (≤ 1 per view per second).
 */
import type {
  Alert,
  AlertsDelta,
  AlertsSnapshot,
  HostPoint,
  Kpi,
  LinkSnapshot,
  LinkSummary,
  LivePoint,
  NodeDelta,
  NodeSnapshot,
  NodeSummary,
  OverviewDelta,
  OverviewSnapshot,
} from '@rdmaq/shared';
import { compareIds } from './layout';

export interface OverviewState {
  nodes: NodeSummary[];
  links: LinkSummary[];
  kpi: Kpi;
  alerts: Alert[];
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

const byId = (a: { id: string }, b: { id: string }) => compareIds(a.id, b.id);
const byKey = (a: { key: string }, b: { key: string }) => compareIds(a.key, b.key);

export function overviewFromSnapshot(s: OverviewSnapshot): OverviewState {
  return {
    nodes: [...s.nodes].sort(byId),
    links: [...s.links].sort(byKey),
    kpi: s.kpi,
    alerts: s.alerts,
  };
}

/** Replaces changed nodes/links by id/key, drops removed ones; unchanged entries keep their identity. */
export function applyOverviewDelta(prev: OverviewState, d: OverviewDelta): OverviewState {
  return {
    nodes: upsert(prev.nodes, d.nodes, d.removedNodes, (n) => n.id, byId),
    links: upsert(prev.links, d.links, d.removedLinks, (l) => l.key, byKey),
    kpi: d.kpi,
    alerts: d.alerts,
  };
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
