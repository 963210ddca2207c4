'use client';
import { useRouter } from 'next/navigation';
import {
  type KeyboardEvent,
  memo,
  type PointerEvent,
  useCallback,
  useEffect,
  useMemo,
  useRef,
  useState,
} from 'react';
import { usePalette } from '@/components/theme';
import type { Palette } from '@/lib/colors';
import { HEALTH_COLOR, type Health, linkEndHealth, nodeHealth, worseHealth } from '@/lib/colors';
import { formatBitRate, formatNs, formatPercent } from '@/lib/format';
import {
  type Camera,
  CIRCLE_MAX_NODES,
  edgeWidth,
  GRAPH_MAX_NODES,
  gridShape,
  groupIds,
  hostGroupKey,
  inRect,
  nearest,
  type Point,
  panToShow,
  type Rect,
  type Size,
  sortIds,
  TILE,
  tileLayout,
  topologyLayout,
  toWorld,
  zoomAt,
} from '@/lib/layout';
import type { OverviewLink, OverviewNode } from '@/lib/views';
import { prepareContext, useCanvasSize } from './useCanvas';

interface Edge {
  a: string;
  b: string;
  bytesPerS: number;
  health: Health;
  links: OverviewLink[];
}

interface Group {
  key: string;
  ids: string[];
  expanded: boolean;
  rect: Rect;
}

interface Layout {
  mode: 'graph' | 'grouped';
  order: string[];
  /** Where each host's connections end: its dot / cell centre, or its collapsed group's tile centre. */
  pos: Map<string, Point>;
  radius: number;
  /** grouped mode */
  groups: Group[];
  groupOf: Map<string, number>;
  /** host cells of expanded groups */
  cells: Map<string, Rect>;
  /** extent of the drawing (world units), for the initial fit and panning into view */
  height: number;
}

interface GroupStats {
  health: Health;
  ok: number;
  degraded: number;
  down: number;
  stale: number;
  offline: number;
  unknown: number;
  linksDown: number;
  problem: boolean;
}

/** A drawn connection: between two hosts, a host and a collapsed group, or two collapsed groups. */
interface DrawnEdge extends Edge {
  /** endpoint keys: a host id or `\u0001<group index>` */
  ea: string;
  eb: string;
  pa: Point;
  pb: Point;
  /** both ends are hosts (drawn only when unhealthy or highlighted, thousands of healthy ones are noise) */
  hostLevel: boolean;
  count: number;
}

interface Scene extends Layout {
  edges: Edge[];
  drawn: DrawnEdge[];
  busiest: number;
  /** Worst of the host's links (the hub's node health): the filled dot / the cell. */
  nodeHealth: Map<string, Health>;
  /** The agent's own connection: the ring around the dot. */
  agentHealth: Map<string, Health>;
  stats: GroupStats[];
}

type Item = { kind: 'host'; id: string } | { kind: 'group'; gi: number };
type Hover =
  | { kind: 'node'; id: string }
  | { kind: 'group'; gi: number }
  | { kind: 'edge'; edge: DrawnEdge }
  | null;

/** Every node id, sorted: reporting nodes and the peers their links name (drawn as unknown until they report). */
function nodeOrder(nodes: readonly OverviewNode[], links: readonly OverviewLink[]): string[] {
  const ids = new Set<string>();
  for (const n of nodes) ids.add(n.id);
  for (const l of links) {
    ids.add(l.node);
    ids.add(l.peer);
  }
  return sortIds(ids);
}

/** Group key per id (in `order`), from the rack label or the name prefix. */
function groupKeys(order: string[], nodes: readonly OverviewNode[]): string[] {
  if (order.length <= GRAPH_MAX_NODES) return [];
  const labels = new Map<string, Record<string, string> | undefined>();
  for (const n of nodes) if (n.labels) labels.set(n.id, n.labels);
  return order.map((id) => hostGroupKey(id, labels.get(id)));
}

/** Positions depend only on the sorted ids, their groups, what is expanded and the box width. */
function buildLayout(order: string[], keys: string[], expanded: ReadonlySet<string>, size: Size): Layout {
  const empty = { groups: [], groupOf: new Map(), cells: new Map() };
  if (order.length <= GRAPH_MAX_NODES) {
    const pos = topologyLayout(order, size);
    const radius =
      order.length <= CIRCLE_MAX_NODES
        ? Math.max(6, Math.min(16, 180 / Math.max(1, order.length)))
        : Math.max(3, Math.min(10, gridShape(order.length, size).cell / 4));
    return { mode: 'graph', order, pos, radius, height: size.height, ...empty };
  }
  const keyOf = new Map(order.map((id, i) => [id, keys[i] ?? id]));
  const raw = groupIds(order, 64, (id) => keyOf.get(id) ?? id);
  const tl = tileLayout(
    raw.map((g) => ({ ids: g.ids, expanded: expanded.has(g.key) })),
    size.width,
  );
  const groups: Group[] = raw.map((g, i) => ({
    key: g.key,
    ids: g.ids,
    expanded: expanded.has(g.key),
    rect: tl.tiles[i]!,
  }));
  const groupOf = new Map<string, number>();
  const pos = new Map<string, Point>();
  groups.forEach((g, gi) => {
    const c = { x: g.rect.x + g.rect.w / 2, y: g.rect.y + g.rect.h / 2 };
    for (const id of g.ids) {
      groupOf.set(id, gi);
      const cell = tl.hosts.get(id);
      pos.set(id, cell ? { x: cell.x + cell.w / 2, y: cell.y + cell.h / 2 } : c);
    }
  });
  return { mode: 'grouped', order, pos, radius: 0, groups, groupOf, cells: tl.hosts, height: tl.height };
}

