'use client';
import type { LinkSummary, NodeSummary } from '@rdmaq/shared';
import { useRouter } from 'next/navigation';
import { type KeyboardEvent, type MouseEvent, memo, useEffect, useMemo, useRef, useState } from 'react';
import { HEALTH_COLOR, type Health, linkEndHealth, nodeHealth, worseHealth } from '../lib/ui/colors';
import { formatBitRate, formatNs, formatPercent } from '../lib/ui/format';
import {
  CIRCLE_MAX_NODES,
  edgeWidth,
  GRAPH_MAX_NODES,
  gridShape,
  groupIds,
  nearest,
  type Point,
  pairKey,
  type Size,
  sortIds,
  topologyLayout,
} from '../lib/ui/layout';
import { usePalette } from './theme';
import { prepareContext, useCanvasSize } from './useCanvas';

interface Edge {
  a: string;
  b: string;
  bytesPerS: number;
  health: Health;
  links: LinkSummary[];
}

interface Layout {
  mode: 'graph' | 'grouped';
  order: string[];
  pos: Map<string, Point>;
  radius: number;
  /** grouped mode: cell rectangles and group label positions */
  cells: Map<string, { x: number; y: number; s: number }>;
  labels: Array<{ text: string; x: number; y: number; w: number }>;
}

interface Scene extends Layout {
  edges: Edge[];
  busiest: number;
  /** Worst of the host's links (the hub's node health): the filled dot / the grouped cell. */
  nodeHealth: Map<string, Health>;
  /** The agent's own connection: the ring around the dot. */
  agentHealth: Map<string, Health>;
}

/** Every node id, sorted: reporting nodes and the peers their links name (drawn as unknown until they report). */
function nodeOrder(nodes: readonly NodeSummary[], links: readonly LinkSummary[]): string[] {
  const ids = new Set<string>();
  for (const n of nodes) ids.add(n.id);
  for (const l of links) {
    ids.add(l.node);
    ids.add(l.peer);
  }
  return sortIds(ids);
}

/** Positions depend only on the sorted ids and the box, so they are computed once, not per hub frame. */
function buildLayout(order: string[], size: Size): Layout {
  const cells = new Map<string, { x: number; y: number; s: number }>();
  const labels: Layout['labels'] = [];
  if (order.length <= GRAPH_MAX_NODES) {
    const pos = topologyLayout(order, size);
    const radius =
      order.length <= CIRCLE_MAX_NODES
        ? Math.max(6, Math.min(16, 180 / Math.max(1, order.length)))
        : Math.max(3, Math.min(10, gridShape(order.length, size).cell / 4));
    return { mode: 'graph', order, pos, radius, cells, labels };
  }
  // Grouped view: one block per group (rack, name prefix), one small cell per host. Thousands of hosts fit
  // on one screen and stay clickable.
  const groups = groupIds(order);
  const pos = new Map<string, Point>();
  const shape = gridShape(groups.length, size);
  const pad = 6;
  const labelH = 14;
  groups.forEach((g, gi) => {
    const bx = (gi % shape.cols) * shape.cell;
    const by = Math.floor(gi / shape.cols) * shape.cell;
    const inner = { width: shape.cell - 2 * pad, height: shape.cell - 2 * pad - labelH };
    const sub = gridShape(g.ids.length, inner);
    labels.push({ text: g.key, x: bx + pad, y: by + pad + 10, w: shape.cell - 2 * pad });
    g.ids.forEach((id, i) => {
      const s = sub.cell;
      const x = bx + pad + (i % sub.cols) * s;
      const y = by + pad + labelH + Math.floor(i / sub.cols) * s;
      cells.set(id, { x, y, s });
      pos.set(id, { x: x + s / 2, y: y + s / 2 });
    });
  });
  return { mode: 'grouped', order, pos, radius: 0, cells, labels };
}

