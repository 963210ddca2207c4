'use client';
import type { HistoryPoint } from '@rdmaq/shared';
import { useRouter } from 'next/navigation';
import { type KeyboardEvent, type MouseEvent, memo, useEffect, useMemo, useRef, useState } from 'react';
import { useClockSkew } from '@/components/LiveProvider';
import { usePalette } from '@/components/theme';
import { api } from '@/lib/api';
import { HEALTH_COLOR, healthOf, occupancyColor } from '@/lib/colors';
import { formatBytes, formatPercent, formatTimestamp } from '@/lib/format';
import { cellAt, gridShape } from '@/lib/layout';
import {
  cellKey,
  historyRows,
  type LinkRing,
  linkRings,
  occupancyGrid,
  type RingMatrix,
  ringMatrix,
} from '@/lib/occupancy';
import { timeTicks } from '@/lib/range';
import type { OverviewLink } from '@/lib/views';
import { prepareContext, useCanvasSize } from './useCanvas';

type Ring = LinkRing<OverviewLink>;

/** Hosts up to which the sender × receiver matrix is drawn (beyond, one cell per link). */
const MATRIX_MAX_HOSTS = 48;
/** Links in the history heatmap (the stuck and fullest first). */
const HISTORY_ROWS = 16;
const HISTORY_RANGE_MS = 15 * 60_000;
const HISTORY_COLUMNS = 90;
const STUCK_COLOR = '#f85149';

const linkHref = (r: Ring) => `/links/${encodeURIComponent(r.worst.key)}`;

/**
 * Ring occupancy of every link, both ends (the sender's unacknowledged bytes and the receiver's ring, the
 * worse of the two): a sender × receiver matrix for meshes (a grid of links for large fleets), and below it
 * the last 15 minutes as a time × link heatmap of the fullest links. A ring full with nothing moving is
 * outlined red with "!" (the hub's RingFullNoProgress alert); frozen figures (agent stale/offline) hatched.
 */
export const OccupancyHeatmap = memo(function OccupancyHeatmap({
  links,
}: {
  links: readonly OverviewLink[];
  height?: number;
}) {
  const rings = useMemo(() => linkRings(links), [links]);
  const matrix = useMemo(() => ringMatrix(rings), [rings]);
  const stuck = rings.filter((r) => r.stuck).length;
  return (
    <div>
      {stuck > 0 && (
        <p className="error" role="alert" data-testid="rings-stuck">
          {stuck} {stuck === 1 ? 'ring is' : 'rings are'} full with nothing moving:{' '}
          {rings
            .filter((r) => r.stuck)
            .slice(0, 6)
            .map((r) => `${r.sender} → ${r.receiver} (${r.id})`)
            .join(', ')}
          {stuck > 6 ? ', …' : ''}
        </p>
      )}
      {matrix.senders.length <= MATRIX_MAX_HOSTS ? (
        <MatrixCanvas matrix={matrix} count={rings.length} />
      ) : (
        <LinkGrid rings={rings} />
      )}
      <ScaleLegend />
      <OccupancyHistory rings={rings} />
    </div>
  );
});

function ScaleLegend() {
  return (
    <div className="legend" aria-hidden="true" style={{ flexWrap: 'wrap' }}>
      <span>0 %</span>
      <span className="ramp" />
      <span>100 %</span>
      <span className="muted">(50 % amber, ≥ 80 % red, full pink)</span>
      <span>
        <span className="swatch" style={{ outline: `2px solid ${STUCK_COLOR}`, background: 'transparent' }} />{' '}
        ! full, nothing moving
      </span>
      <span>
        <span
          className="swatch"
          style={{
            background: 'repeating-linear-gradient(135deg, #8b949e 0 2px, transparent 2px 5px)',
          }}
        />{' '}
        frozen (agent not reporting)
      </span>
    </div>
  );
}