const HOST_HEALTHS = ['ok', 'degraded', 'down', 'stale', 'offline', 'unknown'] as const;

/** Per hub frame: edge aggregation, colours and group figures on top of the (cached) layout. */
function buildScene(layout: Layout, nodes: readonly OverviewNode[], links: readonly OverviewLink[]): Scene {
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const edgeMap = new Map<string, Edge & { rx: number; tx: number; hasRx: boolean }>();
  for (const l of links) {
    // a canonical key for the unordered pair (plain comparison: a collator per link end is costly at 8,000)
    const k = l.node < l.peer ? `${l.node}\u0000${l.peer}` : `${l.peer}\u0000${l.node}`;
    let e = edgeMap.get(k);
    // An end reported by a stale/offline node is frozen: the fresh end (if any) decides the edge's colour.
    const h = linkEndHealth(l);
    if (!e) {
      e = { a: l.node, b: l.peer, bytesPerS: 0, health: h, links: [], rx: 0, tx: 0, hasRx: false };
      edgeMap.set(k, e);
    }
    // Each record is counted at both ends of a link: sum the receiving ends, or the sending ends when the
    // receiver does not report.
    if (l.direction === 'rx') {
      e.hasRx = true;
      if (Number.isFinite(l.bytesPerS)) e.rx += l.bytesPerS;
    } else if (Number.isFinite(l.bytesPerS)) e.tx += l.bytesPerS;
    e.health = worseHealth(e.health, h);
    e.links.push(l);
  }
  const edges: Edge[] = [...edgeMap.values()].map((e) => ({
    a: e.a,
    b: e.b,
    health: e.health,
    links: e.links,
    bytesPerS: e.hasRx ? e.rx : e.tx,
  }));
  const agentHealth = new Map<string, Health>();
  const nodeHealthMap = new Map<string, Health>();
  for (const id of layout.order) {
    const n = byId.get(id);
    // The ring: is the agent's data current? (an open connection that sends nothing is not)
    const f = n?.freshness ?? (n?.connected ? 'fresh' : 'offline');
    agentHealth.set(id, n ? (f === 'fresh' ? 'up' : f) : 'unknown');
    nodeHealthMap.set(id, n ? nodeHealth(n.health) : 'unknown');
  }
  if (layout.mode === 'graph') {
    const drawn: DrawnEdge[] = [];
    for (const e of edges) {
      const pa = layout.pos.get(e.a);
      const pb = layout.pos.get(e.b);
      if (pa && pb) drawn.push({ ...e, ea: e.a, eb: e.b, pa, pb, hostLevel: false, count: e.links.length });
    }
    const busiest = edges.reduce((m, e) => Math.max(m, e.bytesPerS), 0);
    return { ...layout, edges, drawn, busiest, nodeHealth: nodeHealthMap, agentHealth, stats: [] };
  }
  // Grouped: figures per group, and connections folded onto their visible ends.
  const stats: GroupStats[] = layout.groups.map((g) => {
    const s: GroupStats = {
      health: 'up',
      ok: 0,
      degraded: 0,
      down: 0,
      stale: 0,
      offline: 0,
      unknown: 0,
      linksDown: 0,
      problem: false,
    };
    for (const id of g.ids) {
      const n = byId.get(id);
      const h = n ? n.health : 'unknown';
      s[h]++;
      if (n) s.linksDown += Math.max(0, n.linkCount - n.linksUp);
      s.health = worseHealth(s.health, nodeHealthMap.get(id) ?? 'unknown');
    }
    s.problem = s.degraded + s.down + s.stale + s.offline > 0;
    return s;
  });
  const endOf = (id: string): string => {
    const gi = layout.groupOf.get(id);
    if (gi === undefined) return id;
    return layout.groups[gi]!.expanded ? id : `\u0001${gi}`;
  };
  const folded = new Map<string, DrawnEdge>();
  for (const e of edges) {
    const ea = endOf(e.a);
    const eb = endOf(e.b);
    if (ea === eb) continue; // inside one collapsed group: counted on its tile
    const k = ea < eb ? `${ea}\u0000${eb}` : `${eb}\u0000${ea}`;
    const f = folded.get(k);
    if (f) {
      f.health = worseHealth(f.health, e.health);
      f.bytesPerS += e.bytesPerS;
      for (const l of e.links) f.links.push(l);
      f.count++;
      continue;
    }
    const pa = layout.pos.get(e.a);
    const pb = layout.pos.get(e.b);
    if (!pa || !pb) continue;
    folded.set(k, {
      ...e,
      links: [...e.links],
      ea,
      eb,
      pa,
      pb,
      hostLevel: ea[0] !== '\u0001' && eb[0] !== '\u0001',
      count: 1,
    });
  }
  const drawn = [...folded.values()];
  const busiest = drawn.reduce((m, e) => Math.max(m, e.bytesPerS), 0);
  return { ...layout, edges, drawn, busiest, nodeHealth: nodeHealthMap, agentHealth, stats };
}

