/**
 * The overview's views, computed once per tick for every subscriber (live.ts fans the frames out):
 *
 * - `overview`: the packed picture of every node and link end (packages/shared/src/overview.ts), encoded
 *   against what the subscribers were last sent, so a delta holds only the entries that visibly changed;
 * - `table:links?…` / `table:nodes?…`: a window of a sorted, filtered table. Each distinct window is
 *   computed once per tick (browsers asking the same one share it); the sort of all rows is done once per
 *   tick per sort order, however many windows use it.
 *
 * Snapshots are built from the state last SENT (not from the fleet as it is now), so a browser that
 * subscribes between two ticks holds exactly what the next delta is computed against.
 */
import {
  type LinkSummary,
  type NodeSummary,
  type OverviewDelta,
  OverviewEncoder,
  type OverviewEndInput,
  type OverviewNodeInput,
  type OverviewSnapshot,
  parseTableView,
  type TableDelta,
  type TableQuery,
  type TableSnapshot,
} from '@rdmaq/shared';
import type { Fleet, LinkEnd, NodeEntry } from './model/fleet.js';

/** A ring at least this full with no record moving is stuck (as the RingFullNoProgress rule and the page). */
const RING_STUCK_RATIO = 0.95;

const COLLATOR = new Intl.Collator('en', { numeric: true, sensitivity: 'base' });
/** Natural order ("node-2" before "node-10"), the order the page used to sort by. */
const compareIds = (a: string, b: string) => COLLATOR.compare(a, b) || (a < b ? -1 : a > b ? 1 : 0);

const LINK_RANK: Record<string, number> = { down: 0, stalled: 1, degraded: 2, connecting: 3, up: 4 };
const NODE_RANK: Record<string, number> = { offline: 0, down: 1, stale: 2, degraded: 3, ok: 4 };
const desc = (a: number, b: number) => (Number.isFinite(b) ? b : -1) - (Number.isFinite(a) ? a : -1);
const occ = (l: LinkEnd) => (l.capacityBytes > 0 ? l.occupancyBytes / l.capacityBytes : -1);

const LINK_SORTS: Record<string, (a: LinkEnd, b: LinkEnd) => number> = {
  urgency: (a, b) =>
    (LINK_RANK[a.state] ?? 9) - (LINK_RANK[b.state] ?? 9) ||
    desc(a.p99, b.p99) ||
    occ(b) - occ(a) ||
    compareIds(a.key, b.key),
  key: (a, b) => compareIds(a.key, b.key),
  throughput: (a, b) => desc(a.bytesPerS, b.bytesPerS) || compareIds(a.key, b.key),
  p99: (a, b) => desc(a.p99, b.p99) || compareIds(a.key, b.key),
  occupancy: (a, b) => occ(b) - occ(a) || compareIds(a.key, b.key),
};
const NODE_SORTS: Record<string, (a: NodeEntry, b: NodeEntry) => number> = {
  urgency: (a, b) => (NODE_RANK[a.health] ?? 9) - (NODE_RANK[b.health] ?? 9) || compareIds(a.id, b.id),
  id: (a, b) => compareIds(a.id, b.id),
  cpu: (a, b) =>
    desc(a.host?.cpuPercent ?? Number.NaN, b.host?.cpuPercent ?? Number.NaN) || compareIds(a.id, b.id),
};

/** What a table window's subscribers were last sent. */
interface TableState {
  query: TableQuery;
  total: number;
  order: string[];
  rows: (LinkSummary | NodeSummary)[];
}

/** Fields of `next` that differ from `prev`; undefined when a field of `prev` is gone (send the whole row). */
function patchOf(prev: object, next: object): Record<string, unknown> | undefined {
  const a = prev as Record<string, unknown>;
  const b = next as Record<string, unknown>;
  for (const k in a) if (!(k in b)) return undefined;
  const out: Record<string, unknown> = {};
  for (const k in b) {
    const x = a[k];
    const y = b[k];
    if (x === y) continue;
    if (typeof y === 'object' && y !== null && JSON.stringify(x) === JSON.stringify(y)) continue;
    out[k] = y;
  }
  return out;
}