/** Canvas backing store at (width × height) CSS px: the height computed by the caller, not measured. */
function useFixedHeight(
  canvasRef: { current: HTMLCanvasElement | null },
  width: number,
  height: number,
): { width: number; height: number } {
  const size = useMemo(() => ({ width, height }), [width, height]);
  useEffect(() => {
    const c = canvasRef.current;
    if (!c || !size.width) return;
    const dpr = window.devicePixelRatio || 1;
    c.width = Math.round(size.width * dpr);
    c.height = Math.round(size.height * dpr);
    c.style.width = `${size.width}px`;
    c.style.height = `${size.height}px`;
  }, [canvasRef, size]);
  return size;
}

function ringLines(r: Ring): string[] {
  const end = (e: OverviewLink | undefined, what: string) =>
    e
      ? `${what} ${formatPercent(e.capacityBytes > 0 ? e.occupancyBytes / e.capacityBytes : Number.NaN)} (${formatBytes(e.occupancyBytes)} / ${formatBytes(e.capacityBytes)}), ${e.state}${e.freshness && e.freshness !== 'fresh' ? `, ${e.freshness}` : ''}`
      : `${what}: not reported`;
  return [
    `${r.sender} → ${r.receiver} · ${r.id}`,
    end(r.tx, `sender (${r.sender}) unacked`),
    end(r.rx, `receiver (${r.receiver}) ring`),
    ...(r.stuck ? ['FULL, NOTHING MOVING'] : []),
  ];
}

function drawCell(
  ctx: CanvasRenderingContext2D,
  r: Ring | undefined,
  x: number,
  y: number,
  s: number,
  pal: ReturnType<typeof usePalette>,
) {
  if (!r) {
    ctx.fillStyle = pal.grid;
    ctx.fillRect(x, y, s, s);
    return;
  }
  ctx.fillStyle = occupancyColor(r.fraction);
  ctx.fillRect(x, y, s, s);
  if (r.frozen && s >= 6) {
    ctx.save();
    ctx.beginPath();
    ctx.rect(x, y, s, s);
    ctx.clip();
    ctx.strokeStyle = 'rgba(139, 148, 158, 0.7)';
    ctx.lineWidth = 1;
    for (let d = -s; d < s; d += 5) {
      ctx.beginPath();
      ctx.moveTo(x + d, y + s);
      ctx.lineTo(x + d + s, y);
      ctx.stroke();
    }
    ctx.restore();
  }
  const state = r.worst.state;
  if (r.stuck) {
    ctx.strokeStyle = STUCK_COLOR;
    ctx.lineWidth = s >= 12 ? 3 : 1.5;
    ctx.strokeRect(x + 1.5, y + 1.5, s - 3, s - 3);
  } else if (state !== 'up' && s >= 6) {
    ctx.strokeStyle = HEALTH_COLOR[healthOf(state)];
    ctx.lineWidth = 1.5;
    ctx.strokeRect(x + 1, y + 1, s - 2, s - 2);
  }
  if (s >= 18) {
    ctx.fillStyle = r.fraction >= 0.5 && !r.stuck ? '#0d1117' : '#f0f6fc';
    ctx.font = `${r.stuck ? 'bold ' : ''}${Math.min(12, Math.floor(s / 3))}px system-ui, sans-serif`;
    ctx.textAlign = 'center';
    ctx.textBaseline = 'middle';
    const pct = Number.isNaN(r.fraction) ? '—' : `${Math.round(r.fraction * 100)}%`;
    ctx.fillText(r.stuck ? `! ${pct}` : pct, x + s / 2, y + s / 2);
  }
}