/** The previous array while the contents are equal, so memos keyed on it survive hub frames. */
function useStable(next: string[]): string[] {
  const ref = useRef(next);
  const prev = ref.current;
  if (prev !== next && (prev.length !== next.length || prev.some((v, i) => v !== next[i])))
    ref.current = next;
  return ref.current;
}

function distToSegment(p: Point, a: Point, b: Point): number {
  const dx = b.x - a.x;
  const dy = b.y - a.y;
  const len2 = dx * dx + dy * dy;
  const t = len2 === 0 ? 0 : Math.max(0, Math.min(1, ((p.x - a.x) * dx + (p.y - a.y) * dy) / len2));
  return Math.hypot(p.x - (a.x + t * dx), p.y - (a.y + t * dy));
}

/** Focusable items in order: the nodes (graph), or each group followed by its hosts when expanded. */
function itemsOf(scene: Scene): Item[] {
  if (scene.mode === 'graph') return scene.order.map((id) => ({ kind: 'host', id }));
  const out: Item[] = [];
  scene.groups.forEach((g, gi) => {
    out.push({ kind: 'group', gi });
    if (g.expanded) for (const id of g.ids) out.push({ kind: 'host', id });
  });
  return out;
}

function sameItem(a: Item | undefined, b: Item | undefined): boolean {
  if (!a || !b) return a === b;
  return a.kind === 'host' ? b.kind === 'host' && a.id === b.id : b.kind === 'group' && a.gi === b.gi;
}

function problemsText(s: GroupStats): string {
  const parts: string[] = [];
  if (s.offline) parts.push(`${s.offline} offline`);
  if (s.stale) parts.push(`${s.stale} stale`);
  if (s.down) parts.push(`${s.down} down`);
  if (s.degraded) parts.push(`${s.degraded} degraded`);
  return parts.join(' · ');
}

/** Frames drawn by any topology canvas (the benchmark reads it; no React state, no DOM writes). */
declare global {
  interface Window {
    __rdmaqTopologyDraws?: number;
  }
}
export const FIRST_DATA_DRAW_MARK = 'rdmaq:topology-first-data-draw';

