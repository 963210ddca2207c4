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

/**
 * Group key of a host: its `rack` label when the agent sends one (agent config `labels: { rack: r07 }`),
 * else its name prefix (`groupKey`).
 */
export function hostGroupKey(id: string, labels?: Readonly<Record<string, string>>): string {
  const rack = labels?.rack?.trim();
  return rack ? rack : groupKey(id);
}

/**
 * Groups ids by `keyOf` (default `groupKey`), groups and members sorted. A group larger than `maxGroupSize`
 * (one big one when all names share a prefix) splits into deterministic chunks.
 */
export function groupIds(
  ids: readonly string[],
  maxGroupSize = 64,
  keyOf: (id: string) => string = groupKey,
): Array<{ key: string; ids: string[] }> {
  const by = new Map<string, string[]>();
  for (const id of sortIds(ids)) {
    const k = keyOf(id);
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

export interface Rect {
  x: number;
  y: number;
  w: number;
  h: number;
}

/** Sizes (CSS px at zoom 1) of the grouped view: collapsed group tiles, and host cells of expanded groups. */
export const TILE = { w: 172, h: 78, gap: 10, pad: 8, header: 28, hostW: 92, hostH: 24, hostGap: 4 };

export interface TileLayout {
  /** One rectangle per group, in the groups' order. */
  tiles: Rect[];
  /** Host cells of the expanded groups. */
  hosts: Map<string, Rect>;
  /** Height of everything laid out (it may exceed the box: the view pans). */
  height: number;
}

/**
 * Grouped view of a large cluster: collapsed groups are tiles flowing left to right in rows as wide as the
 * box; an expanded group takes a full row of its own with one cell per host (in id order). Deterministic:
 * expanding a group moves only the groups after it.
 */
export function tileLayout(
  groups: ReadonlyArray<{ ids: readonly string[]; expanded: boolean }>,
  width: number,
): TileLayout {
  const { gap, pad } = TILE;
  const inner = Math.max(TILE.w, width - 2 * pad);
  const cols = Math.max(1, Math.floor((inner + gap) / (TILE.w + gap)));
  const tileW = (inner - (cols - 1) * gap) / cols;
  const tiles: Rect[] = [];
  const hosts = new Map<string, Rect>();
  let col = 0;
  let y = pad;
  const newRow = () => {
    if (col > 0) y += TILE.h + gap;
    col = 0;
  };
  for (const g of groups) {
    if (!g.expanded) {
      tiles.push({ x: pad + col * (tileW + gap), y, w: tileW, h: TILE.h });
      col++;
      if (col === cols) newRow();
      continue;
    }
    newRow();
    const hc = Math.max(1, Math.floor((inner - 2 * pad + TILE.hostGap) / (TILE.hostW + TILE.hostGap)));
    const rows = Math.ceil(g.ids.length / hc);
    const h = TILE.header + rows * (TILE.hostH + TILE.hostGap) - TILE.hostGap + pad;
    tiles.push({ x: pad, y, w: inner, h });
    g.ids.forEach((id, i) => {
      hosts.set(id, {
        x: pad + pad + (i % hc) * (TILE.hostW + TILE.hostGap),
        y: y + TILE.header + Math.floor(i / hc) * (TILE.hostH + TILE.hostGap),
        w: TILE.hostW,
        h: TILE.hostH,
      });
    });
    y += h + gap;
  }
  const height = (col > 0 ? y + TILE.h : y - gap) + pad;
  return { tiles, hosts, height: groups.length ? height : 0 };
}

export function inRect(p: Point, r: Rect): boolean {
  return p.x >= r.x && p.x < r.x + r.w && p.y >= r.y && p.y < r.y + r.h;
}

/** Pan and zoom of a canvas view: screen = world × k + (x, y). */
export interface Camera {
  x: number;
  y: number;
  k: number;
}

export const ZOOM_MIN = 0.2;
export const ZOOM_MAX = 4;

export function toWorld(cam: Camera, p: Point): Point {
  return { x: (p.x - cam.x) / cam.k, y: (p.y - cam.y) / cam.k };
}

/** The camera zoomed by `factor` around the screen point `at` (that point stays put), zoom clamped. */
export function zoomAt(cam: Camera, at: Point, factor: number): Camera {
  const k = Math.min(ZOOM_MAX, Math.max(ZOOM_MIN, cam.k * factor));
  const w = toWorld(cam, at);
  return { k, x: at.x - w.x * k, y: at.y - w.y * k };
}

/** The smallest pan that brings world rectangle `r` inside the screen box (with a margin), or `cam`. */
export function panToShow(cam: Camera, r: Rect, box: Size, margin = 16): Camera {
  let { x, y } = cam;
  const left = r.x * cam.k + x;
  const top = r.y * cam.k + y;
  const right = left + r.w * cam.k;
  const bottom = top + r.h * cam.k;
  if (right > box.width - margin) x -= right - (box.width - margin);
  if (left + (x - cam.x) < margin) x += margin - (left + (x - cam.x));
  if (bottom > box.height - margin) y -= bottom - (box.height - margin);
  if (top + (y - cam.y) < margin) y += margin - (top + (y - cam.y));
  return x === cam.x && y === cam.y ? cam : { ...cam, x, y };
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