/** Sender (rows) × receiver (columns): one cell per pair, the worst of its links. */
function MatrixCanvas({ matrix, count }: { matrix: RingMatrix<OverviewLink>; count: number }) {
  const router = useRouter();
  const pal = usePalette();
  const boxRef = useRef<HTMLDivElement>(null);
  const canvasRef = useRef<HTMLCanvasElement>(null);
  const n = matrix.senders.length;
  const longest = Math.max(1, ...matrix.senders.map((s) => s.length));
  const left = Math.min(140, 16 + longest * 7);
  const [width, setWidth] = useState(0);
  const cell = n ? Math.max(8, Math.min(48, Math.floor((Math.max(width, 200) - left - 8) / n))) : 0;
  const rotate = longest * 7 > cell;
  const top = rotate ? Math.min(120, 24 + longest * 5.5) : 34;
  const height = top + n * cell + 4;
  const measured = useCanvasSize(boxRef, canvasRef, 0);
  useEffect(() => setWidth(measured.width), [measured.width]);
  // The height follows from the width (square cells), never from a measurement.
  const size = useFixedHeight(canvasRef, measured.width, height);
  const [hover, setHover] = useState<{ r: number; c: number; x: number; y: number } | null>(null);
  const [focus, setFocus] = useState<{ r: number; c: number } | null>(null);

  useEffect(() => {
    const ctx = prepareContext(canvasRef.current, size);
    if (!ctx || !cell) return;
    ctx.font = '11px system-ui, sans-serif';
    ctx.fillStyle = pal.muted;
    ctx.textAlign = 'left';
    ctx.textBaseline = 'top';
    ctx.fillText('sender ↓  receiver →', 2, 2);
    const gap = cell >= 10 ? 1 : 0;
    for (let i = 0; i < n; i++) {
      ctx.fillStyle = pal.label;
      ctx.font = '11px system-ui, sans-serif';
      ctx.textAlign = 'right';
      ctx.textBaseline = 'middle';
      ctx.fillText(matrix.senders[i]!, left - 6, top + i * cell + cell / 2, left - 10);
      const cx = left + i * cell + cell / 2;
      ctx.save();
      if (rotate) {
        ctx.translate(cx, top - 4);
        ctx.rotate(-Math.PI / 3);
        ctx.textAlign = 'left';
        ctx.fillText(matrix.receivers[i]!, 0, 0);
      } else {
        ctx.textAlign = 'center';
        ctx.textBaseline = 'bottom';
        ctx.fillText(matrix.receivers[i]!, cx, top - 4);
      }
      ctx.restore();
    }
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        const x = left + j * cell;
        const y = top + i * cell;
        if (i === j) continue;
        const r = matrix.cells.get(cellKey(matrix.senders[i]!, matrix.receivers[j]!))?.[0];
        drawCell(ctx, r, x, y, cell - gap, pal);
      }
    }
    const hi = hover ?? focus;
    if (hi) {
      ctx.strokeStyle = pal.highlight;
      ctx.lineWidth = 2;
      ctx.strokeRect(left + hi.c * cell, top + hi.r * cell, cell - gap, cell - gap);
    }
  }, [matrix, size, cell, left, top, rotate, n, hover, focus, pal]);

  const at = (ev: MouseEvent<HTMLCanvasElement>) => {
    const b = ev.currentTarget.getBoundingClientRect();
    const x = ev.clientX - b.left;
    const y = ev.clientY - b.top;
    const c = Math.floor((x - left) / cell);
    const r = Math.floor((y - top) / cell);
    return r >= 0 && r < n && c >= 0 && c < n && r !== c ? { r, c, x, y } : null;
  };
  const ringAt = (p: { r: number; c: number } | null) =>
    p ? matrix.cells.get(cellKey(matrix.senders[p.r]!, matrix.receivers[p.c]!)) : undefined;
  const open = (p: { r: number; c: number } | null) => {
    const r = ringAt(p)?.[0];
    if (r) router.push(linkHref(r));
  };
  const onKey = (ev: KeyboardEvent<HTMLCanvasElement>) => {
    const d: Record<string, [number, number]> = {
      ArrowRight: [0, 1],
      ArrowLeft: [0, -1],
      ArrowDown: [1, 0],
      ArrowUp: [-1, 0],
    };
    const m = d[ev.key];
    if (m) {
      ev.preventDefault();
      setFocus((f) => {
        const cur = f ?? { r: 0, c: 1 };
        return {
          r: Math.min(n - 1, Math.max(0, cur.r + m[0])),
          c: Math.min(n - 1, Math.max(0, cur.c + m[1])),
        };
      });
    } else if (ev.key === 'Enter') open(focus);
  };
  const shown = ringAt(hover ?? focus);
  const stuck = [...matrix.cells.values()].filter((c) => c[0]?.stuck).length;
  return (
    <div ref={boxRef} className="heatmap" style={{ height }}>
      <canvas
        ref={canvasRef}
        tabIndex={0}
        role="img"
        data-testid="occupancy-heatmap"
        data-view="matrix"
        data-cells={count}
        data-stuck={stuck}
        aria-label={`Ring occupancy matrix, ${n} hosts (rows send, columns receive), ${count} links, ${stuck} full with nothing moving. Arrow keys move, Enter opens the link.`}
        onMouseMove={(ev) => setHover(at(ev))}
        onMouseLeave={() => setHover(null)}
        onClick={(ev) => open(at(ev))}
        onKeyDown={onKey}
        onBlur={() => setFocus(null)}
        style={{ cursor: hover && ringAt(hover) ? 'pointer' : 'default' }}
      />
      {hover && shown && (
        <div
          className="tooltip"
          role="tooltip"
          style={{ left: Math.min(hover.x + 14, size.width - 300), top: hover.y + 14 }}
        >
          {shown.map((r) => (
            <div key={r.key} style={{ marginBottom: 4 }}>
              {ringLines(r).map((t, i) => (
                <div
                  key={t}
                  style={i === 0 ? { fontWeight: 600 } : t.startsWith('FULL') ? { color: STUCK_COLOR } : {}}
                >
                  {t}
                </div>
              ))}
            </div>
          ))}
          <div className="muted">click to open the link</div>
        </div>
      )}
      <div className="sr-only" aria-live="polite">
        {focus && shown ? ringLines(shown[0]!).join('; ') : ''}
      </div>
    </div>
  );
}