function draw(
  canvas: HTMLCanvasElement | null,
  scene: Scene,
  size: Size,
  cam: Camera,
  pal: Palette,
  hi: Item | undefined,
): boolean {
  const ctx = prepareContext(canvas, size);
  if (!ctx) return false;
  const dpr = window.devicePixelRatio || 1;
  ctx.setTransform(dpr * cam.k, 0, 0, dpr * cam.k, dpr * cam.x, dpr * cam.y);
  const px = 1 / cam.k; // one screen pixel in world units
  // visible world rectangle, for culling
  const view = { x: -cam.x / cam.k, y: -cam.y / cam.k, w: size.width / cam.k, h: size.height / cam.k };
  const visible = (r: Rect) =>
    r.x + r.w >= view.x && r.x <= view.x + view.w && r.y + r.h >= view.y && r.y <= view.y + view.h;
  const hiId = hi?.kind === 'host' ? hi.id : undefined;
  const hiEnd = hi?.kind === 'host' ? hi.id : hi?.kind === 'group' ? `\u0001${hi.gi}` : undefined;

  const stroke = (e: DrawnEdge, width: number, alpha: number, color: string) => {
    ctx.strokeStyle = color;
    ctx.globalAlpha = alpha;
    ctx.lineWidth = width * px;
    ctx.setLineDash(e.health === 'down' ? [6 * px, 4 * px] : []);
    ctx.beginPath();
    ctx.moveTo(e.pa.x, e.pa.y);
    ctx.lineTo(e.pb.x, e.pb.y);
    ctx.stroke();
  };

  if (scene.mode === 'graph') {
    // Healthy edges first so problems are drawn on top.
    const dense = scene.order.length > CIRCLE_MAX_NODES;
    for (const pass of [true, false]) {
      for (const e of scene.drawn) {
        const healthy = e.health === 'up';
        if (healthy !== pass) continue;
        // On a grid many straight edges cross other nodes: healthy ones recede so the problems stand out.
        const w = dense
          ? healthy
            ? edgeWidth(e.bytesPerS, scene.busiest, 4)
            : Math.max(2.5, edgeWidth(e.bytesPerS, scene.busiest, 4))
          : edgeWidth(e.bytesPerS, scene.busiest);
        stroke(e, w, healthy ? (dense ? 0.22 : 0.75) : 0.95, HEALTH_COLOR[e.health]);
      }
    }
    ctx.setLineDash([]);
    ctx.globalAlpha = 1;
    const r = scene.radius;
    const showLabels = scene.order.length <= CIRCLE_MAX_NODES || r * cam.k >= 8;
    ctx.font = '12px ui-sans-serif, system-ui, sans-serif';
    ctx.textBaseline = 'middle';
    for (const id of scene.order) {
      const p = scene.pos.get(id);
      if (!p) continue;
      ctx.beginPath();
      ctx.arc(p.x, p.y, r, 0, 2 * Math.PI);
      ctx.fillStyle = pal.nodeFill;
      ctx.fill();
      ctx.lineWidth = 2.5;
      ctx.strokeStyle = HEALTH_COLOR[scene.agentHealth.get(id) ?? 'unknown'];
      ctx.stroke();
      ctx.beginPath();
      ctx.arc(p.x, p.y, r * 0.45, 0, 2 * Math.PI);
      ctx.fillStyle = HEALTH_COLOR[scene.nodeHealth.get(id) ?? 'unknown'];
      ctx.fill();
      if (showLabels) {
        // Label outside the circle, on the side away from the centre.
        const left = p.x < size.width / 2 - 1;
        ctx.textAlign = left ? 'right' : 'left';
        ctx.fillStyle = pal.label;
        ctx.fillText(id, p.x + (left ? -(r + 6) : r + 6), p.y);
      }
    }
    if (hiId) {
      const p = scene.pos.get(hiId);
      if (p) {
        ctx.strokeStyle = pal.highlight;
        ctx.lineWidth = 2 * px;
        ctx.beginPath();
        ctx.arc(p.x, p.y, r + 5, 0, 2 * Math.PI);
        ctx.stroke();
      }
    }
    return true;
  }

  // ── grouped view: the tiles (and host cells of expanded groups), then the connections over them
  scene.groups.forEach((g, gi) => {
    if (!visible(g.rect)) return;
    drawGroup(ctx, g, scene.stats[gi]!, pal, px, hi?.kind === 'group' && hi.gi === gi);
    if (!g.expanded) return;
    ctx.font = '11px ui-sans-serif, system-ui, sans-serif';
    ctx.textBaseline = 'middle';
    ctx.textAlign = 'left';
    for (const id of g.ids) {
      const c = scene.cells.get(id);
      if (!c || !visible(c)) continue;
      const nh = scene.nodeHealth.get(id) ?? 'unknown';
      ctx.fillStyle = pal.nodeFill;
      ctx.fillRect(c.x, c.y, c.w, c.h);
      if (nh !== 'up') {
        ctx.globalAlpha = 0.28;
        ctx.fillStyle = HEALTH_COLOR[nh];
        ctx.fillRect(c.x, c.y, c.w, c.h);
        ctx.globalAlpha = 1;
      }
      ctx.lineWidth = 1.5 * px;
      ctx.strokeStyle = HEALTH_COLOR[scene.agentHealth.get(id) ?? 'unknown'];
      ctx.strokeRect(c.x, c.y, c.w, c.h);
      ctx.fillStyle = HEALTH_COLOR[nh];
      ctx.fillRect(c.x + 5, c.y + c.h / 2 - 4, 8, 8);
      ctx.fillStyle = pal.label;
      ctx.fillText(id, c.x + 17, c.y + c.h / 2, c.w - 20);
    }
  });
  // Connections that are not healthy always; healthy ones only for the highlighted group or host (dozens of
  // them would cross the tiles and hide the names). Highlighted ones last, on top.
  for (const pass of [false, true]) {
    for (const e of scene.drawn) {
      const mine = hiEnd !== undefined && (e.ea === hiEnd || e.eb === hiEnd);
      const healthy = e.health === 'up';
      if (mine !== pass || (healthy && !mine)) continue;
      const w = e.hostLevel ? 1.5 : edgeWidth(e.bytesPerS, scene.busiest, 6);
      stroke(
        e,
        healthy ? w : Math.max(2.5, w),
        healthy ? 0.9 : mine ? 1 : 0.8,
        healthy ? pal.highlight : HEALTH_COLOR[e.health],
      );
    }
  }
  ctx.setLineDash([]);
  ctx.globalAlpha = 1;
  if (hiId) {
    const c = scene.cells.get(hiId);
    if (c) {
      ctx.strokeStyle = pal.highlight;
      ctx.lineWidth = 2 * px;
      ctx.strokeRect(c.x - 2, c.y - 2, c.w + 4, c.h + 4);
    }
  }
  return true;
}

/** Problem text on a tinted tile: the offline red is too dark to read on it. */
function textColor(h: Health): string {
  return h === 'offline' ? '#ff7b72' : HEALTH_COLOR[h];
}

function drawGroup(
  ctx: CanvasRenderingContext2D,
  g: Group,
  s: GroupStats,
  pal: Palette,
  px: number,
  focused: boolean,
): void {
  const r = g.rect;
  const color = HEALTH_COLOR[s.health];
  ctx.fillStyle = pal.nodeFill;
  ctx.fillRect(r.x, r.y, r.w, r.h);
  if (s.problem) {
    // A group in trouble is tinted and framed thick in its worst colour: found at a glance among dozens.
    ctx.globalAlpha = 0.2;
    ctx.fillStyle = color;
    ctx.fillRect(r.x, r.y, r.w, g.expanded ? TILE.header : r.h);
    ctx.globalAlpha = 1;
  }
  ctx.strokeStyle = focused ? pal.highlight : s.problem ? color : pal.grid;
  ctx.lineWidth = (focused ? 2.5 : s.problem ? 3 : 1) * px;
  ctx.strokeRect(r.x, r.y, r.w, r.h);
  const n = g.ids.length;
  ctx.textBaseline = 'alphabetic';
  ctx.textAlign = 'left';
  ctx.font = '600 12px ui-sans-serif, system-ui, sans-serif';
  ctx.fillStyle = pal.label;
  const head = `${g.expanded ? '▾' : '▸'} ${g.key}`;
  const count = `${n} host${n === 1 ? '' : 's'}`;
  ctx.fillText(head, r.x + 8, r.y + 18, r.w - 80);
  ctx.font = '11px ui-sans-serif, system-ui, sans-serif';
  ctx.textAlign = 'right';
  ctx.fillStyle = pal.muted;
  ctx.fillText(count, r.x + r.w - 8, r.y + 18);
  ctx.textAlign = 'left';
  const problems = problemsText(s);
  if (g.expanded) {
    if (problems) {
      ctx.fillStyle = textColor(s.health);
      ctx.font = '600 11px ui-sans-serif, system-ui, sans-serif';
      ctx.fillText(problems, r.x + 8 + Math.min(r.w / 3, ctx.measureText(head).width + 40), r.y + 18);
    }
    return;
  }
  ctx.font = `${problems ? '600 ' : ''}11px ui-sans-serif, system-ui, sans-serif`;
  ctx.fillStyle = problems ? textColor(s.health) : pal.muted;
  ctx.fillText(problems || 'all ok', r.x + 8, r.y + 38, r.w - 16);
  ctx.font = '11px ui-sans-serif, system-ui, sans-serif';
  ctx.fillStyle = pal.muted;
  if (s.linksDown)
    ctx.fillText(
      `${s.linksDown} link end${s.linksDown === 1 ? '' : 's'} not up`,
      r.x + 8,
      r.y + 54,
      r.w - 16,
    );
  // health bar: the share of hosts in each state
  const bx = r.x + 8;
  const bw = r.w - 16;
  const by = r.y + r.h - 14;
  let x = bx;
  for (const h of HOST_HEALTHS) {
    const c = s[h];
    if (!c) continue;
    const w = (bw * c) / n;
    ctx.fillStyle = HEALTH_COLOR[h === 'ok' ? 'up' : h];
    ctx.fillRect(x, by, Math.max(w, 2 * px), 6);
    x += w;
  }
}

