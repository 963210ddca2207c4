/**
 * The overview's wire format (live protocol 2): what the overview page DRAWS, not the fleet.
 *
 * The overview shows KPIs, a topology, an occupancy heatmap and two tables. The tables are their own views
 * (`table:links?…`, `table:nodes?…`, below), carrying only the window of rows a browser asked for. The
 * topology and heatmap need every host and link end, but only a few quantised figures of each, so the
 * overview carries:
 *
 * - a LAYOUT: each node and link end once, with its static fields (id, peer, direction, capacity…), in a
 *   stable order — its index is its name in every later frame;
 * - per node a short tuple of what the picture shows (health, freshness, links up), sent again only when it
 *   changes;
 * - per link end FOUR BYTES (state and flags, occupancy in whole percent, throughput and p99 on a
 *   quarter-octave log scale), as a packed byte array, sent again only for the ends whose bytes changed.
 *
 * So a steady fleet costs the KPIs and the few ends whose picture moved, whatever its size. Layout changes
 * that only ADD entries travel in deltas (appended indices); a removal renumbers, so the hub sends a snapshot
 * to every subscriber instead (frame type `snapshot` in place of a delta).
 *
 * Pure code shared by the hub (encode) and the browser (decode/apply); property-tested in
 * packages/shared/test/overview.test.ts (applying every delta equals a fresh snapshot).
 */
import { z } from 'zod';

// ───────────────────────────── quantisation ─────────────────────────────

export const END_STATES = ['up', 'degraded', 'stalled', 'down', 'connecting'] as const;
export type EndState = (typeof END_STATES)[number];
export const FRESHNESS_CODES = ['fresh', 'stale', 'offline'] as const;
export const NODE_HEALTH = ['ok', 'degraded', 'down', 'stale', 'offline'] as const;
export type NodeHealth = (typeof NODE_HEALTH)[number];

/** Bytes per link end in the packed state array. */
export const END_STATE_BYTES = 4;
/** Occupancy byte meaning "no capacity reported". */
export const OCCUPANCY_UNKNOWN = 255;
/** Log-scale steps per octave of the throughput and p99 bytes (2^(1/4): ±9 % around the true value). */
const LOG_STEPS = 4;

/** 0 for nothing / unknown, else 1 + round(4·log2 v), clamped to 1..255. */
export function logByte(v: number | null | undefined): number {
  if (v === null || v === undefined || !Number.isFinite(v) || v < 1) return 0;
  return Math.min(255, 1 + Math.round(LOG_STEPS * Math.log2(v)));
}

/** The value a log byte stands for (its centre); null for 0. */
export function fromLogByte(b: number): number | null {
  return b === 0 ? null : 2 ** ((b - 1) / LOG_STEPS);
}

/** Whole percent 0..100, or OCCUPANCY_UNKNOWN without a capacity. */
export function occupancyByte(occupancyBytes: number, capacityBytes: number): number {
  if (!(capacityBytes > 0) || !Number.isFinite(occupancyBytes)) return OCCUPANCY_UNKNOWN;
  return Math.max(0, Math.min(100, Math.round((occupancyBytes / capacityBytes) * 100)));
}

/** First byte of an end: state (bits 0–2), freshness of its node (bits 3–4), ring stuck (bit 5). */
export function flagsByte(
  state: EndState,
  freshness: (typeof FRESHNESS_CODES)[number],
  stuck: boolean,
): number {
  return END_STATES.indexOf(state) | (FRESHNESS_CODES.indexOf(freshness) << 3) | (stuck ? 1 << 5 : 0);
}

// ───────────────────────────── wire shapes ─────────────────────────────

/** Static fields of a node, by layout index: [id, hostname, labels or null]. */
export const OverviewNodeStaticSchema = z.tuple([
  z.string(),
  z.string(),
  z.record(z.string(), z.string()).nullable(),
]);
export type OverviewNodeStatic = z.infer<typeof OverviewNodeStaticSchema>;