/** Beyond a few dozen hosts: one cell per link (sender order), the worse of its two ends. */
function LinkGrid({ rings }: { rings: readonly Ring[] }) {
  const router = useRouter();
  const pal = usePalette();
  const boxRef = useRef<HTMLDivElement>(null);
  const canvasRef = useRef<HTMLCanvasElement>(null);
  const size = useCanvasSize(boxRef, canvasRef, 0);
  const shape = useMemo(() => {
    const s = gridShape(rings.length, { width: size.width, height: 180 });
    if (s.cell <= 28) return s;
    const cols = Math.max(1, Math.floor(size.width / 28));
    return { cols, rows: Math.ceil(rings.length / cols), cell: 28 };
  }, [rings.length, size.width]);
  const boxHeight = Math.max(28, Math.ceil(shape.rows * shape.cell));
  const [hover, setHover] = useState<{ i: number; x: number; y: number } | null>(null);
  useEffect(() => {
    const ctx = prepareContext(canvasRef.current, size);
    if (!ctx || shape.cell <= 0) return;
    const gap = shape.cell >= 6 ? 1 : 0;
    rings.forEach((r, i) => {
      drawCell(
        ctx,
        r,
        (i % shape.cols) * shape.cell,
        Math.floor(i / shape.cols) * shape.cell,
        shape.cell - gap,
        pal,
      );
    });
  }, [rings, shape, size, pal]);
  const at = (ev: MouseEvent<HTMLCanvasElement>) => {
    const b = ev.currentTarget.getBoundingClientRect();
    const p = { x: ev.clientX - b.left, y: ev.clientY - b.top };
    return { i: cellAt(p, shape.cols, shape.cell, rings.length), ...p };
  };
  const shown = hover && hover.i >= 0 ? rings[hover.i] : undefined;
  return (
    <div ref={boxRef} className="heatmap" style={{ height: boxHeight }}>
      <canvas
        ref={canvasRef}
        role="img"
        data-testid="occupancy-heatmap"
        data-cells={rings.length}
        aria-label={`Ring occupancy of ${rings.length} links, ${rings.filter((r) => r.stuck).length} full with nothing moving`}
        onMouseMove={(ev) => setHover(at(ev))}
        onMouseLeave={() => setHover(null)}
        onClick={(ev) => {
          const r = rings[at(ev).i];
          if (r) router.push(linkHref(r));
        }}
      />
      {hover && shown && (
        <div
          className="tooltip"
          role="tooltip"
          style={{ left: Math.min(hover.x + 14, size.width - 300), top: hover.y + 14 }}
        >
          {ringLines(shown).map((t) => (
            <div key={t}>{t}</div>
          ))}
        </div>
      )}
    </div>
  );
}