export class OverviewViews {
  private readonly encoder = new OverviewEncoder();
  private readonly tables = new Map<string, TableState>();
  /** Sorted rows, per sort order, valid for one tick. */
  private sortedLinks = new Map<string, LinkEnd[]>();
  private sortedNodes = new Map<string, NodeEntry[]>();

  constructor(private readonly fleet: Fleet) {}

  /** Starts a tick: sorted orders are recomputed on first use. */
  beginTick(): void {
    this.sortedLinks.clear();
    this.sortedNodes.clear();
  }

  /** Drops what nobody subscribes any more (the overview's encoder starts afresh for the next subscriber). */
  retain(views: ReadonlySet<string>): void {
    if (!views.has('overview')) this.encoder.reset();
    for (const v of this.tables.keys()) if (!views.has(v)) this.tables.delete(v);
  }

  // ───────────────────────────── overview ─────────────────────────────

  private inputs(): { nodes: OverviewNodeInput[]; ends: OverviewEndInput[] } {
    const f = this.fleet;
    const nodes: OverviewNodeInput[] = [];
    const ends: OverviewEndInput[] = [];
    for (const n of f.nodes.values()) {
      let up = 0;
      for (const l of n.links.values()) if (l.state === 'up') up++;
      nodes.push({
        id: n.id,
        hostname: n.hostname,
        labels: n.labels,
        health: n.health,
        connected: n.connected,
        linkCount: n.links.size,
        linksUp: up,
        linksDownByPeer: n.linksDownByPeer,
        fresh: n.freshness === 'fresh',
        lastDataAt: n.lastSampleAt,
      });
      for (const l of n.links.values()) {
        const fresh = n.freshness === 'fresh';
        ends.push({
          key: l.key,
          id: l.id,
          node: l.node,
          peer: l.peerNode ?? l.peer,
          peerAddress: l.peerNode !== undefined && l.peerNode !== l.peer ? l.peer : undefined,
          direction: l.direction,
          transport: l.transport,
          provider: l.provider,
          capacityBytes: l.capacityBytes,
          app: l.app,
          state: l.state,
          freshness: n.freshness,
          stuck:
            fresh &&
            l.capacityBytes > 0 &&
            l.occupancyBytes / l.capacityBytes >= RING_STUCK_RATIO &&
            !(l.recordsPerS > 0),
          occupancyBytes: l.occupancyBytes,
          bytesPerS: l.bytesPerS,
          p99Ns: Number.isFinite(l.p99) ? l.p99 : null,
          blame: l.blame,
        });
      }
    }
    return { nodes, ends };
  }

  overviewSnapshot(kpi: OverviewSnapshot['kpi'], alerts: OverviewSnapshot['alerts']): OverviewSnapshot {
    if (!this.encoder.ready) {
      const { nodes, ends } = this.inputs();
      this.encoder.update(nodes, ends);
    }
    return { layout: this.encoder.snapshot(), kpi, alerts };
  }

  /** This tick's overview frame: a delta, or a snapshot for everyone when the layout was renumbered. */
  overviewFrame(
    kpi: OverviewSnapshot['kpi'],
    alerts: OverviewSnapshot['alerts'],
  ): { snapshot: true; data: OverviewSnapshot } | { snapshot: false; data: OverviewDelta } {
    const { nodes, ends } = this.inputs();
    const d = this.encoder.update(nodes, ends);
    if (d === 'snapshot') return { snapshot: true, data: { layout: this.encoder.snapshot(), kpi, alerts } };
    return { snapshot: false, data: { layout: d, kpi, alerts } };
  }

  // ───────────────────────────── tables ─────────────────────────────