/**
 * What the picture shows of a node: [health index (NODE_HEALTH), connected 0/1, link ends, ends up, ends
 * down because of their peer, last sample at (hub clock ms) or null — only while the node is not fresh,
 * so a fresh node's tuple does not change every second].
 */
export const OverviewNodeStateSchema = z.tuple([
  z
    .number()
    .int()
    .min(0)
    .max(NODE_HEALTH.length - 1),
  z.number().int().min(0).max(1),
  z.number().int().nonnegative(),
  z.number().int().nonnegative(),
  z.number().int().nonnegative(),
  z.number().nullable(),
]);
export type OverviewNodeState = z.infer<typeof OverviewNodeStateSchema>;

/**
 * Static fields of a link end, by layout index: [link id, node index, peer (a node index when the hub
 * resolved it to a node, else the address the end reported), direction 0 tx / 1 rx, transport, provider,
 * ring capacity bytes, application or null, reported peer address or null (set when it differs from the
 * resolved node)].
 */
export const OverviewEndStaticSchema = z.tuple([
  z.string(),
  z.number().int().nonnegative(),
  z.union([z.number().int().nonnegative(), z.string()]),
  z.number().int().min(0).max(1),
  z.string(),
  z.string(),
  z.number().nonnegative(),
  z.string().nullable(),
  z.string().nullable(),
]);
export type OverviewEndStatic = z.infer<typeof OverviewEndStaticSchema>;

const b64 = z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/, 'base64');

export const OverviewLayoutSnapshotSchema = z.object({
  /** Node statics, index order. */
  nodes: z.array(OverviewNodeStaticSchema),
  /** Node states, same order. */
  nodeStates: z.array(OverviewNodeStateSchema),
  ends: z.array(OverviewEndStaticSchema),
  /** base64 of ends.length × END_STATE_BYTES bytes. */
  endStates: b64,
  /** [end index, host at fault] for the ends that have a blame. */
  blame: z.array(z.tuple([z.number().int().nonnegative(), z.string()])),
});
export type OverviewLayoutSnapshot = z.infer<typeof OverviewLayoutSnapshotSchema>;

export const OverviewLayoutDeltaSchema = z.object({
  /** [index, …static]: index = current length appends, a lower index replaces. */
  nodes: z.array(z.tuple([z.number().int().nonnegative(), OverviewNodeStaticSchema])),
  nodeStates: z.array(z.tuple([z.number().int().nonnegative(), OverviewNodeStateSchema])),
  ends: z.array(z.tuple([z.number().int().nonnegative(), OverviewEndStaticSchema])),
  /** base64 of records (u32 LE end index, END_STATE_BYTES bytes) for the ends whose bytes changed. */
  endStates: b64,
  /** [end index, host at fault or null when it no longer has one]. */
  blame: z.array(z.tuple([z.number().int().nonnegative(), z.string().nullable()])),
});
export type OverviewLayoutDelta = z.infer<typeof OverviewLayoutDeltaSchema>;

// ───────────────────────────── base64 (Node and browsers) ─────────────────────────────

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const B64_INDEX = (() => {
  const t = new Int16Array(128).fill(-1);
  for (let i = 0; i < B64.length; i++) t[B64.charCodeAt(i)] = i;
  return t;
})();

export function toBase64(bytes: Uint8Array): string {
  let out = '';
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    out += B64[n >> 18]! + B64[(n >> 12) & 63]! + B64[(n >> 6) & 63]! + B64[n & 63]!;
  }
  const rest = bytes.length - i;
  if (rest === 1) {
    const n = bytes[i]! << 16;
    out += `${B64[n >> 18]!}${B64[(n >> 12) & 63]!}==`;
  } else if (rest === 2) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8);
    out += `${B64[n >> 18]!}${B64[(n >> 12) & 63]!}${B64[(n >> 6) & 63]!}=`;
  }
  return out;
}