interface HistoryGrid {
  from: number;
  to: number;
  stepMs: number;
  columns: number;
  rows: Array<{ ring: Ring; values: Float32Array }>;
}

/** The fullest links over the last 15 minutes (REST history of both ends), refreshed every 15 s. */
function OccupancyHistory({ rings }: { rings: readonly Ring[] }) {
  const skew = useClockSkew();
  const rows = useMemo(() => historyRows(rings, HISTORY_ROWS), [rings]);
  // Refetch when the set of rows changes, not on every delta.
  const rowKey = rows.map((r) => `${r.tx?.key ?? ''}|${r.rx?.key ?? ''}`).join(',');
  const rowsRef = useRef(rows);
  rowsRef.current = rows;
  const [grid, setGrid] = useState<HistoryGrid | null>(null);
  const [err, setErr] = useState<string | null>(null);
  const [tick, setTick] = useState(0);
  useEffect(() => {
    const t = setInterval(() => setTick((x) => x + 1), 15_000);
    return () => clearInterval(t);
  }, []);
  // Keyed on rowKey (the rows' names) and tick (the refresh), not on the rows' figures.
  useEffect(() => {
    void rowKey;
    void tick;
    const rs = rowsRef.current;
    if (!rs.length) {
      setGrid(null);
      return;
    }
    const ctl = new AbortController();
    const to = Date.now() + skew;
    const from = to - HISTORY_RANGE_MS + 5_000;
    const fetchEnd = (e: OverviewLink | undefined) =>
      e
        ? api<{ points: HistoryPoint[]; stepMs: number }>(
            `/api/history?link=${encodeURIComponent(e.key)}&from=${from}&to=${to}&points=${HISTORY_COLUMNS}`,
            { signal: ctl.signal },
          ).then((h) => ({ capacityBytes: e.capacityBytes, points: h.points, stepMs: h.stepMs }))
        : Promise.resolve(undefined);
    Promise.all(rs.map((r) => Promise.all([fetchEnd(r.tx), fetchEnd(r.rx)])))
      .then((res) => {
        const stepMs = res.flat().find((x) => x)?.stepMs ?? Math.ceil(HISTORY_RANGE_MS / HISTORY_COLUMNS);
        const columns = Math.ceil((to - from) / stepMs);
        const values = occupancyGrid(
          res.map((ends) => ({ ends: ends.filter((e) => e !== undefined) })),
          Math.floor(from / 1000) * 1000,
          stepMs,
          columns,
        );
        setGrid({
          from: Math.floor(from / 1000) * 1000,
          to,
          stepMs,
          columns,
          rows: rs.map((ring, i) => ({ ring, values: values[i]! })),
        });
        setErr(null);
      })
      .catch((e: Error) => {
        if (e.name !== 'AbortError') setErr(e.message);
      });
    return () => ctl.abort();
  }, [rowKey, tick, skew]);

  return (
    <div style={{ marginTop: 14 }}>
      <h3 style={{ fontSize: 13, margin: '0 0 6px' }}>
        Last 15 minutes, the {rows.length} fullest {rows.length === 1 ? 'link' : 'links'} (worse end per{' '}
        {grid ? `${Math.round(grid.stepMs / 1000)} s` : 'bucket'}, UTC)
      </h3>
      {err && <p className="error">History: {err}</p>}
      {grid && <HistoryCanvas grid={grid} />}
    </div>
  );
}