  private window(query: TableQuery): { total: number; rows: (LinkSummary | NodeSummary)[]; order: string[] } {
    const f = this.fleet;
    const q = query.q.toLowerCase();
    const end = query.offset + query.limit;
    let total = 0;
    const rows: (LinkSummary | NodeSummary)[] = [];
    const order: string[] = [];
    if (query.table === 'links') {
      let sorted = this.sortedLinks.get(query.sort);
      if (!sorted) {
        sorted = [...f.links.values()].sort(LINK_SORTS[query.sort] ?? LINK_SORTS.urgency!);
        this.sortedLinks.set(query.sort, sorted);
      }
      for (const l of sorted) {
        if (
          q &&
          !l.key.toLowerCase().includes(q) &&
          !(l.peerNode ?? l.peer).toLowerCase().includes(q) &&
          !l.peer.toLowerCase().includes(q) &&
          !(l.app ?? '').toLowerCase().includes(q)
        ) {
          continue;
        }
        if (total >= query.offset && total < end) {
          rows.push(f.linkSummary(l));
          order.push(l.key);
        }
        total++;
      }
    } else {
      let sorted = this.sortedNodes.get(query.sort);
      if (!sorted) {
        sorted = [...f.nodes.values()].sort(NODE_SORTS[query.sort] ?? NODE_SORTS.urgency!);
        this.sortedNodes.set(query.sort, sorted);
      }
      for (const n of sorted) {
        if (q && !n.id.toLowerCase().includes(q) && !n.hostname.toLowerCase().includes(q)) continue;
        if (total >= query.offset && total < end) {
          rows.push(f.nodeSummary(n));
          order.push(n.id);
        }
        total++;
      }
    }
    return { total, rows, order };
  }

  /** Snapshot of a table window (undefined: not a valid table view). */
  tableSnapshot(view: string): TableSnapshot | undefined {
    let st = this.tables.get(view);
    if (!st) {
      const query = parseTableView(view);
      if (typeof query === 'string') return undefined;
      const w = this.window(query);
      st = { query, ...w };
      this.tables.set(view, st);
    }
    return {
      table: st.query.table,
      total: st.total,
      offset: st.query.offset,
      rows: st.rows as TableSnapshot['rows'],
    };
  }

  /** This tick's changes of a window, null when nothing in it changed. */
  tableDelta(view: string): TableDelta | null {
    const st = this.tables.get(view);
    if (!st) return null; // first subscriber got a snapshot this tick
    const w = this.window(st.query);
    const held = new Map<string, LinkSummary | NodeSummary>();
    for (let i = 0; i < st.rows.length; i++) held.set(st.order[i]!, st.rows[i]!);
    const whole: (LinkSummary | NodeSummary)[] = [];
    const patches: Record<string, unknown>[] = [];
    const idField = st.query.table === 'links' ? 'key' : 'id';
    for (let i = 0; i < w.rows.length; i++) {
      const row = w.rows[i]!;
      const before = held.get(w.order[i]!);
      // Rows the browser holds travel as the fields that changed (a sample moves a few of ~25).
      const p = before ? patchOf(before, row) : undefined;
      if (!p) whole.push(row);
      else if (Object.keys(p).length) patches.push({ [idField]: w.order[i]!, ...p });
    }
    const orderChanged = w.order.length !== st.order.length || w.order.some((k, i) => st.order[i] !== k);
    const totalChanged = w.total !== st.total;
    st.total = w.total;
    st.order = w.order;
    st.rows = w.rows;
    if (!whole.length && !patches.length && !orderChanged && !totalChanged) return null;
    return {
      table: st.query.table,
      total: w.total,
      offset: st.query.offset,
      ...(orderChanged ? { order: w.order } : {}),
      rows: whole as TableDelta['rows'],
      ...(patches.length ? { patches: patches as TableDelta['patches'] } : {}),
    };
  }
}