export function fromBase64(s: string): Uint8Array {
  const pad = s.endsWith('==') ? 2 : s.endsWith('=') ? 1 : 0;
  if (s.length % 4 !== 0) throw new Error('base64 length is not a multiple of 4');
  const out = new Uint8Array((s.length / 4) * 3 - pad);
  let o = 0;
  for (let i = 0; i < s.length; i += 4) {
    const c = [0, 1, 2, 3].map((k) => (s[i + k] === '=' ? 0 : (B64_INDEX[s.charCodeAt(i + k)] ?? -1)));
    if (c.some((x) => x < 0)) throw new Error('not base64');
    const n = (c[0]! << 18) | (c[1]! << 12) | (c[2]! << 6) | c[3]!;
    if (o < out.length) out[o++] = n >> 16;
    if (o < out.length) out[o++] = (n >> 8) & 255;
    if (o < out.length) out[o++] = n & 255;
  }
  return out;
}

// ───────────────────────────── the browser's copy ─────────────────────────────

/** The overview's model in a browser (and in tests): the layout plus the state of every entry. */
export interface OverviewLayout {
  nodes: OverviewNodeStatic[];
  nodeStates: OverviewNodeState[];
  ends: OverviewEndStatic[];
  /** ends.length × END_STATE_BYTES. */
  endStates: Uint8Array;
  blame: Map<number, string>;
}

export function layoutFromSnapshot(s: OverviewLayoutSnapshot): OverviewLayout {
  const endStates = fromBase64(s.endStates);
  if (endStates.length !== s.ends.length * END_STATE_BYTES) {
    throw new Error(`overview snapshot: ${endStates.length} state bytes for ${s.ends.length} link ends`);
  }
  if (s.nodeStates.length !== s.nodes.length) {
    throw new Error(`overview snapshot: ${s.nodeStates.length} node states for ${s.nodes.length} nodes`);
  }
  return {
    nodes: [...s.nodes],
    nodeStates: [...s.nodeStates],
    ends: [...s.ends],
    endStates,
    blame: new Map(s.blame),
  };
}

/**
 * Applies a delta, returning a NEW layout (the old one is not modified) and the end / node indices whose
 * picture changed, so a page rebuilds only those entries. Throws on an index the layout cannot hold (a
 * frame out of order): the caller asks for a fresh snapshot.
 */
export function applyLayoutDelta(
  prev: OverviewLayout,
  d: OverviewLayoutDelta,
): { layout: OverviewLayout; nodes: Set<number>; ends: Set<number> } {
  const changedNodes = new Set<number>();
  const changedEnds = new Set<number>();
  const nodes = d.nodes.length ? [...prev.nodes] : prev.nodes;
  for (const [i, s] of d.nodes) {
    if (i > nodes.length) throw new Error(`overview delta: node index ${i} past ${nodes.length}`);
    nodes[i] = s;
    changedNodes.add(i);
  }
  const nodeStates = d.nodeStates.length || d.nodes.length ? [...prev.nodeStates] : prev.nodeStates;
  for (const [i, s] of d.nodeStates) {
    if (i >= nodes.length) throw new Error(`overview delta: node state ${i} of ${nodes.length} nodes`);
    nodeStates[i] = s;
    changedNodes.add(i);
  }
  if (nodeStates.length !== nodes.length)
    throw new Error('overview delta: a new node came without its state');
  const ends = d.ends.length ? [...prev.ends] : prev.ends;
  for (const [i, s] of d.ends) {
    if (i > ends.length) throw new Error(`overview delta: end index ${i} past ${ends.length}`);
    ends[i] = s;
    changedEnds.add(i);
  }
  const patch = fromBase64(d.endStates);
  const rec = 4 + END_STATE_BYTES;
  if (patch.length % rec !== 0) throw new Error('overview delta: end states are not whole records');
  let endStates = prev.endStates;
  if (patch.length || ends.length !== prev.ends.length) {
    endStates = new Uint8Array(ends.length * END_STATE_BYTES);
    endStates.set(prev.endStates.subarray(0, Math.min(prev.endStates.length, endStates.length)));
    const view = new DataView(patch.buffer, patch.byteOffset, patch.byteLength);
    for (let o = 0; o < patch.length; o += rec) {
      const i = view.getUint32(o, true);
      if (i >= ends.length) throw new Error(`overview delta: end state ${i} of ${ends.length} ends`);
      endStates.set(patch.subarray(o + 4, o + rec), i * END_STATE_BYTES);
      changedEnds.add(i);
    }
  }
  let blame = prev.blame;
  if (d.blame.length) {
    blame = new Map(prev.blame);
    for (const [i, b] of d.blame) {
      if (i >= ends.length) throw new Error(`overview delta: blame of end ${i} of ${ends.length}`);
      if (b === null) blame.delete(i);
      else blame.set(i, b);
      changedEnds.add(i);
    }
  }
  return {
    layout: { nodes, nodeStates, ends, endStates, blame },
    nodes: changedNodes,
    ends: changedEnds,
  };
}

