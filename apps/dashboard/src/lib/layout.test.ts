import { describe, expect, it } from 'vitest';
import { occupancyColor } from './colors';
import {
  cellAt,
  circleLayout,
  edgeWidth,
  gridLayout,
  gridShape,
  groupIds,
  groupKey,
  hostGroupKey,
  inRect,
  pairKey,
  panToShow,
  ringEnds,
  sortIds,
  TILE,
  tileLayout,
  topologyLayout,
  toWorld,
  ZOOM_MAX,
  zoomAt,
} from './layout';
import { pointsForWidth } from './range';
import { paramToId } from './route';

const size = { width: 800, height: 600 };

describe('layout', () => {
  it('sorts ids naturally (node-2 before node-10)', () => {
    expect(sortIds(['node-10', 'node-2', 'node-1', 'node-2'])).toEqual(['node-1', 'node-2', 'node-10']);
  });

  it('places nodes on a circle deterministically, whatever the input order', () => {
    const a = circleLayout(['c', 'a', 'b', 'd'], size);
    const b = circleLayout(['d', 'b', 'a', 'c'], size);
    expect([...a.entries()]).toEqual([...b.entries()]);
    // first id at 12 o'clock, then clockwise: b on the right
    expect(a.get('a')!.x).toBeCloseTo(400);
    expect(a.get('a')!.y).toBeLessThan(300);
    expect(a.get('b')!.x).toBeGreaterThan(400);
    // all on one circle around the centre
    const r = (p: { x: number; y: number }) => Math.hypot(p.x - 400, p.y - 300);
    for (const p of a.values()) expect(r(p)).toBeCloseTo(r(a.get('a')!));
  });

  it('switches to a grid for many nodes and keeps every node inside the box', () => {
    const ids = Array.from({ length: 200 }, (_, i) => `h${i}`);
    const pos = topologyLayout(ids, size);
    expect(pos.size).toBe(200);
    const seen = new Set<string>();
    for (const p of pos.values()) {
      expect(p.x).toBeGreaterThan(0);
      expect(p.x).toBeLessThan(800);
      expect(p.y).toBeGreaterThan(0);
      expect(p.y).toBeLessThan(600);
      seen.add(`${Math.round(p.x)},${Math.round(p.y)}`);
    }
    expect(seen.size).toBe(200); // no two nodes on the same spot
    expect(gridLayout(ids, size)).toEqual(pos);
  });

  it('finds a grid shape that holds all cells', () => {
    for (const n of [1, 7, 64, 1000, 5000]) {
      const s = gridShape(n, { width: 1200, height: 300 });
      expect(s.cols * s.rows).toBeGreaterThanOrEqual(n);
      expect(s.cols * s.cell).toBeLessThanOrEqual(1200 + 1e-9);
      expect(s.rows * s.cell).toBeLessThanOrEqual(300 + 1e-9);
    }
    expect(gridShape(0, size).cols).toBe(0);
  });

  it('maps points back to grid cells', () => {
    expect(cellAt({ x: 25, y: 5 }, 4, 10, 10)).toBe(2);
    expect(cellAt({ x: 5, y: 15 }, 4, 10, 10)).toBe(4);
    expect(cellAt({ x: 25, y: 25 }, 4, 10, 10)).toBe(-1); // index 10 does not exist
    expect(cellAt({ x: -1, y: 0 }, 4, 10, 10)).toBe(-1);
  });

  it('groups hosts by name prefix and splits huge groups deterministically', () => {
    expect(groupKey('rack07-node113')).toBe('rack07-node');
    expect(groupKey('gpu-a-0042')).toBe('gpu-a');
    expect(groupKey('db.example.org')).toBe('db');
    const ids = [...Array.from({ length: 130 }, (_, i) => `gpu-${i}`), 'cpu-1', 'cpu-2'];
    const groups = groupIds(ids, 64);
    expect(groups.map((g) => g.ids.length)).toEqual([2, 64, 64, 2]);
    expect(groups.flatMap((g) => g.ids).sort()).toEqual([...ids].sort());
    expect(groupIds([...ids].reverse(), 64)).toEqual(groups);
  });

  it('groups by the rack label when the agent sends one, else by name prefix', () => {
    expect(hostGroupKey('gpu-17', { rack: 'r07' })).toBe('r07');
    expect(hostGroupKey('gpu-17', { zone: 'a' })).toBe('gpu');
    expect(hostGroupKey('gpu-17', { rack: '  ' })).toBe('gpu');
    expect(hostGroupKey('gpu-17')).toBe('gpu');
    const rack: Record<string, string> = { 'gpu-1': 'r2', 'gpu-2': 'r1', 'gpu-3': 'r2' };
    const groups = groupIds(['gpu-3', 'gpu-1', 'gpu-2', 'cpu-9'], 64, (id) =>
      hostGroupKey(id, { rack: rack[id] ?? '' }),
    );
    expect(groups).toEqual([
      { key: 'cpu', ids: ['cpu-9'] },
      { key: 'r1', ids: ['gpu-2'] },
      { key: 'r2', ids: ['gpu-1', 'gpu-3'] },
    ]);
  });

  it('lays collapsed groups out as tiles in rows, an expanded group on a full row with its hosts', () => {
    const ids = (k: string, n: number) => Array.from({ length: n }, (_, i) => `${k}-${i}`);
    const groups = Array.from({ length: 16 }, (_, g) => ({ ids: ids(`r${g}`, 63), expanded: false }));
    const width = 1200;
    const collapsed = tileLayout(groups, width);
    expect(collapsed.tiles).toHaveLength(16);
    expect(collapsed.hosts.size).toBe(0);
    const perRow = collapsed.tiles.filter((t) => t.y === collapsed.tiles[0]!.y).length;
    expect(perRow).toBe(Math.floor((width - 2 * TILE.pad + TILE.gap) / (TILE.w + TILE.gap)));
    for (const t of collapsed.tiles) {
      expect(t.x).toBeGreaterThanOrEqual(0);
      expect(t.x + t.w).toBeLessThanOrEqual(width);
      expect(t.w).toBeGreaterThanOrEqual(TILE.w);
    }
    // no overlaps
    for (let i = 0; i < 16; i++)
      for (let j = i + 1; j < 16; j++) {
        const a = collapsed.tiles[i]!;
        const b = collapsed.tiles[j]!;
        expect(a.x + a.w <= b.x || b.x + b.w <= a.x || a.y + a.h <= b.y || b.y + b.h <= a.y).toBe(true);
      }
    // expanding group 3: it takes a row of its own, tiles before it stay put, its 63 hosts get cells inside it
    const open = tileLayout(
      groups.map((g, i) => ({ ...g, expanded: i === 3 })),
      width,
    );
    for (let i = 0; i < 3; i++) expect(open.tiles[i]).toEqual(collapsed.tiles[i]);
    const t3 = open.tiles[3]!;
    expect(t3.x).toBe(TILE.pad);
    expect(t3.w).toBe(width - 2 * TILE.pad);
    expect(t3.y).toBeGreaterThan(open.tiles[2]!.y);
    expect(open.tiles[4]!.y).toBeGreaterThanOrEqual(t3.y + t3.h);
    expect(open.hosts.size).toBe(63);
    for (const c of open.hosts.values()) {
      expect(inRect({ x: c.x, y: c.y }, t3)).toBe(true);
      expect(inRect({ x: c.x + c.w - 0.01, y: c.y + c.h - 0.01 }, t3)).toBe(true);
    }
    expect(open.height).toBeGreaterThan(collapsed.height);
    expect(tileLayout(groups, width)).toEqual(collapsed);
  });

  it('pans and zooms around a point, clamped, and pans the least to show a rectangle', () => {
    const cam = { x: 0, y: 0, k: 1 };
    const at = { x: 200, y: 100 };
    const z = zoomAt(cam, at, 2);
    expect(z.k).toBe(2);
    // the world point under the pointer stays under it
    expect(toWorld(z, at)).toEqual(toWorld(cam, at));
    expect(zoomAt(cam, at, 1000).k).toBe(ZOOM_MAX);
    const box = { width: 800, height: 400 };
    expect(panToShow(cam, { x: 20, y: 20, w: 100, h: 50 }, box, 16)).toBe(cam);
    const down = panToShow(cam, { x: 20, y: 600, w: 100, h: 50 }, box, 16);
    expect(down.x).toBe(0);
    expect(600 + 50 + down.y).toBe(400 - 16);
    const back = panToShow({ x: -900, y: 0, k: 1 }, { x: 100, y: 20, w: 100, h: 50 }, box, 16);
    expect(100 + back.x).toBe(16);
  });

  it('draws the two directions of a connection as one edge, width by throughput', () => {
    expect(pairKey('a', 'b')).toBe(pairKey('b', 'a'));
    expect(edgeWidth(0, 100)).toBe(1);
    expect(edgeWidth(100, 100)).toBe(8);
    expect(edgeWidth(25, 100)).toBeCloseTo(1 + 7 * 0.5);
  });

  it('keeps one heatmap cell per ring (rx end, or tx end when the receiver does not report)', () => {
    const end = (node: string, peer: string, id: string, direction: 'tx' | 'rx') => ({
      key: `${node}~${id}`,
      id,
      node,
      peer,
      direction,
    });
    const links = [
      end('a', 'b', 'ab', 'tx'),
      end('b', 'a', 'ab', 'rx'),
      end('b', 'c', 'bc', 'tx'), // c does not report
    ];
    expect(ringEnds(links).map((l) => l.key)).toEqual(['b~ab', 'b~bc']);
  });

  it('colours occupancy from dark to hot and handles missing values', () => {
    expect(occupancyColor(0)).toBe('rgb(45, 51, 59)');
    expect(occupancyColor(1)).toBe('rgb(255, 123, 218)');
    expect(occupancyColor(2)).toBe(occupancyColor(1));
    expect(occupancyColor(Number.NaN)).toBe('#30363d');
    expect(occupancyColor(0.5)).toBe('rgb(210, 153, 34)');
  });

  it('sizes history requests to the chart width', () => {
    expect(pointsForWidth(600)).toBe(300);
    expect(pointsForWidth(100_000)).toBe(2000);
    expect(pointsForWidth(1)).toBe(2);
    expect(pointsForWidth(0)).toBe(300);
  });

  it('turns route params back into ids containing / and ~', () => {
    expect(paramToId(['n1~rack%2Fl0'])).toBe('n1~rack/l0');
    expect(paramToId(['n1~rack', 'l0'])).toBe('n1~rack/l0');
    expect(paramToId('n1')).toBe('n1');
  });
});