/** Per hub frame: edge aggregation and colours on top of the (cached) layout. */
function buildScene(layout: Layout, nodes: readonly NodeSummary[], links: readonly LinkSummary[]): Scene {
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const edgeMap = new Map<string, Edge & { rx: number; tx: number; hasRx: boolean }>();
  for (const l of links) {
    const k = pairKey(l.node, l.peer);
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
  const busiest = edges.reduce((m, e) => Math.max(m, e.bytesPerS), 0);
  const agentHealth = new Map<string, Health>();
  const nodeHealthMap = new Map<string, Health>();
  for (const id of layout.order) {
    const n = byId.get(id);
    // The ring: is the agent's data current? (an open connection that sends nothing is not)
    const f = n?.freshness ?? (n?.connected ? 'fresh' : 'offline');
    agentHealth.set(id, n ? (f === 'fresh' ? 'up' : f) : 'unknown');
    nodeHealthMap.set(id, n ? nodeHealth(n.health) : 'unknown');
  }
  return { ...layout, edges, busiest, nodeHealth: nodeHealthMap, agentHealth };
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

type Hover = { kind: 'node'; id: string; at: Point } | { kind: 'edge'; edge: Edge; at: Point } | null;

export interface TopologyProps {
  nodes: readonly NodeSummary[];
  links: readonly LinkSummary[];
  height?: number;
}

/**
 * Cluster topology on a canvas: nodes sorted by id on a circle (few) or a grid (hundreds), edges coloured by
 * the worse link state of the pair and as wide as their throughput; beyond GRAPH_MAX_NODES a grouped cell
 * view. Keyboard: focus the canvas, arrows walk the nodes in id order, Enter opens the focused node.
 */
export const Topology = memo(function Topology({ nodes, links, height = 420 }: TopologyProps) {
  const router = useRouter();
  const boxRef = useRef<HTMLDivElement>(null);
  const canvasRef = useRef<HTMLCanvasElement>(null);
  const size = useCanvasSize(boxRef, canvasRef, height);
  const pal = usePalette();
  const order = useStable(useMemo(() => nodeOrder(nodes, links), [nodes, links]));
  const layout = useMemo(() => buildLayout(order, size), [order, size]);
  const scene = useMemo(() => buildScene(layout, nodes, links), [layout, nodes, links]);
  const [hover, setHover] = useState<Hover>(null);
  const [focusIdx, setFocusIdx] = useState(-1);
  const focused = focusIdx >= 0 ? scene.order[focusIdx] : undefined;
  const nodesById = useMemo(() => new Map(nodes.map((n) => [n.id, n])), [nodes]);

  useEffect(() => {
    const ctx = prepareContext(canvasRef.current, size);
    if (!ctx) return;
    const { pos } = scene;
    if (scene.mode === 'graph') {
      // Healthy edges first so problems are drawn on top.
      const dense = scene.order.length > CIRCLE_MAX_NODES;
      const edges = [...scene.edges].sort(
        (x, y) => (x.health === 'up' ? 0 : 1) - (y.health === 'up' ? 0 : 1),
      );
      for (const e of edges) {
        const a = pos.get(e.a);
        const b = pos.get(e.b);
        if (!a || !b) continue;
        ctx.strokeStyle = HEALTH_COLOR[e.health];
        // On a grid many straight edges cross other nodes: healthy ones recede so the problems stand out.
        const healthy = e.health === 'up';
        ctx.globalAlpha = healthy ? (dense ? 0.22 : 0.75) : 0.95;
        ctx.lineWidth = dense
          ? healthy
            ? edgeWidth(e.bytesPerS, scene.busiest, 4)
            : Math.max(2.5, edgeWidth(e.bytesPerS, scene.busiest, 4))
          : edgeWidth(e.bytesPerS, scene.busiest);
        ctx.setLineDash(e.health === 'down' ? [6, 4] : []);
        ctx.beginPath();
        ctx.moveTo(a.x, a.y);
        ctx.lineTo(b.x, b.y);
        ctx.stroke();
      }
      ctx.setLineDash([]);
      ctx.globalAlpha = 1;
      const r = scene.radius;
      const showLabels = scene.order.length <= CIRCLE_MAX_NODES;
      ctx.font = '12px ui-sans-serif, system-ui, sans-serif';
      ctx.textBaseline = 'middle';
      for (const id of scene.order) {
        const p = pos.get(id);
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
    } else {
      ctx.font = '11px ui-sans-serif, system-ui, sans-serif';
      ctx.textBaseline = 'alphabetic';
      ctx.textAlign = 'left';
      ctx.fillStyle = pal.muted;
      for (const l of scene.labels) ctx.fillText(l.text, l.x, l.y, l.w);
      for (const id of scene.order) {
        const c = scene.cells.get(id);
        if (!c) continue;
        ctx.fillStyle = HEALTH_COLOR[scene.nodeHealth.get(id) ?? 'unknown'];
        const gap = c.s > 6 ? 1 : 0;
        ctx.fillRect(c.x, c.y, c.s - gap, c.s - gap);
      }
      // Only the unhealthy connections are drawn over the cells (thousands of healthy ones would be noise),
      // plus every connection of the host under the pointer or focus.
      const hiId = hover?.kind === 'node' ? hover.id : focused;
      for (const e of scene.edges) {
        const mine = hiId !== undefined && (e.a === hiId || e.b === hiId);
        if (e.health === 'up' && !mine) continue;
        const a = pos.get(e.a);
        const b = pos.get(e.b);
        if (!a || !b) continue;
        ctx.strokeStyle = mine && e.health === 'up' ? pal.highlight : HEALTH_COLOR[e.health];
        ctx.globalAlpha = 0.9;
        ctx.lineWidth = 1.5;
        ctx.setLineDash(e.health === 'down' ? [4, 3] : []);
        ctx.beginPath();
        ctx.moveTo(a.x, a.y);
        ctx.lineTo(b.x, b.y);
        ctx.stroke();
      }
      ctx.setLineDash([]);
      ctx.globalAlpha = 1;
    }
    const hi = hover?.kind === 'node' ? hover.id : focused;
    if (hi) {
      const p = pos.get(hi);
      if (p) {
        ctx.strokeStyle = pal.highlight;
        ctx.lineWidth = 2;
        ctx.beginPath();
        const rr = scene.mode === 'graph' ? scene.radius + 5 : (scene.cells.get(hi)?.s ?? 6) / 2 + 3;
        ctx.arc(p.x, p.y, rr, 0, 2 * Math.PI);
        ctx.stroke();
      }
    }
  }, [scene, size, hover, focused, pal]);

  const pointer = (ev: MouseEvent<HTMLCanvasElement>): Point => {
    const r = ev.currentTarget.getBoundingClientRect();
    return { x: ev.clientX - r.left, y: ev.clientY - r.top };
  };
  const hitTest = (p: Point): Hover => {
    if (scene.mode === 'grouped') {
      for (const [id, c] of scene.cells) {
        if (p.x >= c.x && p.x < c.x + c.s && p.y >= c.y && p.y < c.y + c.s)
          return { kind: 'node', id, at: p };
      }
      return null;
    }
    const id = nearest(scene.pos, p, scene.radius + 4);
    if (id) return { kind: 'node', id, at: p };
    let best: Edge | undefined;
    let bestD = 5;
    for (const e of scene.edges) {
      const a = scene.pos.get(e.a);
      const b = scene.pos.get(e.b);
      if (!a || !b) continue;
      const d = distToSegment(p, a, b);
      if (d < bestD) {
        bestD = d;
        best = e;
      }
    }
    return best ? { kind: 'edge', edge: best, at: p } : null;
  };
  const onMove = (ev: MouseEvent<HTMLCanvasElement>) => setHover(hitTest(pointer(ev)));
  const onClick = (ev: MouseEvent<HTMLCanvasElement>) => {
    const h = hitTest(pointer(ev));
    if (h?.kind === 'node') router.push(`/nodes/${encodeURIComponent(h.id)}`);
    else if (h?.kind === 'edge' && h.edge.links[0])
      router.push(`/links/${encodeURIComponent(h.edge.links[0].key)}`);
  };
  const onKey = (ev: KeyboardEvent<HTMLCanvasElement>) => {
    const n = scene.order.length;
    if (n === 0) return;
    if (ev.key === 'ArrowRight' || ev.key === 'ArrowDown') {
      setFocusIdx((i) => (i + 1) % n);
      ev.preventDefault();
    } else if (ev.key === 'ArrowLeft' || ev.key === 'ArrowUp') {
      setFocusIdx((i) => (i <= 0 ? n - 1 : i - 1));
      ev.preventDefault();
    } else if (ev.key === 'Home') {
      setFocusIdx(0);
      ev.preventDefault();
    } else if (ev.key === 'End') {
      setFocusIdx(n - 1);
      ev.preventDefault();
    } else if (ev.key === 'Enter' && focused) {
      router.push(`/nodes/${encodeURIComponent(focused)}`);
    }
  };

  const downEdges = scene.edges.filter((e) => e.health !== 'up').length;
  const summary = `Cluster topology: ${scene.order.length} nodes, ${scene.edges.length} connections, ${downEdges} not healthy. ${
    scene.mode === 'grouped' ? 'Grouped view. ' : ''
  }Use arrow keys to move between nodes and Enter to open one.`;
  const focusedNode = focused ? nodesById.get(focused) : undefined;

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
        onMouseMove={onMove}
        onMouseLeave={() => setHover(null)}
        onClick={onClick}
        onKeyDown={onKey}
        onBlur={() => setFocusIdx(-1)}
        style={{ cursor: hover ? 'pointer' : 'default' }}
      />
      <div className="sr-only" aria-live="polite">
        {focused
          ? `${focused}: ${focusedNode ? (focusedNode.connected ? 'agent connected' : 'agent offline') : 'not reporting'}, ${
              focusedNode ? `${focusedNode.linksUp} of ${focusedNode.linkCount} links up` : ''
            }`
          : ''}
      </div>
      {hover && (
        <div
          className="tooltip"
          style={{ left: Math.min(hover.at.x + 14, size.width - 240), top: hover.at.y + 14 }}
          role="tooltip"
        >
          {hover.kind === 'node' ? (
            <NodeTip id={hover.id} node={nodesById.get(hover.id)} links={scene.edges} />
          ) : (
            <EdgeTip edge={hover.edge} />
          )}
        </div>
      )}
    </div>
  );
});

function NodeTip({ id, node, links }: { id: string; node: NodeSummary | undefined; links: Edge[] }) {
  const mine = links.filter((e) => e.a === id || e.b === id);
  const bad = mine.filter((e) => e.health !== 'up').length;
  return (
    <>
      <strong>{id}</strong>
      <div>{node ? agentLine(node) : 'no agent reporting'}</div>
      {node && (
        <div>
          {node.linksUp}/{node.linkCount} links up
          {node.linksDownByPeer ? ` (${node.linksDownByPeer} down by their peer)` : ''}
          {node.cpuPercent !== null ? ` · CPU ${node.cpuPercent.toFixed(0)} %` : ''}
        </div>
      )}
      <div>
        {mine.length} peers{bad ? `, ${bad} unhealthy` : ''}
      </div>
    </>
  );
}

function agentLine(n: NodeSummary): string {
  const f = n.freshness ?? (n.connected ? 'fresh' : 'offline');
  if (f === 'fresh') return 'agent reporting';
  const since = n.lastDataAt ? ` · last sample ${new Date(n.lastDataAt).toISOString().slice(11, 19)}Z` : '';
  return f === 'stale' ? `agent silent: figures frozen${since}` : `agent offline${since}`;
}

function EdgeTip({ edge }: { edge: Edge }) {
  return (
    <>
      <strong>
        {edge.a} ⇄ {edge.b}
      </strong>
      <div>{formatBitRate(edge.bytesPerS)}</div>
      {edge.links.map((l) => (
        <div key={l.key}>
          <span style={{ color: HEALTH_COLOR[linkEndHealth(l)] }}>●</span> {l.node} {l.direction} {l.id}{' '}
          {l.freshness === 'stale' || l.freshness === 'offline'
            ? `${l.state} (frozen: ${l.node} ${l.freshness})`
            : l.state}
          {l.blame && l.blame !== l.node ? ` · cause: ${l.blame}` : ''}
          {l.direction === 'rx' ? ` · p99 ${formatNs(l.p99Ns)} · ring ${formatPercent(l.occupancy)}` : ''}
        </div>
      ))}
    </>
  );
}