// ───────────────────────────── the hub's encoder ─────────────────────────────

/** A node as the encoder reads it (the hub's live model adapts its entries to this). */
export interface OverviewNodeInput {
  id: string;
  hostname: string;
  labels: Record<string, string> | undefined;
  health: NodeHealth;
  connected: boolean;
  linkCount: number;
  linksUp: number;
  linksDownByPeer: number;
  fresh: boolean;
  lastDataAt: number | null;
}

/** A link end as the encoder reads it. */
export interface OverviewEndInput {
  key: string;
  id: string;
  node: string;
  /** Resolved peer node id, or the address the end reported when unresolved. */
  peer: string;
  peerAddress: string | undefined;
  direction: 'tx' | 'rx';
  transport: string;
  provider: string;
  capacityBytes: number;
  app: string | undefined;
  state: EndState;
  freshness: (typeof FRESHNESS_CODES)[number];
  stuck: boolean;
  occupancyBytes: number;
  bytesPerS: number;
  p99Ns: number | null;
  blame: string | undefined;
}

const sameJson = (a: unknown, b: unknown) => a === b || JSON.stringify(a) === JSON.stringify(b);

/**
 * The hub's side: remembers what it last told the subscribers and, once per tick, turns the fleet into a
 * delta against that (or a snapshot when an entry disappeared). Cost per tick: one pass over nodes and ends
 * with a few comparisons each; output proportional to what changed.
 */
export class OverviewEncoder {
  private state: OverviewLayout = {
    nodes: [],
    nodeStates: [],
    ends: [],
    endStates: new Uint8Array(0),
    blame: new Map(),
  };
  private nodeIndex = new Map<string, number>();
  private endIndex = new Map<string, number>();
  private built = false;

  /** The layout as last sent: a snapshot built from it is consistent with the next delta. */
  snapshot(): OverviewLayoutSnapshot {
    return {
      nodes: this.state.nodes,
      nodeStates: this.state.nodeStates,
      ends: this.state.ends,
      endStates: toBase64(this.state.endStates),
      blame: [...this.state.blame],
    };
  }

  /** Forgets what was sent (nobody subscribes): the next update() starts a new layout. */
  reset(): void {
    this.built = false;
  }

  /** Whether update() has run since the encoder was made or reset. */
  get ready(): boolean {
    return this.built;
  }