export interface TopologyProps {
  nodes: readonly OverviewNode[];
  links: readonly OverviewLink[];
  height?: number;
}

/**
 * Cluster topology on a canvas: nodes sorted by id on a circle (few) or a grid (hundreds), edges coloured by
 * the worse link state of the pair and as wide as their throughput. Beyond GRAPH_MAX_NODES hosts are grouped
 * (by their `rack` label, else their name prefix) into collapsed tiles with their worst state and problem
 * counts; a click or Enter expands a group into its hosts. The view pans (drag, Shift+arrows) and zooms
 * (wheel, + / -, 0 resets), redrawn once per animation frame without React renders.
 */
export const Topology = memo(function Topology({ nodes, links, height = 420 }: TopologyProps) {
  const router = useRouter();
  const boxRef = useRef<HTMLDivElement>(null);
  const canvasRef = useRef<HTMLCanvasElement>(null);
  const tipRef = useRef<HTMLDivElement>(null);
  const size = useCanvasSize(boxRef, canvasRef, height);
  const pal = usePalette();
  const order = useStable(useMemo(() => nodeOrder(nodes, links), [nodes, links]));
  const keys = useStable(useMemo(() => groupKeys(order, nodes), [order, nodes]));
  const [expanded, setExpanded] = useState<ReadonlySet<string>>(() => new Set());
  const layout = useMemo(() => buildLayout(order, keys, expanded, size), [order, keys, expanded, size]);
  const scene = useMemo(() => buildScene(layout, nodes, links), [layout, nodes, links]);
  const items = useMemo(() => itemsOf(scene), [scene]);
  const [hover, setHover] = useState<Hover>(null);
  const [focusItem, setFocusItem] = useState<Item | undefined>(undefined);
  const focusIdx = focusItem ? items.findIndex((it) => sameItem(it, focusItem)) : -1;
  const focused = focusIdx >= 0 ? items[focusIdx] : undefined;
  const nodesById = useMemo(() => new Map(nodes.map((n) => [n.id, n])), [nodes]);

  // ── drawing: the latest inputs live in a ref; any change schedules one draw on the next animation frame
  const cam = useRef<Camera>({ x: 0, y: 0, k: 1 });
  const frame = useRef({ scene, size, pal, hi: undefined as Item | undefined });
  const raf = useRef(0);
  const drewData = useRef(false);
  const requestDraw = useCallback(() => {
    if (raf.current) return;
    raf.current = requestAnimationFrame(() => {
      raf.current = 0;
      const f = frame.current;
      if (!draw(canvasRef.current, f.scene, f.size, cam.current, f.pal, f.hi)) return;
      window.__rdmaqTopologyDraws = (window.__rdmaqTopologyDraws ?? 0) + 1;
      if (!drewData.current && f.scene.order.length > 0) {
        drewData.current = true;
        performance.mark(FIRST_DATA_DRAW_MARK, { detail: { nodes: f.scene.order.length } });
      }
    });
  }, []);
  useEffect(() => () => cancelAnimationFrame(raf.current), []);
  const hiItem: Item | undefined =
    hover?.kind === 'node'
      ? { kind: 'host', id: hover.id }
      : hover?.kind === 'group'
        ? { kind: 'group', gi: hover.gi }
        : focused;
  useEffect(() => {
    frame.current = { scene, size, pal, hi: hiItem };
    requestDraw();
  });

  // A new mode, or a grouped drawing taller than the box: start from a view that shows it all (zoomed out
  // down to half size), then the operator's pan and zoom are kept across hub frames.
  const fitKey = `${scene.mode}:${size.width}:${size.height}`;
  const fitted = useRef('');
  const fit = () => {
    const k = scene.mode === 'grouped' ? Math.max(0.5, Math.min(1, size.height / scene.height)) : 1;
    cam.current = { x: scene.mode === 'grouped' ? (size.width * (1 - k)) / 2 : 0, y: 0, k };
  };
  if (fitted.current !== fitKey && size.width > 0 && scene.order.length > 0) {
    fitted.current = fitKey;
    fit();
  }

  // Keyboard focus follows into view.
  // (keyed on the focused item and the layout, not on hub frames: a pan away from it is kept)
  const focusKey = focused ? (focused.kind === 'group' ? `g${focused.gi}` : `h${focused.id}`) : '';
  useEffect(() => {
    if (!focusKey) return;
    const id = focusKey.slice(1);
    const r =
      focusKey[0] === 'g'
        ? layout.groups[Number(id)]?.rect
        : (layout.cells.get(id) ??
          (() => {
            const p = layout.pos.get(id);
            const rr = layout.radius + 8;
            return p ? { x: p.x - rr, y: p.y - rr, w: 2 * rr, h: 2 * rr } : undefined;
          })());
    if (!r) return;
    const show = { ...r, h: Math.min(r.h, TILE.header + 2 * TILE.hostH) };
    const next = panToShow(cam.current, show, size);
    if (next !== cam.current) {
      cam.current = next;
      requestDraw();
    }
  }, [focusKey, layout, size, requestDraw]);

  // Wheel zoom around the pointer (a native listener: React's wheel handlers are passive).
  useEffect(() => {
    const c = canvasRef.current;
    if (!c) return;
    const onWheel = (ev: WheelEvent) => {
      ev.preventDefault();
      const r = c.getBoundingClientRect();
      const unit = ev.deltaMode === 1 ? 16 : ev.deltaMode === 2 ? 400 : 1;
      cam.current = zoomAt(
        cam.current,
        { x: ev.clientX - r.left, y: ev.clientY - r.top },
        Math.exp(-ev.deltaY * unit * 0.0015),
      );
      requestDraw();
    };
    c.addEventListener('wheel', onWheel, { passive: false });
    return () => c.removeEventListener('wheel', onWheel);
  }, [requestDraw]);

  const hitTest = (screen: Point): Hover => {
    const p = toWorld(cam.current, screen);
    const tol = 5 / cam.current.k;
    if (scene.mode === 'grouped') {
      for (const [id, c] of scene.cells) if (inRect(p, c)) return { kind: 'node', id };
      for (let gi = 0; gi < scene.groups.length; gi++) {
        const g = scene.groups[gi]!;
        if (inRect(p, g.rect) && (!g.expanded || p.y < g.rect.y + TILE.header)) return { kind: 'group', gi };
        if (inRect(p, g.rect)) return null;
      }
    } else {
      const id = nearest(scene.pos, p, scene.radius + 4 / cam.current.k);
      if (id) return { kind: 'node', id };
    }
    let best: DrawnEdge | undefined;
    let bestD = tol;
    for (const e of scene.drawn) {
      if (scene.mode === 'grouped' && e.hostLevel && e.health === 'up') continue; // not drawn
      const d = distToSegment(p, e.pa, e.pb);
      if (d < bestD) {
        bestD = d;
        best = e;
      }
    }
    return best ? { kind: 'edge', edge: best } : null;
  };
  const sameHover = (a: Hover, b: Hover) =>
    a === b ||
    (a !== null &&
      b !== null &&
      ((a.kind === 'node' && b.kind === 'node' && a.id === b.id) ||
        (a.kind === 'group' && b.kind === 'group' && a.gi === b.gi) ||
        (a.kind === 'edge' && b.kind === 'edge' && a.edge.ea === b.edge.ea && a.edge.eb === b.edge.eb)));

  const toggleGroup = (gi: number) => {
    const g = scene.groups[gi];
    if (!g) return;
    setExpanded((s) => {
      const n = new Set(s);
      if (n.has(g.key)) n.delete(g.key);
      else n.add(g.key);
      return n;
    });
  };
  const activate = (h: Hover) => {
    if (h?.kind === 'node') router.push(`/nodes/${encodeURIComponent(h.id)}`);
    else if (h?.kind === 'group') toggleGroup(h.gi);
    else if (h?.kind === 'edge' && h.edge.count === 1 && h.edge.links[0])
      router.push(`/links/${encodeURIComponent(h.edge.links[0].key)}`);
  };

  // ── pointer: drag pans (no React state per move), a click without a drag activates what is under it
  const drag = useRef<{ id: number; x: number; y: number; cx: number; cy: number; moved: boolean } | null>(
    null,
  );
  const local = (ev: PointerEvent<HTMLCanvasElement>): Point => {
    const r = ev.currentTarget.getBoundingClientRect();
    return { x: ev.clientX - r.left, y: ev.clientY - r.top };
  };
  const placeTip = (p: Point) => {
    const t = tipRef.current;
    if (!t) return;
    t.style.left = `${Math.max(0, Math.min(p.x + 14, size.width - 260))}px`;
    t.style.top = `${p.y + 14}px`;
  };
  const lastPointer = useRef<Point>({ x: 0, y: 0 });
  const onPointerDown = (ev: PointerEvent<HTMLCanvasElement>) => {
    if (ev.button !== 0) return;
    const p = local(ev);
    drag.current = { id: ev.pointerId, x: p.x, y: p.y, cx: cam.current.x, cy: cam.current.y, moved: false };
  };
  const onPointerMove = (ev: PointerEvent<HTMLCanvasElement>) => {
    const p = local(ev);
    lastPointer.current = p;
    const d = drag.current;
    if (d && d.id === ev.pointerId) {
      if (!d.moved && Math.hypot(p.x - d.x, p.y - d.y) > 3) {
        d.moved = true;
        ev.currentTarget.setPointerCapture(ev.pointerId);
        ev.currentTarget.style.cursor = 'grabbing';
        if (hover) setHover(null);
      }
      if (d.moved) {
        cam.current = { ...cam.current, x: d.cx + p.x - d.x, y: d.cy + p.y - d.y };
        requestDraw();
        return;
      }
    }
    const h = hitTest(p);
    if (!sameHover(h, hover)) setHover(h);
    placeTip(p);
    ev.currentTarget.style.cursor = h ? 'pointer' : 'grab';
  };
  const onPointerUp = (ev: PointerEvent<HTMLCanvasElement>) => {
    const d = drag.current;
    drag.current = null;
    if (!d || d.id !== ev.pointerId) return;
    if (d.moved) {
      ev.currentTarget.releasePointerCapture(ev.pointerId);
      ev.currentTarget.style.cursor = 'grab';
      return;
    }
    activate(hitTest(local(ev)));
  };
  useEffect(() => {
    if (hover) placeTip(lastPointer.current);
  });

  const onKey = (ev: KeyboardEvent<HTMLCanvasElement>) => {
    const n = items.length;
    if (n === 0) return;
    const step = 60;
    const pan = (dx: number, dy: number) => {
      cam.current = { ...cam.current, x: cam.current.x + dx, y: cam.current.y + dy };
      requestDraw();
      ev.preventDefault();
    };
    const centre = { x: size.width / 2, y: size.height / 2 };
    if (ev.shiftKey && ev.key.startsWith('Arrow')) {
      if (ev.key === 'ArrowLeft') pan(step, 0);
      else if (ev.key === 'ArrowRight') pan(-step, 0);
      else if (ev.key === 'ArrowUp') pan(0, step);
      else pan(0, -step);
    } else if (ev.key === '+' || ev.key === '=') {
      cam.current = zoomAt(cam.current, centre, 1.25);
      requestDraw();
      ev.preventDefault();
    } else if (ev.key === '-' || ev.key === '_') {
      cam.current = zoomAt(cam.current, centre, 0.8);
      requestDraw();
      ev.preventDefault();
    } else if (ev.key === '0') {
      fit();
      requestDraw();
      ev.preventDefault();
    } else if (ev.key === 'ArrowRight' || ev.key === 'ArrowDown') {
      setFocusItem(items[(focusIdx + 1) % n]);
      ev.preventDefault();
    } else if (ev.key === 'ArrowLeft' || ev.key === 'ArrowUp') {
      setFocusItem(items[focusIdx <= 0 ? n - 1 : focusIdx - 1]);
      ev.preventDefault();
    } else if (ev.key === 'Home') {
      setFocusItem(items[0]);
      ev.preventDefault();
    } else if (ev.key === 'End') {
      setFocusItem(items[n - 1]);
      ev.preventDefault();
    } else if (ev.key === 'Enter' && focused) {
      if (focused.kind === 'group') toggleGroup(focused.gi);
      else router.push(`/nodes/${encodeURIComponent(focused.id)}`);
      ev.preventDefault();
    } else if ((ev.key === 'Escape' || ev.key === 'Backspace') && focused?.kind === 'host') {
      const gi = scene.groupOf.get(focused.id);
      if (gi !== undefined) {
        toggleGroup(gi);
        setFocusItem({ kind: 'group', gi });
        ev.preventDefault();
      }
    }
  };

  const downEdges = scene.edges.filter((e) => e.health !== 'up').length;
  const problemGroups = scene.groups.map((g, gi) => ({ g, s: scene.stats[gi]! })).filter((x) => x.s.problem);
  const summary =
    scene.mode === 'grouped'
      ? `Cluster topology: ${scene.order.length} nodes in ${scene.groups.length} groups (${expanded.size} expanded), ${scene.edges.length} connections, ${downEdges} not healthy. ${
          problemGroups.length
            ? `Groups with problems: ${problemGroups
                .slice(0, 8)
                .map((x) => `${x.g.key} (${problemsText(x.s)})`)
                .join(', ')}${problemGroups.length > 8 ? ` and ${problemGroups.length - 8} more` : ''}. `
            : 'No group has a problem. '
        }Arrow keys move between groups and hosts, Enter expands a group or opens a host, Escape collapses; Shift+arrows pan, + and - zoom, 0 resets the view.`
      : `Cluster topology: ${scene.order.length} nodes, ${scene.edges.length} connections, ${downEdges} not healthy. Use arrow keys to move between nodes and Enter to open one; Shift+arrows pan, + and - zoom, 0 resets the view.`;
  const focusedNode = focused?.kind === 'host' ? nodesById.get(focused.id) : undefined;
  let live = '';
  if (focused?.kind === 'host') {
    live = `${focused.id}: ${focusedNode ? (focusedNode.connected ? 'agent connected' : 'agent offline') : 'not reporting'}, ${
      focusedNode ? `${focusedNode.linksUp} of ${focusedNode.linkCount} links up` : ''
    }`;
  } else if (focused?.kind === 'group') {
    const g = scene.groups[focused.gi]!;
    const s = scene.stats[focused.gi]!;
    live = `group ${g.key}: ${g.ids.length} hosts, ${problemsText(s) || 'all ok'}, ${
      g.expanded ? 'expanded, Enter collapses' : 'collapsed, Enter expands'
    }`;
  }

  return (
    <div ref={boxRef} className="topology" style={{ height }}>
      <canvas
        ref={canvasRef}
        tabIndex={0}
        role="img"
        aria-label={summary}
        data-testid="topology-canvas"
        data-nodes={scene.order.length}
        data-edges={scene.edges.length}
        data-mode={scene.mode}
        data-groups={scene.groups.length}
        data-expanded={expanded.size}
        onPointerDown={onPointerDown}
        onPointerMove={onPointerMove}
        onPointerUp={onPointerUp}
        onPointerCancel={() => {
          drag.current = null;
        }}
        onPointerLeave={() => {
          if (!drag.current) setHover(null);
        }}
        onKeyDown={onKey}
        onBlur={() => setFocusItem(undefined)}
        style={{ cursor: 'grab', touchAction: 'none' }}
      />
      <div className="sr-only" aria-live="polite">
        {live}
      </div>
      {hover && (
        <div ref={tipRef} className="tooltip" role="tooltip">
          {hover.kind === 'node' ? (
            <NodeTip id={hover.id} node={nodesById.get(hover.id)} links={scene.edges} />
          ) : hover.kind === 'group' ? (
            <GroupTip group={scene.groups[hover.gi]} stats={scene.stats[hover.gi]} />
          ) : (
            <EdgeTip edge={hover.edge} scene={scene} />
          )}
        </div>
      )}
    </div>
  );
});

