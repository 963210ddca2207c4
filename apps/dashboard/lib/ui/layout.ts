/**
 * Deterministic layouts for the topology and heatmap views. No randomness and no force simulation: the
 * same set of ids always lands on the same spots, so an operator's eye finds a host where it was a minute
 * ago, and adding one host moves the others as little as a sorted order allows.
 */

export interface Point {
  x: number;
  y: number;
}

export interface Size {
  width: number;
  height: number;
}

/** Node counts above which the topology switches from a circle to a grid, and from a grid to groups. */
export const CIRCLE_MAX_NODES = 48;
export const GRAPH_MAX_NODES = 300;

// One collator for every comparison: `localeCompare` with options builds a collator per call, which made
// sorting a few thousand links per hub frame the page's main cost.
const COLLATOR = new Intl.Collator('en', { numeric: true, sensitivity: 'base' });

/** Natural sort so "node-2" comes before "node-10" (ids are operator-chosen host names). */
export function compareIds(a: string, b: string): number {
  return COLLATOR.compare(a, b) || (a < b ? -1 : a > b ? 1 : 0);
}

export function sortIds(ids: Iterable<string>): string[] {
  return [...new Set(ids)].sort(compareIds);
}

/** Nodes sorted by id on a circle, first node at 12 o'clock, clockwise. */
export function circleLayout(ids: readonly string[], size: Size, margin = 48): Map<string, Point> {
  const out = new Map<string, Point>();
  const sorted = sortIds(ids);
  const n = sorted.length;
  const cx = size.width / 2;
  const cy = size.height / 2;
  if (n === 1) {
    out.set(sorted[0]!, { x: cx, y: cy });
    return out;
  }
  const r = Math.max(0, Math.min(size.width, size.height) / 2 - margin);
  sorted.forEach((id, i) => {
    const a = -Math.PI / 2 + (2 * Math.PI * i) / n;
    out.set(id, { x: cx + r * Math.cos(a), y: cy + r * Math.sin(a) });
  });
  return out;
}

/** Grid dimensions for n cells in a box, as square as the box allows. */
export function gridShape(n: number, size: Size): { cols: number; rows: number; cell: number } {
  if (n <= 0 || size.width <= 0 || size.height <= 0) return { cols: 0, rows: 0, cell: 0 };
  // Start from the ideal square cell and shrink until the rows fit.
  let cols = Math.max(1, Math.ceil(Math.sqrt((n * size.width) / size.height)));
  let rows = Math.ceil(n / cols);
  let cell = Math.min(size.width / cols, size.height / rows);
  // One more column can give a larger cell when the box is wide.
  for (let c = cols + 1; c <= Math.min(n, cols + 4); c++) {
    const r = Math.ceil(n / c);
    const s = Math.min(size.width / c, size.height / r);
    if (s > cell) {
      cols = c;
      rows = r;
      cell = s;
    }
  }
  return { cols, rows, cell };
}

/** Nodes sorted by id on a grid, row-major, each at the centre of its cell. */
export function gridLayout(ids: readonly string[], size: Size, margin = 24): Map<string, Point> {
  const out = new Map<string, Point>();
  const sorted = sortIds(ids);
  const inner = { width: size.width - 2 * margin, height: size.height - 2 * margin };
  const { cols, cell } = gridShape(sorted.length, inner);
  if (cols === 0) return out;
  const used = { w: cols * cell, h: Math.ceil(sorted.length / cols) * cell };
  const ox = margin + (inner.width - used.w) / 2;
  const oy = margin + (inner.height - used.h) / 2;
  sorted.forEach((id, i) => {
    out.set(id, { x: ox + (i % cols) * cell + cell / 2, y: oy + Math.floor(i / cols) * cell + cell / 2 });
  });
  return out;
}

/** Picks the layout for the node count: circle for a few, grid for hundreds (groups are drawn elsewhere). */
export function topologyLayout(ids: readonly string[], size: Size): Map<string, Point> {
  return ids.length <= CIRCLE_MAX_NODES ? circleLayout(ids, size) : gridLayout(ids, size);
}