  /**
   * Brings the remembered layout up to the fleet. Returns the delta to send, or `'snapshot'` when the
   * layout was rebuilt (an entry went away: indices changed) and every subscriber needs a snapshot.
   */
  update(
    nodes: Iterable<OverviewNodeInput>,
    ends: Iterable<OverviewEndInput>,
  ): OverviewLayoutDelta | 'snapshot' {
    const nodeList = [...nodes];
    const endList = [...ends];
    let rebuilt = !this.built;
    if (!rebuilt) {
      // Anything gone renumbers the layout: cheaper to resend once than to carry tombstones forever.
      if (nodeList.length < this.state.nodes.length || endList.length < this.state.ends.length)
        rebuilt = true;
      else {
        const seenNodes = new Set<string>();
        for (const n of nodeList) if (this.nodeIndex.has(n.id)) seenNodes.add(n.id);
        const seenEnds = new Set<string>();
        for (const e of endList) if (this.endIndex.has(e.key)) seenEnds.add(e.key);
        rebuilt = seenNodes.size !== this.nodeIndex.size || seenEnds.size !== this.endIndex.size;
      }
    }
    if (rebuilt) {
      this.state = { nodes: [], nodeStates: [], ends: [], endStates: new Uint8Array(0), blame: new Map() };
      this.nodeIndex = new Map();
      this.endIndex = new Map();
    }
    const delta: OverviewLayoutDelta = { nodes: [], nodeStates: [], ends: [], endStates: '', blame: [] };
    const s = this.state;
    for (const n of nodeList) {
      let i = this.nodeIndex.get(n.id);
      const stat: OverviewNodeStatic = [n.id, n.hostname, n.labels ?? null];
      const st: OverviewNodeState = [
        NODE_HEALTH.indexOf(n.health),
        n.connected ? 1 : 0,
        n.linkCount,
        n.linksUp,
        n.linksDownByPeer,
        n.fresh ? null : n.lastDataAt,
      ];
      if (i === undefined) {
        i = s.nodes.length;
        this.nodeIndex.set(n.id, i);
        s.nodes.push(stat);
        s.nodeStates.push(st);
        delta.nodes.push([i, stat]);
        delta.nodeStates.push([i, st]);
        continue;
      }
      if (s.nodes[i]![1] !== stat[1] || !sameJson(s.nodes[i]![2], stat[2])) {
        s.nodes[i] = stat;
        delta.nodes.push([i, stat]);
      }
      const old = s.nodeStates[i]!;
      if (old.some((v, k) => v !== st[k])) {
        s.nodeStates[i] = st;
        delta.nodeStates.push([i, st]);
      }
    }
    const grown = endList.length > s.ends.length;
    if (grown) {
      const next = new Uint8Array(endList.length * END_STATE_BYTES);
      next.set(s.endStates);
      s.endStates = next;
    }
    const patch: number[] = [];
    const bytes = [0, 0, 0, 0];
    for (const e of endList) {
      let i = this.endIndex.get(e.key);
      const nodeIdx = this.nodeIndex.get(e.node);
      if (nodeIdx === undefined) continue; // an end whose node is not in the fleet cannot be drawn
      const peerIdx = this.nodeIndex.get(e.peer);
      const stat: OverviewEndStatic = [
        e.id,
        nodeIdx,
        peerIdx ?? e.peer,
        e.direction === 'tx' ? 0 : 1,
        e.transport,
        e.provider,
        e.capacityBytes,
        e.app ?? null,
        e.peerAddress !== undefined && e.peerAddress !== e.peer ? e.peerAddress : null,
      ];
      let isNew = false;
      if (i === undefined) {
        i = s.ends.length;
        this.endIndex.set(e.key, i);
        s.ends.push(stat);
        delta.ends.push([i, stat]);
        isNew = true;
      } else {
        const old = s.ends[i]!;
        if (old.some((v, k) => v !== stat[k])) {
          s.ends[i] = stat;
          delta.ends.push([i, stat]);
        }
      }
      bytes[0] = flagsByte(e.state, e.freshness, e.stuck);
      bytes[1] = occupancyByte(e.occupancyBytes, e.capacityBytes);
      bytes[2] = logByte(e.bytesPerS);
      bytes[3] = logByte(e.p99Ns);
      const o = i * END_STATE_BYTES;
      let differs = isNew;
      for (let k = 0; k < END_STATE_BYTES; k++) {
        if (s.endStates[o + k] !== bytes[k]) {
          differs = true;
          s.endStates[o + k] = bytes[k]!;
        }
      }
      if (differs) patch.push(i, bytes[0]!, bytes[1]!, bytes[2]!, bytes[3]!);
      const blame = e.blame ?? null;
      if ((s.blame.get(i) ?? null) !== blame) {
        if (blame === null) s.blame.delete(i);
        else s.blame.set(i, blame);
        delta.blame.push([i, blame]);
      }
    }
    if (s.ends.length * END_STATE_BYTES !== s.endStates.length) {
      // Ends skipped above (node unknown) would leave holes: trim to what is laid out.
      s.endStates = s.endStates.slice(0, s.ends.length * END_STATE_BYTES);
    }
    const rec = 4 + END_STATE_BYTES;
    const out = new Uint8Array((patch.length / 5) * rec);
    const view = new DataView(out.buffer);
    for (let p = 0, o = 0; p < patch.length; p += 5, o += rec) {
      view.setUint32(o, patch[p]!, true);
      for (let k = 0; k < END_STATE_BYTES; k++) out[o + 4 + k] = patch[p + 1 + k]!;
    }
    delta.endStates = toBase64(out);
    this.built = true;
    return rebuilt ? 'snapshot' : delta;
  }
}