function NodeTip({ id, node, links }: { id: string; node: OverviewNode | undefined; links: Edge[] }) {
  const mine = links.filter((e) => e.a === id || e.b === id);
  const bad = mine.filter((e) => e.health !== 'up').length;
  const labels = node?.labels ? Object.entries(node.labels) : [];
  return (
    <>
      <strong>{id}</strong>
      <div>{node ? agentLine(node) : 'no agent reporting'}</div>
      {node && (
        <div>
          {node.linksUp}/{node.linkCount} links up
          {node.linksDownByPeer ? ` (${node.linksDownByPeer} down by their peer)` : ''}
        </div>
      )}
      <div>
        {mine.length} peers{bad ? `, ${bad} unhealthy` : ''}
      </div>
      {labels.length > 0 && <div>{labels.map(([k, v]) => `${k}=${v}`).join(' · ')}</div>}
    </>
  );
}

function GroupTip({ group, stats }: { group: Group | undefined; stats: GroupStats | undefined }) {
  if (!group || !stats) return null;
  return (
    <>
      <strong>{group.key}</strong>
      <div>
        {group.ids.length} hosts: {stats.ok} ok
        {stats.degraded ? `, ${stats.degraded} degraded` : ''}
        {stats.down ? `, ${stats.down} down` : ''}
        {stats.stale ? `, ${stats.stale} stale` : ''}
        {stats.offline ? `, ${stats.offline} offline` : ''}
        {stats.unknown ? `, ${stats.unknown} not reporting` : ''}
      </div>
      {stats.linksDown > 0 && <div>{stats.linksDown} link ends not up</div>}
      <div>{group.expanded ? 'click to collapse' : 'click to expand'}</div>
    </>
  );
}