function HistoryCanvas({ grid }: { grid: HistoryGrid }) {
  const router = useRouter();
  const pal = usePalette();
  const boxRef = useRef<HTMLDivElement>(null);
  const canvasRef = useRef<HTMLCanvasElement>(null);
  const rowH = 16;
  const left = 210;
  const bottom = 20;
  const height = grid.rows.length * rowH + bottom + 2;
  const measured = useCanvasSize(boxRef, canvasRef, 0);
  const size = useFixedHeight(canvasRef, measured.width, height);
  const plotW = Math.max(10, size.width - left - 8);
  const colW = plotW / grid.columns;
  const ticks = useMemo(() => timeTicks([grid.from, grid.from + grid.columns * grid.stepMs], 6), [grid]);
  const [hover, setHover] = useState<{ r: number; c: number; x: number; y: number } | null>(null);
  // "node-1 → node-2", with the link id when two links join the same pair (fabric and shm, say).
  const labels = useMemo(() => {
    const pairs = new Map<string, number>();
    for (const r of grid.rows) {
      const k = `${r.ring.sender} → ${r.ring.receiver}`;
      pairs.set(k, (pairs.get(k) ?? 0) + 1);
    }
    return grid.rows.map((r) => {
      const k = `${r.ring.sender} → ${r.ring.receiver}`;
      return `${r.ring.stuck ? '! ' : ''}${(pairs.get(k) ?? 0) > 1 ? `${k} (${r.ring.id})` : k}`;
    });
  }, [grid]);
  useEffect(() => {
    const ctx = prepareContext(canvasRef.current, size);
    if (!ctx) return;
    ctx.font = '11px system-ui, sans-serif';
    grid.rows.forEach((row, i) => {
      const y = i * rowH;
      ctx.fillStyle = row.ring.stuck ? STUCK_COLOR : pal.label;
      ctx.textAlign = 'right';
      ctx.textBaseline = 'middle';
      ctx.fillText(labels[i]!, left - 6, y + rowH / 2, left - 10);
      for (let c = 0; c < grid.columns; c++) {
        const v = row.values[c]!;
        ctx.fillStyle = Number.isNaN(v) ? pal.grid : occupancyColor(v);
        ctx.fillRect(left + c * colW, y + 1, Math.ceil(colW), rowH - 2);
      }
    });
    const axisY = grid.rows.length * rowH + 2;
    ctx.strokeStyle = pal.muted;
    ctx.fillStyle = pal.muted;
    ctx.textAlign = 'center';
    ctx.textBaseline = 'top';
    for (const t of ticks.ticks) {
      const x = left + ((t - grid.from) / grid.stepMs) * colW;
      ctx.beginPath();
      ctx.moveTo(x, axisY);
      ctx.lineTo(x, axisY + 4);
      ctx.stroke();
      ctx.fillText(ticks.format(t), x, axisY + 5);
    }
    if (hover) {
      ctx.strokeStyle = pal.highlight;
      ctx.lineWidth = 1.5;
      ctx.strokeRect(left + hover.c * colW, hover.r * rowH + 1, Math.max(2, colW), rowH - 2);
    }
  }, [grid, labels, size, colW, ticks, hover, pal]);
  const at = (ev: MouseEvent<HTMLCanvasElement>) => {
    const b = ev.currentTarget.getBoundingClientRect();
    const x = ev.clientX - b.left;
    const y = ev.clientY - b.top;
    const r = Math.floor(y / rowH);
    const c = Math.floor((x - left) / colW);
    return r >= 0 && r < grid.rows.length && c >= 0 && c < grid.columns ? { r, c, x, y } : null;
  };
  const row = hover ? grid.rows[hover.r] : undefined;
  return (
    <div ref={boxRef} className="heatmap" style={{ height }}>
      <canvas
        ref={canvasRef}
        role="img"
        data-testid="occupancy-history"
        data-rows={grid.rows.length}
        aria-label={`Ring occupancy over the last 15 minutes of ${grid.rows.length} links, one row per link, time left to right`}
        onMouseMove={(ev) => setHover(at(ev))}
        onMouseLeave={() => setHover(null)}
        onClick={(ev) => {
          const h = at(ev);
          const r = h ? grid.rows[h.r] : undefined;
          if (r) router.push(linkHref(r.ring));
        }}
        style={{ cursor: hover ? 'pointer' : 'default' }}
      />
      {hover && row && (
        <div
          className="tooltip"
          role="tooltip"
          style={{ left: Math.min(hover.x + 14, size.width - 260), top: hover.y + 14 }}
        >
          <strong>
            {row.ring.sender} → {row.ring.receiver} · {row.ring.id}
          </strong>
          <div>{formatTimestamp(grid.from + hover.c * grid.stepMs)}</div>
          <div>worse end {formatPercent(row.values[hover.c])} full</div>
        </div>
      )}
    </div>
  );
}