// ───────────────────────────── table views ─────────────────────────────

/** Most rows one table view carries. */
export const MAX_TABLE_ROWS = 200;
/** Longest filter text of a table view. */
export const MAX_TABLE_FILTER = 64;
export const LINK_TABLE_SORTS = ['urgency', 'key', 'throughput', 'p99', 'occupancy'] as const;
export const NODE_TABLE_SORTS = ['urgency', 'id', 'cpu'] as const;

export interface TableQuery {
  table: 'links' | 'nodes';
  sort: string;
  /** Case-insensitive substring of id/key, peer, application (links) or id/hostname (nodes). */
  q: string;
  offset: number;
  limit: number;
}

/** `table:links?sort=urgency&q=…&offset=0&limit=50`, parameters in a fixed order so equal queries share a view. */
export function tableView(t: TableQuery): string {
  const p = new URLSearchParams();
  p.set('sort', t.sort);
  if (t.q) p.set('q', t.q);
  p.set('offset', String(t.offset));
  p.set('limit', String(t.limit));
  return `table:${t.table}?${p.toString()}`;
}

/** Parses and bounds a table view; a string naming what is wrong when it is not one. */
export function parseTableView(view: string): TableQuery | string {
  const m = /^table:(links|nodes)(?:\?(.*))?$/.exec(view);
  if (!m) return 'a table view is table:links?… or table:nodes?…';
  const table = m[1] as 'links' | 'nodes';
  const p = new URLSearchParams(m[2] ?? '');
  const sorts: readonly string[] = table === 'links' ? LINK_TABLE_SORTS : NODE_TABLE_SORTS;
  const sort = p.get('sort') ?? 'urgency';
  if (!sorts.includes(sort)) return `sort must be one of ${sorts.join(', ')}`;
  const q = p.get('q') ?? '';
  if (q.length > MAX_TABLE_FILTER) return `q (the filter) is at most ${MAX_TABLE_FILTER} characters`;
  const int = (name: string, dflt: number, max: number): number | string => {
    const raw = p.get(name);
    if (raw === null) return dflt;
    if (!/^\d{1,7}$/.test(raw)) return `${name} must be a whole number`;
    const v = Number(raw);
    return v > max ? `${name} is at most ${max}` : v;
  };
  const offset = int('offset', 0, 1_000_000);
  if (typeof offset === 'string') return offset;
  const limit = int('limit', 50, MAX_TABLE_ROWS);
  if (typeof limit === 'string') return limit;
  if (limit < 1) return 'limit must be at least 1';
  for (const k of p.keys()) {
    if (!['sort', 'q', 'offset', 'limit'].includes(k)) return `unknown table parameter ${k}`;
  }
  return { table, sort, q, offset, limit };
}