/**
 * Group key of a host id for the grouped view of large clusters: the id without its trailing number and
 * separator ("rack07-node113" → "rack07-node", "gpu-a-0042" → "gpu-a"); ids without a trailing number fall
 * back to their first dotted label, so FQDNs group by host name.
 */
export function groupKey(id: string): string {
  const m = /^(.*?)[-_.:/]?\d+$/.exec(id);
  if (m?.[1]) return m[1];
  const dot = id.indexOf('.');
  return dot > 0 ? id.slice(0, dot) : id;
}

/** Groups ids by `groupKey`, groups and members sorted. Too few groups (one big one) splits by count. */
export function groupIds(ids: readonly string[], maxGroupSize = 64): Array<{ key: string; ids: string[] }> {
  const by = new Map<string, string[]>();
  for (const id of sortIds(ids)) {
    const k = groupKey(id);
    let g = by.get(k);
    if (!g) {
      g = [];
      by.set(k, g);
    }
    g.push(id);
  }
  const out: Array<{ key: string; ids: string[] }> = [];
  for (const key of sortIds(by.keys())) {
    const members = by.get(key)!;
    if (members.length <= maxGroupSize) {
      out.push({ key, ids: members });
      continue;
    }
    // Deterministic chunks of a too-large group, named by their first and last member.
    for (let i = 0; i < members.length; i += maxGroupSize) {
      const chunk = members.slice(i, i + maxGroupSize);
      out.push({ key: `${chunk[0]}…${chunk[chunk.length - 1]}`, ids: chunk });
    }
  }
  return out;
}

/** Undirected key of a node pair, so the two directed links of a connection draw as one edge. */
export function pairKey(a: string, b: string): string {
  return compareIds(a, b) <= 0 ? `${a}\u0000${b}` : `${b}\u0000${a}`;
}

/** Stroke width for an edge: 1 px idle up to `max` px at the busiest edge, square-root scaled. */
export function edgeWidth(bytesPerSecond: number, busiest: number, max = 8): number {
  if (!(bytesPerSecond > 0) || !(busiest > 0)) return 1;
  return 1 + (max - 1) * Math.sqrt(Math.min(1, bytesPerSecond / busiest));
}

/** Index of the cell under a point in a row-major grid, or -1. */
export function cellAt(
  p: Point,
  cols: number,
  cell: number,
  count: number,
  origin: Point = { x: 0, y: 0 },
): number {
  if (cell <= 0) return -1;
  const c = Math.floor((p.x - origin.x) / cell);
  const r = Math.floor((p.y - origin.y) / cell);
  if (c < 0 || c >= cols || r < 0) return -1;
  const i = r * cols + c;
  return i < count ? i : -1;
}

/** Nearest point within `radius` of p, or undefined (hit-testing nodes drawn on a canvas). */
export function nearest(points: Map<string, Point>, p: Point, radius: number): string | undefined {
  let best: string | undefined;
  let bestD = radius * radius;
  for (const [id, q] of points) {
    const d = (q.x - p.x) ** 2 + (q.y - p.y) ** 2;
    if (d <= bestD) {
      bestD = d;
      best = id;
    }
  }
  return best;
}

/** The fields of a link end that `ringEnds` looks at. */
export interface LinkEndLike {
  key: string;
  id: string;
  node: string;
  peer: string;
  direction: 'tx' | 'rx';
}

/**
 * One entry per ring for the occupancy heatmap: a ring lives at the receiver, so each rx end counts; a tx
 * end counts only when its receiver does not report the same link (its rx end `<peer>~<id>` is missing).
 * Ordered by the ring's host, then link id, so one host's rings sit side by side.
 */
export function ringEnds<L extends LinkEndLike>(links: readonly L[]): L[] {
  const rx = new Set<string>();
  for (const l of links) if (l.direction === 'rx') rx.add(`${l.node}\u0000${l.id}`);
  const out = links.filter((l) => l.direction === 'rx' || !rx.has(`${l.peer}\u0000${l.id}`));
  const host = (l: L) => (l.direction === 'rx' ? l.node : l.peer);
  return out.sort(
    (a, b) => compareIds(host(a), host(b)) || compareIds(a.id, b.id) || compareIds(a.key, b.key),
  );
}