function agentLine(n: OverviewNode): string {
  const f = n.freshness ?? (n.connected ? 'fresh' : 'offline');
  if (f === 'fresh') return 'agent reporting';
  const since = n.lastDataAt ? ` · last sample ${new Date(n.lastDataAt).toISOString().slice(11, 19)}Z` : '';
  return f === 'stale' ? `agent silent: figures frozen${since}` : `agent offline${since}`;
}

function endName(scene: Scene, end: string): string {
  return end[0] === '\u0001' ? (scene.groups[Number(end.slice(1))]?.key ?? end) : end;
}

const EDGE_TIP_MAX = 8;

function EdgeTip({ edge, scene }: { edge: DrawnEdge; scene: Scene }) {
  // Aggregated edges list their unhealthy ends first, at most a few.
  const list =
    edge.links.length > EDGE_TIP_MAX
      ? [...edge.links]
          .sort((x, y) => (linkEndHealth(x) === 'up' ? 1 : 0) - (linkEndHealth(y) === 'up' ? 1 : 0))
          .slice(0, EDGE_TIP_MAX)
      : edge.links;
  return (
    <>
      <strong>
        {endName(scene, edge.ea)} ⇄ {endName(scene, edge.eb)}
      </strong>
      <div>
        {formatBitRate(edge.bytesPerS)}
        {edge.count > 1 ? ` · ${edge.count} host pairs, ${edge.links.length} link ends` : ''}
      </div>
      {list.map((l) => (
        <div key={l.key}>
          <span style={{ color: HEALTH_COLOR[linkEndHealth(l)] }}>●</span> {l.node} {l.direction} {l.id}{' '}
          {l.freshness === 'stale' || l.freshness === 'offline'
            ? `${l.state} (frozen: ${l.node} ${l.freshness})`
            : l.state}
          {l.blame && l.blame !== l.node ? ` · cause: ${l.blame}` : ''}
          {l.direction === 'rx' ? ` · p99 ${formatNs(l.p99Ns)} · ring ${formatPercent(l.occupancy)}` : ''}
        </div>
      ))}
      {edge.links.length > list.length && <div>… {edge.links.length - list.length} more</div>}
    </>
  );
}
